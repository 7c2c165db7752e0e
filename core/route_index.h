/* route_index.h - the chain rules of policyd.conf as one index: which chains a recipient, sender or client names */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_ROUTE_INDEX_H
#define PD_ROUTE_INDEX_H

#include <confuse.h>
#include <stddef.h>
#include <stdint.h>

#include "table.h"

struct pd_chain;

/* Chains that say which requests they take (recipients, senders, clients,
 * sasl, protocol_state), in the file's order, and for each kind of list one
 * table over every chain: key -> the numbers of the chains listing it
 * ("0,3,17", lib/table's merge mode), so that one lookup finds every chain
 * naming a recipient however many chains there are. */
typedef struct pd_route_index {
	struct pd_chain **rule; /* rule chains, tried in this order */
	size_t n_rule;
	size_t words;           /* 64-bit words of a bit set of n_rule chains */
	/* bit K: rule chain K has a recipients / senders / clients list; or a sasl or
	 * protocol_state condition */
	uint64_t *need_rcpt, *need_sender, *need_client, *need_other;
	pd_table *rcpt, *rcpt_rx, *sender, *sender_rx, *client;
} pd_route_index;

#define PD_ROUTE_MAX_RULES 4096

/* The options a chain section adds for its rules (conf.c's chain table). */
#define PD_ROUTE_CHAIN_OPTS                                    \
	CFG_STR_LIST("recipients", "{}", CFGF_NONE),           \
	    CFG_STR_LIST("senders", "{}", CFGF_NONE),          \
	    CFG_STR_LIST("clients", "{}", CFGF_NONE),          \
	    CFG_BOOL("sasl", cfg_false, CFGF_NODEFAULT),       \
	    CFG_STR_LIST("protocol_state", NULL, CFGF_NODEFAULT)

/* Validation callbacks of those lists on CFG (entries checked as they are
 * parsed: errors at their own line). DIR: base of relative file names. */
void pd_route_validators(cfg_t *cfg, const char *dir);

/* Read the rules of chain CH from its section SEC into X (files loaded,
 * relative to DIR). 0, or -1 after logging FILE:LINE. */
int pd_route_index_add(pd_route_index *x, struct pd_chain *ch, cfg_t *sec, const char *dir, const char *file);

void pd_route_index_free(pd_route_index *x);

#endif
