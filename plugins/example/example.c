/* example.c - the template plugin: copy this file to write your own */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * "Your test here": REJECT when the recipient contains a marker (default
 * "policyblock"), or when the sender equals the recipient. Opt-in options,
 * off by default, show the rest of the ABI:
 *	check_sender_domain	REJECT a sender whose domain does not exist
 *				(a DNS lookup through the core: wait and resume)
 *	sender_domain_timeout	that lookup's deadline (inst->dns_timeout_ms)
 *	score			add a score instead of rejecting (the score plugin decides)
 * On the way: the descriptor with its option table and validate(),
 * per-instance data, init/check/fini, saying at init that check() never
 * waits, host logging with escaped client data, and the reply.
 *
 * Not here: the state service (host->store_*). A plugin that uses it sets
 * PD_PLUGIN_STATE in its flags, and the core then opens the store of each
 * of its instances at start, whether its options use it or not; the
 * example is in every sample configuration, also where policyd -s runs as
 * a user who cannot write state_dir, so it keeps that cost out.
 * policyd-plugin(3), STATE, has a plugin that counts with store_count.
 *
 * Build out of tree with
 *	cc -shared -fPIC $(pkg-config --cflags policyd) example.c -o example.so
 * and unit-test it with the mock host (tests/example/test_example.c;
 * pkg-config policyd-mockhost). policyd-plugin(3) explains each part.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <policyd/plugin.h>

/* 1. Options of our section in policyd.conf. A typo there is reported
 *    with file:line by the core, which also adds its filters
 *    (protocol_state, skip_sasl, skip_networks, observe, optional,
 *    timeout, store): never reimplement those. New options get defaults
 *    that keep an existing configuration's behaviour. */
static cfg_opt_t options[] = {
    CFG_STR("marker", "policyblock", CFGF_NONE),
    CFG_BOOL("reject_sender_is_recipient", cfg_true, CFGF_NONE),
    CFG_STR("reject_text", "5.7.1 Recipient address rejected by policy", CFGF_NONE),
    CFG_BOOL("check_sender_domain", cfg_false, CFGF_NONE), /* DNS */
    CFG_INT("sender_domain_timeout", 0, CFGF_NONE),        /* seconds; 0: the dns { } section's */
    CFG_FLOAT("score", 0, CFGF_NONE),                      /* 0: reject; else add this score */
    CFG_END(),
};

#define TIMEOUT_MAX 30

/* 2. Checks across options, right after the section is parsed: the admin
 *    sees file:line, and policyd -t refuses the file. */
static int example_validate(cfg_t *sec)
{
	long timeout = cfg_getint(sec, "sender_domain_timeout");

	if (!*cfg_getstr(sec, "marker")) {
		cfg_error(sec, "marker must not be empty");
		return -1;
	}
	if (timeout < 0 || timeout > TIMEOUT_MAX) {
		cfg_error(sec, "sender_domain_timeout = %ld: must be between 0 (the dns section's) and %d seconds",
			  timeout, TIMEOUT_MAX);
		return -1;
	}
	if (timeout > 0 && !cfg_getbool(sec, "check_sender_domain")) {
		cfg_error(sec, "sender_domain_timeout is the deadline of check_sender_domain's lookup: "
			       "set check_sender_domain = true, or remove it");
		return -1;
	}
	return 0;
}

/* 3. Per-instance data, owned by us, kept in inst->data: each instance
 *    (example "strict" { } beside example { }) has its own. */
struct example {
	char *marker;
	char *text;
	int same;
	int check_domain;
	double score;
	atomic_ulong rejected; /* check() runs on several threads at once */
};

/* contains_nocase - does HAY contain NEEDLE, ignoring case */
static int contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return 1;
	return 0;
}

/* example_init - read our section into per-instance data; say how check() runs */
static int example_init(pd_instance *inst)
{
	struct example *ex = calloc(1, sizeof(*ex));

	if (!ex) {
		inst->host->log(inst, PD_LOG_ERR, "out of memory");
		return -1;
	}
	ex->marker = strdup(cfg_getstr(inst->cfg, "marker"));
	ex->text = strdup(cfg_getstr(inst->cfg, "reject_text"));
	ex->same = cfg_getbool(inst->cfg, "reject_sender_is_recipient");
	ex->check_domain = cfg_getbool(inst->cfg, "check_sender_domain");
	ex->score = cfg_getfloat(inst->cfg, "score");
	if (!ex->marker || !ex->text || !*ex->marker) {
		/* (an empty marker: validate refused it already, but a test on the
		 * mock host may not have run validate) */
		inst->host->log(inst, PD_LOG_ERR, "%s",
				!ex->marker || !ex->text ? "out of memory" : "marker must not be empty");
		free(ex->marker);
		free(ex->text);
		free(ex);
		return -1;
	}
	inst->data = ex;
	/* Said once, here: check() never waits (DNS goes through host->dns),
	 * so it runs on the network threads, never on the worker pool. */
	inst->blocking = 0;
	/* The core filled in the dns { } section's settings; ours wins. */
	if (cfg_getint(inst->cfg, "sender_domain_timeout") > 0)
		inst->dns_timeout_ms = (unsigned)cfg_getint(inst->cfg, "sender_domain_timeout") * 1000u;
	inst->host->log(inst, PD_LOG_INFO, "rejecting recipients that contain \"%s\"", ex->marker);
	return 0;
}

/* sender_domain_unknown - 1: the sender's domain does not exist; 0: it does,
 * or we cannot tell; PD_DNS_PENDING: the answer is not in yet */
static int sender_domain_unknown(const pd_host *h, pd_request *req, const char *sender)
{
	const char *at = sender ? strrchr(sender, '@') : NULL;
	const pd_dns_answer *ans;
	int st;

	if (!at || !at[1])
		return 0; /* the null sender, or no domain */
	st = h->dns(req, at + 1, PD_DNS_MX, &ans);
	if (st == PD_DNS_PENDING)
		return PD_DNS_PENDING;
	/* PD_DNS_OK, even without MX records (then the domain's address is its
	 * mail server), says it exists. SERVFAIL, TIMEOUT, BADNAME and any
	 * status we do not know: no verdict on a temporary failure. */
	return st == PD_DNS_NXDOMAIN;
}

/* example_check - one request: decide, or leave the reply alone (DUNNO) */
static int example_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	struct example *ex = inst->data;
	const pd_host *h = inst->host;
	const char *rcpt = h->attr(req, "recipient");
	const char *from = h->attr(req, "sender");
	const char *why = NULL, *label = NULL;
	char esc[300];

	if (rcpt && contains_nocase(rcpt, ex->marker)) {
		why = "";
		label = "marker";
	} else if (ex->same && rcpt && from && *from && strcasecmp(rcpt, from) == 0) {
		why = " (sender is the recipient)";
		label = "sender_is_recipient";
	} else if (ex->check_domain) {
		int r = sender_domain_unknown(h, req, from);

		/* Not in yet: the core runs this check again, from the start, when
		 * the answer is in (or its deadline passed). So far nothing was
		 * logged, counted or replied: the check can be repeated. */
		if (r == PD_DNS_PENDING)
			return PD_CHECK_WAIT;
		if (r == 1) {
			why = " (sender domain does not exist)";
			label = "no_sender_domain";
		}
	}

	if (!why)
		return PD_CHECK_OK; /* untouched reply: DUNNO, the next plugin runs */

	/* Decided: from here on the check never waits, so it may count, score
	 * and log. */
	if (ex->score != 0) {
		char l[128];

		/* "instance:rule"; the same label again replaces, never adds */
		snprintf(l, sizeof(l), "%s:%s", inst->name, label);
		h->score_add(req, l, ex->score);
		return PD_CHECK_OK; /* DUNNO: the score plugin, later in the chain, decides */
	}
	atomic_fetch_add(&ex->rejected, 1);
	if (inst->verbose) /* client data: escaped, and never in the format */
		h->log(inst, PD_LOG_DEBUG, "recipient <%s> rejected: %s", h->escape(esc, sizeof(esc), rcpt, 64), label);
	h->reply(reply, "REJECT %s%s", ex->text, why);
	return PD_CHECK_OK;
}

/* example_fini - free per-instance data */
static void example_fini(pd_instance *inst)
{
	struct example *ex = inst->data;

	inst->host->log(inst, PD_LOG_INFO, "rejected %lu request(s)", (unsigned long)atomic_load(&ex->rejected));
	free(ex->marker);
	free(ex->text);
	free(ex);
	inst->data = NULL;
}

/* 4. The one export: what we are, read by the core before any of our code
 *    runs (the ABI number first). No flags: skip_sasl defaults to false
 *    (PD_PLUGIN_SKIP_SASL would turn it on), and no state service
 *    (PD_PLUGIN_STATE, see the top of this file). */
const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "example",
    .version = "2.1",
    .description = "rejects recipients containing a marker, and sender == recipient",
    .flags = 0,
    .default_states = "RCPT",
    .options = options,
    .validate = example_validate,
    .init = example_init,
    .check = example_check,
    .fini = example_fini,
};
