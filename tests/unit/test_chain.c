/* test_chain.c - unit tests of chain semantics and the core's filters */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "chain.h"
#include "log.h"
#include "tap.h"

/* Each in-memory plugin answers what its instance name says:
 * "dunno", "ok", "prepend1", "prepend2", "reject", "error", "newline". */
static int mem_check(pd_instance *inst, const pd_request *req, pd_reply *reply)
{
	const char *n = inst->name;

	if (strcmp(n, "dunno") == 0)
		return PD_CHECK_OK;
	if (strcmp(n, "ok") == 0)
		inst->host->reply(reply, "OK");
	else if (strncmp(n, "prepend", 7) == 0)
		inst->host->reply(reply, "PREPEND X-From: %s", n);
	else if (strcmp(n, "reject") == 0)
		inst->host->reply(reply, "REJECT 5.7.1 no");
	else if (strcmp(n, "newline") == 0)
		inst->host->reply(reply, "REJECT %s", "line1\nline2");
	else if (strcmp(n, "error") == 0)
		return PD_CHECK_ERROR;
	else if (strcmp(n, "wouldblock") == 0) { /* a cache miss: only a worker may wait */
		if (!inst->host->may_block())
			return PD_CHECK_WOULDBLOCK;
		inst->host->reply(reply, "REJECT 5.7.1 answered by a worker");
	} else if (strcmp(n, "alwaysblock") == 0)
		return PD_CHECK_WOULDBLOCK; /* a broken plugin: even where it may block */
	return PD_CHECK_OK;
}

static pd_plugin_info mem_info = {.api = PD_PLUGIN_API, .name = "mem"};
static pd_module mem_mod = {.name = "mem", .info = &mem_info, .check = mem_check};
static pd_plugin_info nb_info = {.api = PD_PLUGIN_API, .name = "nb", .flags = PD_PLUGIN_NONBLOCKING};
static pd_module nb_mod = {.name = "nb", .info = &nb_info, .check = mem_check};
static pd_plugin_info try_info = {.api = PD_PLUGIN_API, .name = "try", .flags = PD_PLUGIN_TRY_INLINE};
static pd_module try_mod = {.name = "try", .info = &try_info, .check = mem_check};

/* mk - an instance named NAME running in RCPT */
static pd_inst *mk(const char *name)
{
	pd_inst *in = calloc(1, sizeof(*in));

	in->pub.host = &pd_core_host;
	in->pub.name = name;
	in->mod = &mem_mod;
	in->states = PD_ST_RCPT;
	in->started = 1;
	pthread_mutex_init(&in->lock, NULL);
	return in;
}

/* run - run a chain of the named instances over REQ; returns the action */
static const char *run(pd_request *req, const char *on_error, pd_inst **insts, size_t n, const char **who)
{
	static pd_result res;
	pd_chain ch = {.name = "t", .insts = insts, .n = n};

	CHECK(pd_chain_run(&ch, req, "DUNNO", on_error, &res, 0) == PD_CHAIN_DONE);
	if (who)
		*who = res.plugin;
	return res.reply.text;
}

/* add - attribute helper */
static void add(pd_request *r, const char *n, const char *v)
{
	pd_req_add(r, n, strlen(n), v, strlen(v));
}

int main(void)
{
	pd_request req;
	const char *who;
	pd_inst *dunno = mk("dunno"), *ok = mk("ok"), *p1 = mk("prepend1"), *p2 = mk("prepend2"),
		*rej = mk("reject"), *err = mk("error"), *nl = mk("newline");

	pd_log_open("test_chain", LOG_USER, 1, 0);
	pd_chain_may_block(1); /* as on a worker thread; the network thread's view is tested below */
	pd_req_init(&req);
	add(&req, "request", "smtpd_access_policy");
	add(&req, "protocol_state", "RCPT");
	add(&req, "client_address", "192.0.2.7");

	{ /* nobody decides: default_action */
		pd_inst *c[] = {dunno, ok};
		CHECK_STR(run(&req, "DUNNO", c, 2, &who), "DUNNO");
		CHECK_STR(who, "default");
	}
	{ /* OK does not end the chain */
		pd_inst *c[] = {ok, rej};
		CHECK_STR(run(&req, "DUNNO", c, 2, &who), "REJECT 5.7.1 no");
		CHECK_STR(who, "reject");
	}
	{ /* PREPEND is pending; a later decision drops it */
		pd_inst *c[] = {p1, rej};
		CHECK_STR(run(&req, "DUNNO", c, 2, NULL), "REJECT 5.7.1 no");
	}
	{ /* PREPEND alone is the reply; the first of two wins */
		pd_inst *c[] = {p1, dunno, p2};
		CHECK_STR(run(&req, "DUNNO", c, 3, &who), "PREPEND X-From: prepend1");
		CHECK_STR(who, "prepend1");
	}
	{ /* an error applies on_error: fail-open continues ... */
		pd_inst *c[] = {err, p1};
		CHECK_STR(run(&req, "DUNNO", c, 2, NULL), "PREPEND X-From: prepend1");
		CHECK(atomic_load(&err->errors) == 1);
	}
	{ /* ... a decisive on_error ends the chain, named after the plugin */
		pd_inst *c[] = {err, rej};
		CHECK_STR(run(&req, "DEFER_IF_PERMIT 4.3.0 try later", c, 2, &who), "DEFER_IF_PERMIT 4.3.0 try later");
		CHECK_STR(who, "error");
	}
	{ /* a reply never carries a newline */
		pd_inst *c[] = {nl};
		CHECK_STR(run(&req, "DUNNO", c, 1, NULL), "REJECT line1 line2");
	}
	{ /* filters: state */
		pd_inst *c[] = {rej};
		pd_request r2;

		pd_req_init(&r2);
		add(&r2, "protocol_state", "DATA");
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "DUNNO");
		rej->states = PD_ST_DATA;
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "REJECT 5.7.1 no");
		rej->states = PD_ST_ALL;
		pd_req_reset(&r2);
		add(&r2, "protocol_state", "SOMETHING-NEW");
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "REJECT 5.7.1 no");
		rej->states = PD_ST_RCPT;
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "DUNNO");
		pd_req_free(&r2);
	}
	{ /* filters: SASL */
		pd_inst *c[] = {rej};
		pd_request r2;

		pd_req_init(&r2);
		add(&r2, "protocol_state", "RCPT");
		add(&r2, "sasl_username", "alice");
		rej->skip_sasl = 1;
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "DUNNO");
		rej->skip_sasl = 0;
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "REJECT 5.7.1 no");
		pd_req_free(&r2);
	}
	{ /* filters: networks, IPv4 and IPv6 */
		pd_inst *c[] = {rej};
		pd_cidr nets[2];
		pd_request r2;

		pd_cidr_parse("192.0.2.0/24", &nets[0]);
		pd_cidr_parse("2001:db8::/32", &nets[1]);
		rej->nets = nets;
		rej->n_nets = 2;
		CHECK_STR(run(&req, "DUNNO", c, 1, NULL), "DUNNO");
		pd_req_init(&r2);
		add(&r2, "protocol_state", "RCPT");
		add(&r2, "client_address", "2001:db8::25");
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "DUNNO");
		pd_req_reset(&r2);
		add(&r2, "protocol_state", "RCPT");
		add(&r2, "client_address", "2001:db9::25");
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "REJECT 5.7.1 no");
		rej->nets = NULL;
		rej->n_nets = 0;
		pd_req_free(&r2);
	}
	{ /* an instance whose init failed (optional) is skipped */
		pd_inst *c[] = {rej};

		rej->started = 0;
		CHECK_STR(run(&req, "DUNNO", c, 1, NULL), "DUNNO");
		rej->started = 1;
	}
	{ /* a network thread runs what cannot block, then hands over; a worker resumes there */
		pd_inst *nbp = mk("prepend1"), *blk = mk("reject"), *wb = mk("wouldblock"), *nbr = mk("reject");
		pd_chain ch;
		pd_result res;

		nbp->mod = &nb_mod;
		wb->mod = &try_mod;
		nbr->mod = &nb_mod;
		pd_chain_may_block(0);
		{ /* nonblocking plugins only: done inline */
			pd_inst *c[] = {nbp};
			ch = (pd_chain){.name = "t", .insts = c, .n = 1};
			CHECK(pd_chain_run(&ch, &req, "DUNNO", "DUNNO", &res, 0) == PD_CHAIN_DONE);
			CHECK_STR(res.reply.text, "PREPEND X-From: prepend1");
		}
		{ /* a plugin that may block stops the inline run before it is called */
			pd_inst *c[] = {nbp, blk};
			unsigned long calls = atomic_load(&blk->calls);

			ch = (pd_chain){.name = "t", .insts = c, .n = 2};
			CHECK(pd_chain_run(&ch, &req, "DUNNO", "DUNNO", &res, 0) == PD_CHAIN_BLOCKED);
			CHECK(res.next == 1 && atomic_load(&blk->calls) == calls);
			pd_chain_may_block(1);
			CHECK(pd_chain_run(&ch, &req, "DUNNO", "DUNNO", &res, 1) == PD_CHAIN_DONE);
			CHECK_STR(res.reply.text, "REJECT 5.7.1 no");
			pd_chain_may_block(0);
		}
		{ /* TRY_INLINE: WOULDBLOCK hands over; the pending PREPEND survives the handover */
			pd_inst *c[] = {nbp, wb};

			ch = (pd_chain){.name = "t", .insts = c, .n = 2};
			CHECK(pd_chain_run(&ch, &req, "DUNNO", "DUNNO", &res, 0) == PD_CHAIN_BLOCKED);
			CHECK(res.next == 1 && res.have_prepend);
			CHECK(atomic_load(&wb->calls) == 0); /* the inline try is not counted */
			pd_chain_may_block(1);
			CHECK(pd_chain_run(&ch, &req, "DUNNO", "DUNNO", &res, 1) == PD_CHAIN_DONE);
			CHECK_STR(res.reply.text, "REJECT 5.7.1 answered by a worker");
			CHECK(atomic_load(&wb->calls) == 1);
			pd_chain_may_block(0);
		}
		{ /* a TRY_INLINE plugin that can answer at once finishes the chain inline */
			pd_inst *c[] = {nbp, wb, nbr};

			wb->pub.name = "dunno"; /* now answers DUNNO everywhere */
			ch = (pd_chain){.name = "t", .insts = c, .n = 2};
			CHECK(pd_chain_run(&ch, &req, "DUNNO", "DUNNO", &res, 0) == PD_CHAIN_DONE);
			CHECK_STR(res.reply.text, "PREPEND X-From: prepend1");
			wb->pub.name = "wouldblock";
		}
		{ /* WOULDBLOCK where the plugin may block is an error: on_error applies */
			pd_inst *ab = mk("alwaysblock");
			pd_inst *c[] = {ab};

			ab->mod = &try_mod;
			pd_chain_may_block(1);
			ch = (pd_chain){.name = "t", .insts = c, .n = 1};
			CHECK(pd_chain_run(&ch, &req, "DUNNO", "DEFER_IF_PERMIT 4.3.0 later", &res, 0) == PD_CHAIN_DONE);
			CHECK_STR(res.reply.text, "DEFER_IF_PERMIT 4.3.0 later");
			CHECK(atomic_load(&ab->errors) == 1);
			free(ab);
		}
		pd_chain_may_block(1);
		free(nbp);
		free(blk);
		free(wb);
		free(nbr);
	}
	CHECK(pd_action_kind("  dunno") == PD_KIND_CONTINUE);
	CHECK(pd_action_kind("OK") == PD_KIND_CONTINUE);
	CHECK(pd_action_kind("OKAY") == PD_KIND_DECISIVE);
	CHECK(pd_action_kind("prepend X: y") == PD_KIND_PREPEND);
	CHECK(pd_action_kind("550 5.7.1 no") == PD_KIND_DECISIVE);
	CHECK(pd_request_state("END-OF-MESSAGE") == PD_ST_EOM);
	CHECK(pd_request_state(NULL) == PD_ST_OTHER);
	pd_req_free(&req);
	{
		pd_inst *all[] = {dunno, ok, p1, p2, rej, err, nl};

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
			pthread_mutex_destroy(&all[i]->lock);
			free(all[i]);
		}
	}
	return tap_done();
}
