/* test_chain.c - unit tests of chain semantics, the core's filters, and where a check runs */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "chain.h"
#include "dns.h"
#include "host.h"
#include "log.h"
#include "request.h"
#include "tap.h"
#include "util.h"

/* Each in-memory plugin answers what its instance name says:
 * "dunno", "ok", "prepend1", "prepend2", "reject", "error", "newline",
 * "dns" (waits for an A record, then says what came), "waitfornothing". */
static int mem_check(pd_instance *inst, pd_request *req, pd_reply *reply)
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
	else if (strcmp(n, "waitfornothing") == 0)
		return PD_CHECK_WAIT; /* a broken plugin */
	else if (strcmp(n, "dns") == 0) {
		const pd_dns_answer *a;
		int st = inst->host->dns(req, "x.example.", PD_DNS_A, &a);

		if (st == PD_DNS_PENDING)
			return PD_CHECK_WAIT;
		inst->host->reply(reply, "DEFER_IF_PERMIT dns %d", st);
	}
	return PD_CHECK_OK;
}

static int mem_init(pd_instance *inst)
{
	return 0;
}

static void mem_fini(pd_instance *inst)
{
}

static const pd_plugin_desc mem_desc = {PD_PLUGIN_HEADER, .name = "mem", .init = mem_init, .check = mem_check,
					 .fini = mem_fini};
static pd_module mem_mod = {.name = "mem", .desc = &mem_desc};

/* mk - an instance named NAME running in RCPT, non-blocking unless BLOCKING */
static pd_inst *mk2(const char *name, int blocking)
{
	pd_inst *in = calloc(1, sizeof(*in));

	in->pub.host = &pd_core_host;
	in->pub.name = name;
	in->pub.blocking = blocking;
	in->pub.dns_timeout_ms = 5000;
	in->pub.dns_cache = 1;
	in->pub.dns_max_ttl = 86400;
	in->mod = &mem_mod;
	in->states = PD_ST_RCPT;
	in->started = 1;
	return in;
}

/* mk - a non-blocking instance */
static pd_inst *mk(const char *name)
{
	return mk2(name, 0);
}

/* run - run a chain of the named instances over R (inline); returns the action */
static const char *run(pd_request *r, const char *on_error, pd_inst **insts, size_t n, const char **who)
{
	pd_chain ch = {.name = "t", .insts = insts, .n = n};

	r->chain = &ch;
	pd_chain_begin(&r->res);
	CHECK(pd_chain_run(&ch, r, "DUNNO", on_error, 0) == PD_CHAIN_DONE);
	r->chain = NULL;
	if (who)
		*who = r->res.plugin;
	return r->res.reply.text;
}

/* add - attribute helper */
static void add(pd_request *r, const char *n, const char *v)
{
	pd_attrs_add(&r->attrs, n, strlen(n), v, strlen(v));
}

/* fresh - an empty request with protocol_state STATE */
static void fresh(pd_request *r, const char *state)
{
	pd_request_reset(r);
	add(r, "request", "smtpd_access_policy");
	add(r, "protocol_state", state);
}

int main(void)
{
	pd_request req, r2;
	const char *who;
	pd_inst *dunno = mk("dunno"), *ok = mk("ok"), *p1 = mk("prepend1"), *p2 = mk("prepend2"),
		*rej = mk("reject"), *err = mk("error"), *nl = mk("newline");
	pd_dns_conf dc = {.cache_size = 100, .max_ttl = 3600, .negative_ttl = 60, .timeout_ms = 5000, .max_queries = 16};

	pd_log_open("test_chain", LOG_USER, 1, 0);
	pd_dns_configure(&dc);
	pd_request_init(&req, NULL);
	pd_request_init(&r2, NULL);
	fresh(&req, "RCPT");
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
		CHECK(atomic_load(&err->errors) == 2);
	}
	{ /* a reply never carries a newline */
		pd_inst *c[] = {nl};
		CHECK_STR(run(&req, "DUNNO", c, 1, NULL), "REJECT line1 line2");
	}
	{ /* filters: state */
		pd_inst *c[] = {rej};

		fresh(&r2, "DATA");
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "DUNNO");
		rej->states = PD_ST_DATA;
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "REJECT 5.7.1 no");
		rej->states = PD_ST_ALL;
		fresh(&r2, "SOMETHING-NEW");
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "REJECT 5.7.1 no");
		rej->states = PD_ST_RCPT;
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "DUNNO");
	}
	{ /* filters: SASL */
		pd_inst *c[] = {rej};

		fresh(&r2, "RCPT");
		add(&r2, "sasl_username", "alice");
		rej->skip_sasl = 1;
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "DUNNO");
		rej->skip_sasl = 0;
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "REJECT 5.7.1 no");
	}
	{ /* filters: networks, IPv4 and IPv6 */
		pd_inst *c[] = {rej};
		pd_cidr nets[2];

		pd_cidr_parse("192.0.2.0/24", &nets[0]);
		pd_cidr_parse("2001:db8::/32", &nets[1]);
		rej->nets = nets;
		rej->n_nets = 2;
		CHECK_STR(run(&req, "DUNNO", c, 1, NULL), "DUNNO");
		fresh(&r2, "RCPT");
		add(&r2, "client_address", "2001:db8::25");
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "DUNNO");
		fresh(&r2, "RCPT");
		add(&r2, "client_address", "2001:db9::25");
		CHECK_STR(run(&r2, "DUNNO", c, 1, NULL), "REJECT 5.7.1 no");
		rej->nets = NULL;
		rej->n_nets = 0;
	}
	{ /* an instance whose init failed (optional) is skipped */
		pd_inst *c[] = {rej};

		rej->started = 0;
		CHECK_STR(run(&req, "DUNNO", c, 1, NULL), "DUNNO");
		rej->started = 1;
	}
	{ /* a network thread runs the non-blocking instances and stops before a
	   * blocking one, which is not called; a worker goes on from there, and
	   * the pending PREPEND survives the hand-over */
		pd_inst *blk = mk2("reject", 1), *c[] = {p1, blk};
		pd_chain ch = {.name = "t", .insts = c, .n = 2};
		unsigned long calls = atomic_load(&blk->calls);

		fresh(&r2, "RCPT");
		r2.chain = &ch;
		pd_chain_begin(&r2.res);
		CHECK(pd_chain_run(&ch, &r2, "DUNNO", "DUNNO", 0) == PD_CHAIN_WORKER);
		CHECK(r2.res.next == 1 && r2.res.have_prepend && atomic_load(&blk->calls) == calls);
		CHECK(pd_chain_run(&ch, &r2, "DUNNO", "DUNNO", 1) == PD_CHAIN_DONE);
		CHECK_STR(r2.res.reply.text, "REJECT 5.7.1 no");
		CHECK(atomic_load(&blk->calls) == calls + 1);
		r2.chain = NULL;
		free(blk);
	}
	{ /* a check that needs DNS waits: the chain stops at it, with its
	   * deadline set; past the deadline the answer is a timeout at once */
		pd_inst *d = mk("dns"), *c[] = {p1, d, rej};
		pd_chain ch = {.name = "t", .insts = c, .n = 3};
		uint64_t before = pd_now_us();

		fresh(&r2, "RCPT");
		r2.chain = &ch;
		pd_chain_begin(&r2.res);
		CHECK(pd_chain_run(&ch, &r2, "DUNNO", "DUNNO", 0) == PD_CHAIN_WAIT);
		CHECK(r2.res.next == 1 && pd_dns_wanted(&r2.dns) == 1);
		CHECK(r2.res.dns_deadline >= before + 5000 * 1000u && r2.res.dns_deadline <= pd_now_us() + 5000 * 1000u);
		CHECK(pd_chain_run(&ch, &r2, "DUNNO", "DUNNO", 0) == PD_CHAIN_WAIT); /* asked again: still one want */
		CHECK(pd_dns_wanted(&r2.dns) == 1);
		r2.dns.n_want = 0;
		r2.res.dns_deadline = pd_now_us() - 1; /* the deadline passed */
		CHECK(pd_chain_run(&ch, &r2, "DUNNO", "DUNNO", 0) == PD_CHAIN_DONE);
		CHECK_STR(r2.res.reply.text, "DEFER_IF_PERMIT dns 3"); /* PD_DNS_TIMEOUT */
		CHECK(r2.res.dns_deadline == 0); /* the next plugin's check starts afresh */
		r2.chain = NULL;
		free(d);
	}
	{ /* PD_CHECK_WAIT without a lookup under way is an error: on_error */
		pd_inst *w = mk("waitfornothing"), *c[] = {w};

		fresh(&r2, "RCPT");
		CHECK_STR(run(&r2, "DEFER_IF_PERMIT 4.3.0 later", c, 1, &who), "DEFER_IF_PERMIT 4.3.0 later");
		CHECK(atomic_load(&w->errors) == 1);
		free(w);
	}
	CHECK(pd_action_kind("  dunno") == PD_KIND_CONTINUE);
	CHECK(pd_action_kind("OK") == PD_KIND_CONTINUE);
	CHECK(pd_action_kind("OKAY") == PD_KIND_DECISIVE);
	CHECK(pd_action_kind("prepend X: y") == PD_KIND_PREPEND);
	CHECK(pd_action_kind("550 5.7.1 no") == PD_KIND_DECISIVE);
	/* WARN and INFO do not decide in Postfix: pending like PREPEND */
	CHECK(pd_action_kind("WARN listed in a test list") == PD_KIND_PREPEND);
	CHECK(pd_action_kind("info seen") == PD_KIND_PREPEND);
	CHECK(pd_action_kind("WARNING") == PD_KIND_DECISIVE);
	CHECK(pd_request_state("END-OF-MESSAGE") == PD_ST_EOM);
	CHECK(pd_request_state(NULL) == PD_ST_OTHER);
	pd_request_free(&req);
	pd_request_free(&r2);
	pd_dns_shutdown();
	{
		pd_inst *all[] = {dunno, ok, p1, p2, rej, err, nl};

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
			free(all[i]);
	}
	return tap_done();
}
