/* route.c - which chain a request takes */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Rule chains are tried in order, first match wins. What their lists name
 * is looked up once per request, whatever the number of chains: one lookup
 * of the recipient, one of the sender, one of the client address in the
 * index of route_index.c gives the set of chains each names (a bit set),
 * then the chains are checked in order against the sets and their sasl and
 * protocol_state conditions.
 */
#include "config.h"
#include "route.h"
#include "conf.h"
#include "escape.h"
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define WORDS (PD_ROUTE_MAX_RULES / 64)

/* set_bits - a table value ("0,3,17") into the bit set ARG */
static int set_bits(const char *v, void *arg)
{
	uint64_t *bits = arg;

	while (*v) {
		size_t k = 0;

		while (*v >= '0' && *v <= '9')
			k = k * 10 + (size_t)(*v++ - '0');
		if (k < PD_ROUTE_MAX_RULES)
			bits[k / 64] |= 1ull << (k % 64);
		if (*v == ',')
			v++;
		else if (*v)
			break;
	}
	return 0; /* every match */
}

/* lookup - the chains TAB and RX name for TEXT, into BITS */
static void lookup(const pd_table *tab, const pd_table *rx, const char *text, uint64_t *bits, size_t words)
{
	memset(bits, 0, words * sizeof(*bits));
	if (!text)
		return;
	if (tab)
		pd_table_each(tab, text, set_bits, bits);
	if (rx)
		pd_table_each(rx, text, set_bits, bits);
}

/* by_rules - the first rule chain whose conditions hold, or NULL: the candidates are the chains
 * whose every list names the request (a bit set, in order); only they are looked at */
static const pd_chain *by_rules(const pd_route_index *x, const pd_attrs *a, unsigned state)
{
	uint64_t r[WORDS], s[WORDS], c[WORDS];
	const char *sasl = pd_attrs_get(a, "sasl_username");
	int is_sasl = sasl && *sasl;

	if (x->rcpt || x->rcpt_rx)
		lookup(x->rcpt, x->rcpt_rx, pd_attrs_get(a, "recipient"), r, x->words);
	if (x->sender || x->sender_rx)
		lookup(x->sender, x->sender_rx, pd_attrs_get(a, "sender"), s, x->words);
	if (x->client)
		lookup(x->client, NULL, pd_attrs_get(a, "client_address"), c, x->words);
	for (size_t w = 0; w < x->words; w++) {
		uint64_t cand = ~0ull;

		if (x->rcpt || x->rcpt_rx)
			cand &= r[w] | ~x->need_rcpt[w];
		if (x->sender || x->sender_rx)
			cand &= s[w] | ~x->need_sender[w];
		if (x->client)
			cand &= c[w] | ~x->need_client[w];
		if (w == x->words - 1 && x->n_rule % 64)
			cand &= (1ull << (x->n_rule % 64)) - 1;
		while (cand) {
			size_t k = w * 64 + (size_t)__builtin_ctzll(cand);
			const pd_chain_rules *ru = &x->rule[k]->rules;

			cand &= cand - 1;
			if (((x->need_other[w] >> (k % 64)) & 1) &&
			    ((ru->states && !(ru->states & state)) || (ru->sasl >= 0 && ru->sasl != is_sasl)))
				continue;
			return x->rule[k];
		}
	}
	return NULL;
}

/* pd_route - the chain of one request */
const pd_chain *pd_route(const pd_conf *g, const pd_attrs *a, const char *listener_chain, pd_route_memo *memo)
{
	const char *ctxname = pd_attrs_get(a, "policy_context"), *inst = pd_attrs_get(a, "instance");
	unsigned state = pd_request_state(pd_attrs_get(a, "protocol_state"));
	const pd_chain *ch = NULL;
	const char *why = "its rules";
	int per_message = inst && *inst && strlen(inst) < sizeof(memo->instance);

	if (memo && per_message && (state == PD_ST_DATA || state == PD_ST_EOM) && memo->gen == g &&
	    strcmp(memo->instance, inst) == 0) {
		ch = memo->chain;
		why = "the message's first recipient's";
	}
	if (!ch && g->routes.n_rule)
		ch = by_rules(&g->routes, a, state);
	if (!ch && ctxname && *ctxname) {
		ch = pd_conf_chain(g, ctxname);
		why = "its policy_context";
		if (!ch && pd_log_verbose()) {
			char buf[80];

			pd_esc(buf, sizeof(buf), ctxname, 64, PD_ESC_TOKEN);
			pd_log(PD_LOG_DEBUG, "policy_context \"%s\" names no chain; using chain %s", buf, listener_chain);
		}
	}
	if (!ch) {
		ch = pd_conf_chain(g, listener_chain);
		why = "the listener's";
	}
	if (!ch) {
		ch = g->chains[0];
		why = "the default";
	}
	if (memo && per_message && state == PD_ST_RCPT && (memo->gen != g || strcmp(memo->instance, inst) != 0)) {
		memo->gen = g; /* the message's first recipient: its chain serves DATA and END-OF-MESSAGE */
		memo->chain = ch;
		snprintf(memo->instance, sizeof(memo->instance), "%s", inst);
	}
	if (pd_chain_trace) {
		char t[160];

		snprintf(t, sizeof(t), "chain %s (%s)", ch->name, why);
		pd_chain_trace(NULL, t);
	}
	return ch;
}
