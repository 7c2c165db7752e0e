/* example.c - the template plugin: copy this file to write your own */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * "Your test here": REJECT when the recipient contains a marker (default
 * "policyblock"), or when the sender equals the recipient. Three opt-in
 * options, all off by default, show the rest of the ABI:
 *	check_sender_domain	REJECT a sender whose domain does not exist
 *				(a DNS lookup through the core: wait and resume)
 *	score			add a score instead of rejecting (the score plugin decides)
 *	client_limit		count each client's rejections in the state service
 *				and defer it once it had client_limit of them
 *				within client_window seconds
 * On the way: the descriptor with its option table and validate(),
 * per-instance data, init/check/fini, saying at init whether check() may
 * wait, host logging with escaped client data, and the reply. Build out of
 * tree with
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
    CFG_FLOAT("score", 0, CFGF_NONE),                      /* 0: reject; else add this score */
    CFG_INT("client_limit", 0, CFGF_NONE),                 /* state; 0: off */
    CFG_INT("client_window", 3600, CFGF_NONE),             /* seconds */
    CFG_END(),
};

#define WINDOW_MAX (7 * 86400)

/* 2. Checks across options, right after the section is parsed: the admin
 *    sees file:line, and policyd -t refuses the file. */
static int example_validate(cfg_t *sec)
{
	long limit = cfg_getint(sec, "client_limit"), window = cfg_getint(sec, "client_window");

	if (!*cfg_getstr(sec, "marker")) {
		cfg_error(sec, "marker must not be empty");
		return -1;
	}
	if (limit < 0 || limit > 1000000) {
		cfg_error(sec, "client_limit = %ld: must be between 0 (off) and 1000000", limit);
		return -1;
	}
	if (limit > 0 && (window < 1 || window > WINDOW_MAX)) {
		cfg_error(sec, "client_window = %ld: must be between 1 and %d seconds", window, WINDOW_MAX);
		return -1;
	}
	if (limit > 0 && cfg_getfloat(sec, "score") != 0) {
		cfg_error(sec, "client_limit counts rejections, and with score set this plugin never rejects: "
			       "set one of them");
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
	long limit;
	unsigned window;
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
	ex->limit = cfg_getint(inst->cfg, "client_limit");
	ex->window = (unsigned)cfg_getint(inst->cfg, "client_window");
	if (!ex->marker || !ex->text) {
		inst->host->log(inst, PD_LOG_ERR, "out of memory");
		free(ex->marker);
		free(ex->text);
		free(ex);
		return -1;
	}
	inst->data = ex;
	/* Said once, here: check() never waits (DNS goes through host->dns),
	 * so it runs on the network threads. Only the state service on Redis
	 * waits for the network: then the worker pool runs it. */
	inst->blocking = ex->limit > 0 && inst->host->store_remote(inst);
	inst->host->log(inst, PD_LOG_INFO, "rejecting recipients that contain \"%s\"", ex->marker);
	if (ex->limit > 0)
		inst->host->log(inst, PD_LOG_INFO, "deferring a client after %ld rejections in %u s", ex->limit,
				ex->window);
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
	const char *client = h->attr(req, "client_address");
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

	if (!why) {
		long long total;

		if (ex->limit <= 0 || !client || !*client)
			return PD_CHECK_OK; /* untouched reply: DUNNO, the next plugin runs */
		/* amount 0 only reads. On -1 the host has logged why (the store is
		 * down or too slow): PD_CHECK_ERROR, the admin's on_error applies. */
		if (h->store_count(inst, client, ex->window, 0, &total) < 0)
			return PD_CHECK_ERROR;
		if (total < ex->limit)
			return PD_CHECK_OK;
		if (inst->verbose) /* client data: escaped, and never in the format */
			h->log(inst, PD_LOG_DEBUG, "client %s: %lld rejections in %u s",
			       h->escape(esc, sizeof(esc), client, 64), total, ex->window);
		h->reply(reply, "DEFER_IF_PERMIT 4.7.1 Too many rejected recipients, try again later");
		return PD_CHECK_OK;
	}

	/* Decided: from here on the check never waits, so it may change state
	 * and log. */
	if (ex->score != 0) {
		char l[128];

		/* "instance:rule"; the same label again replaces, never adds */
		snprintf(l, sizeof(l), "%s:%s", inst->name, label);
		h->score_add(req, l, ex->score);
		return PD_CHECK_OK; /* DUNNO: the score plugin, later in the chain, decides */
	}
	if (ex->limit > 0 && client && *client) {
		long long total;

		/* atomic on GDBM and Redis alike, shared by every MX on one Redis;
		 * if it fails (logged by the host) the rejection stands anyway */
		(void)h->store_count(inst, client, ex->window, 1, &total);
	}
	atomic_fetch_add(&ex->rejected, 1);
	if (inst->verbose)
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
 *    runs (the ABI number first). PD_PLUGIN_STATE: we may use host->store_*
 *    (client_limit), so the core opens this instance's store before init. */
const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "example",
    .version = "2.1",
    .description = "rejects recipients containing a marker, and sender == recipient",
    .flags = PD_PLUGIN_STATE,
    .default_states = "RCPT",
    .options = options,
    .validate = example_validate,
    .init = example_init,
    .check = example_check,
    .fini = example_fini,
};
