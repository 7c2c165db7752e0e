/* ratelimit.c - the ratelimit plugin: messages, recipients, bytes or requests per key over sliding windows, on the state service */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * ratelimit { rule "sasl" { key = { "sasl_username", "sender" } count = "messages" limits = { "100/1h", "1000/1d" } } }
 * Each rule picks its key from the request (the first of its key choices
 * whose attributes are all non-empty: key.c), the limits of that key (an
 * overrides file, or the rule's: rules.c), and asks the core's state
 * service for the key's counter of every window (host->store_count, a
 * sliding window of 16 buckets per window: see core/store.h).
 *
 * When: mail is counted once, at count_state (END-OF-MESSAGE by default,
 * or DATA), by what it adds (1 message, recipient_count recipients, size
 * bytes), so that a message counts once however many recipients it has
 * and mail that is refused or never completes consumes nothing. At any
 * other state (RCPT) a key is only read: a request whose addition would
 * take a window past its limit gets the rule's action. At count_state the
 * message is read first as well and refused (uncounted) if it would go
 * past, then counted. `requests` rules count every request they see. A
 * request is refused when TOTAL + WHAT_IT_ADDS > MAX in any window, so no
 * window-long interval ever holds more than MAX (the store's counter never
 * forgets an event early). Every rule is read before any is counted: a
 * request refused by one rule consumes nothing in the others.
 * Two requests of one key at the same moment on two connections may both
 * be read under the limit before either is counted (read and add are two
 * atomic steps, not one): the overshoot is bounded by the key's
 * concurrent messages.
 * check() waits only for the state service, so the instance runs on the
 * worker threads when that is remote (host->store_remote).
 */
#include "config.h"
#include "table.h"
#include "rl.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RL_RULES_MAX 32  /* rules of one instance */
#define RL_VALUE_BUF 1024 /* a key's value while checking (longer: cut, then hashed) */
#define RL_KEY_BUF (RL_VALUE_BUF + 200)
#define LOG_VALUE 255     /* bytes of a key value or address shown in a log line */

/* free_rl - everything an instance holds */
static void free_rl(struct rl *rl)
{
	if (!rl)
		return;
	for (size_t i = 0; i < rl->nrules; i++)
		rl_rule_free(&rl->rules[i]);
	free(rl->rules);
	pd_table_free(rl->exempt);
	free(rl);
}

/* describe - "100/3600s, 1000/86400s" of L into OUT */
static const char *describe(const struct rl_limits *l, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = 0;
	if (l->unlimited)
		snprintf(out, cap, "unlimited");
	for (size_t i = 0; i < l->n && o < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%lld/%us", i ? ", " : "", l->l[i].max, l->l[i].window);
	return out;
}

/* rl_init - the rules (and their overrides files) into memory, the settings, and where check() runs */
static int rl_init(pd_instance *inst)
{
	const pd_host *h = inst->host;
	struct rl *rl = calloc(1, sizeof(*rl));
	cfg_t *cfg = inst->cfg;
	unsigned n = cfg_size(cfg, "rule");
	char err[PATH_MAX + 600], lim[200];

	if (!rl || !(rl->exempt = pd_table_new(PD_TABLE_EXACT)) || !(rl->rules = calloc(n ? n : 1, sizeof(*rl->rules)))) {
		h->log(inst, PD_LOG_ERR, "out of memory");
		free_rl(rl);
		return -1;
	}
	if (n == 0 || n > RL_RULES_MAX) {
		h->log(inst, PD_LOG_ERR, "%u rules: give 1 to %d", n, RL_RULES_MAX);
		free_rl(rl);
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct rl_rule *r = &rl->rules[i];

		if (rl_rule_load(r, cfg_getnsec(cfg, "rule", i), err, sizeof(err)) < 0) {
			h->log(inst, PD_LOG_ERR, "%s", err);
			free_rl(rl);
			return -1;
		}
		rl->nrules++;
	}
	for (unsigned i = 0; i < cfg_size(cfg, "exempt_recipients"); i++)
		if (pd_table_add(rl->exempt, cfg_getnstr(cfg, "exempt_recipients", i), NULL, err, sizeof(err)) < 0) {
			h->log(inst, PD_LOG_ERR, "exempt_recipients \"%s\": %s", cfg_getnstr(cfg, "exempt_recipients", i), err);
			free_rl(rl);
			return -1;
		}
	rl->count_state = strcasecmp(cfg_getstr(cfg, "count_state"), "DATA") ? 1 : 2;
	inst->data = rl;
	inst->blocking = h->store_remote(inst); /* a shared store waits on the network */
	for (size_t i = 0; i < rl->nrules; i++) {
		const struct rl_rule *r = &rl->rules[i];
		char keys[400];
		size_t o = 0;

		keys[0] = 0;
		for (size_t k = 0; k < r->nkeys && o < sizeof(keys); k++)
			o += (size_t)snprintf(keys + o, sizeof(keys) - o, "%s%s", k ? ", " : "", r->keys[k].text);
		h->log(inst, PD_LOG_INFO, "rule \"%s\": %s per %s (first non-empty; client networks /%d, IPv6 /%d): %s; "
		       "over: \"%s\"; %zu override(s)%s%s; %zu warning level(s)", r->name, rl_count_name(r->count), keys,
		       r->prefix4, r->prefix6, describe(&r->limits, lim, sizeof(lim)), r->action, r->nover,
		       *r->overrides_path ? " from " : "", r->overrides_path, r->nwarn);
	}
	h->log(inst, PD_LOG_INFO, "%zu rule(s); mail counted at %s, read before; %zu exempt recipient pattern(s); "
	       "state on %s", rl->nrules, rl->count_state == 1 ? "END-OF-MESSAGE" : "DATA", pd_table_size(rl->exempt),
	       inst->blocking ? "a remote store (worker threads)" : "the local store");
	return 0;
}

/* number - attribute NAME of REQ as a count >= 0 (0 if missing or not a number) */
static long long number(const pd_host *h, const pd_request *req, const char *name)
{
	const char *v = h->attr(req, name);
	char *end;
	long long n;

	if (!v || !*v)
		return 0;
	n = strtoll(v, &end, 10);
	return *end || n < 0 ? 0 : n;
}

/* one rule's part of one request */
struct pick {
	const struct rl_key *key;     /* NULL: no key choice had a value: the rule does not apply */
	const struct rl_limits *lim;
	long long total[RL_LIMITS_MAX];
};

/* choose - the first key choice of R with a value into VALUE; NULL if none */
static const struct rl_key *choose(const pd_host *h, const pd_request *req, const struct rl_rule *r, char *value,
				   size_t cap)
{
	for (size_t k = 0; k < r->nkeys; k++)
		if (rl_key_value(h, req, r, &r->keys[k], value, cap))
			return &r->keys[k];
	return NULL;
}

/* rl_check - read every rule's windows; refuse a request that would go past one; count at count_state */
static int rl_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	const struct rl *rl = inst->data;
	const pd_host *h = inst->host;
	const char *state = h->attr(req, "protocol_state"), *rcpt = h->attr(req, "recipient");
	int counting = state && !strcasecmp(state, rl->count_state == 1 ? "END-OF-MESSAGE" : "DATA");
	long long rcpts = number(h, req, "recipient_count"), size = number(h, req, "size");
	struct pick pick[RL_RULES_MAX];
	char value[RL_VALUE_BUF], key[RL_KEY_BUF], ev[LOG_VALUE * 4 + 8];

	if (rcpt && *rcpt && (!counting || rcpts <= 1)) {
		char a[LOG_VALUE + 2];
		const char *look = rcpt;

		if (!strchr(rcpt, '@')) { /* RCPT TO:<postmaster> */
			snprintf(a, sizeof(a), "%s@", rcpt);
			look = a;
		}
		if (pd_table_match_addr(rl->exempt, look)) {
			h->escape(ev, sizeof(ev), rcpt, LOG_VALUE);
			h->log(inst, PD_LOG_INFO, "recipient <%s> exempt (exempt_recipients): %s", ev,
			       counting ? "not counted" : "not limited");
			return PD_CHECK_OK;
		}
	}
	/* read: every rule, every window, before anything is counted */
	for (size_t i = 0; i < rl->nrules; i++) {
		const struct rl_rule *r = &rl->rules[i];
		struct pick *p = &pick[i];
		int adds = counting || r->count == RL_REQUESTS;
		long long amount;

		p->key = choose(h, req, r, value, sizeof(value));
		if (!p->key) {
			if (inst->verbose)
				h->log(inst, PD_LOG_DEBUG, "rule \"%s\": no key (every key choice empty): not applied", r->name);
			continue;
		}
		p->lim = rl_limits_for(r, value);
		h->escape(ev, sizeof(ev), value, LOG_VALUE);
		if (p->lim->unlimited) {
			h->log(inst, PD_LOG_INFO, "rule \"%s\" %s=%s: unlimited (overrides)", r->name, p->key->text, ev);
			p->key = NULL;
			continue;
		}
		/* what this request adds (or would add, at RCPT): at least 1, so that a full window refuses */
		switch (r->count) {
		case RL_RECIPIENTS: amount = adds && rcpts > 0 ? rcpts : 1; break;
		case RL_BYTES: amount = size > 0 ? size : 1; break;
		default: amount = 1; break;
		}
		for (size_t w = 0; w < p->lim->n; w++) {
			const struct rl_limit *l = &p->lim->l[w];

			rl_store_key(r, p->key, l->window, value, key, sizeof(key));
			if (h->store_count(inst, key, l->window, 0, &p->total[w]) < 0)
				return PD_CHECK_ERROR; /* the state service logged why; on_error applies */
			if (p->total[w] + amount > l->max) {
				h->log(inst, PD_LOG_NOTICE, "rule \"%s\" %s=%s: %lld of %lld %s in %u s, %lld more is over the "
				       "limit: %s%s", r->name, p->key->text, ev, p->total[w], l->max, rl_count_name(r->count),
				       l->window, amount, r->action, adds ? " (not counted)" : "");
				h->reply(reply, "%s", r->action);
				return PD_CHECK_OK;
			}
		}
	}
	/* under every limit: count (at count_state, or every request) and log */
	for (size_t i = 0; i < rl->nrules; i++) {
		const struct rl_rule *r = &rl->rules[i];
		const struct pick *p = &pick[i];
		int adds = counting || r->count == RL_REQUESTS;
		long long amount = 1, now;
		size_t tight = 0;

		if (!p->key)
			continue;
		choose(h, req, r, value, sizeof(value));
		h->escape(ev, sizeof(ev), value, LOG_VALUE);
		if (r->count == RL_RECIPIENTS)
			amount = rcpts > 0 ? rcpts : 1;
		else if (r->count == RL_BYTES)
			amount = size;
		for (size_t w = 0; adds && w < p->lim->n; w++) {
			const struct rl_limit *l = &p->lim->l[w];
			long long total;

			rl_store_key(r, p->key, l->window, value, key, sizeof(key));
			if (h->store_count(inst, key, l->window, amount, &total) < 0) {
				h->log(inst, PD_LOG_ERR, "rule \"%s\" %s=%s: not counted", r->name, p->key->text, ev);
				return PD_CHECK_ERROR;
			}
			for (size_t k = 0; k < r->nwarn; k++) {
				long long at = (long long)ceil(r->warn[k] * (double)l->max);

				if (total >= at && total - amount < at)
					h->log(inst, PD_LOG_WARNING, "rule \"%s\" %s=%s: %lld of %lld %s in %u s (warn_at %g%%)",
					       r->name, p->key->text, ev, total, l->max, rl_count_name(r->count), l->window,
					       r->warn[k] * 100);
			}
		}
		/* the window nearest its limit, for the log line */
		for (size_t w = 1; w < p->lim->n; w++)
			if ((double)p->total[w] / (double)p->lim->l[w].max > (double)p->total[tight] / (double)p->lim->l[tight].max)
				tight = w;
		now = p->total[tight] + (adds ? amount : 0);
		h->log(inst, PD_LOG_INFO, "rule \"%s\" %s=%s: %lld of %lld %s in %u s%s: under the limit", r->name,
		       p->key->text, ev, now, p->lim->l[tight].max, rl_count_name(r->count), p->lim->l[tight].window,
		       adds ? ", counted" : "");
	}
	return PD_CHECK_OK;
}

/* rl_fini - free the rules */
static void rl_fini(pd_instance *inst)
{
	free_rl(inst->data);
	inst->data = NULL;
}

const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "ratelimit",
    .version = "1.0",
    .description = "limits messages, recipients, bytes or requests per key over sliding windows, on the state service",
    .flags = PD_PLUGIN_STATE,
    .default_states = "RCPT,END-OF-MESSAGE",
    .options = rl_options,
    .validate = rl_validate,
    .init = rl_init,
    .check = rl_check,
    .fini = rl_fini,
};
