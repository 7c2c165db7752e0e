/* route.h - which chain a request takes */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_ROUTE_H
#define PD_ROUTE_H

#include "chain.h"
#include "proto.h"

struct pd_conf;

/* What a connection remembers between the requests of one message: the
 * chain its first recipient took (DATA and END-OF-MESSAGE have no single
 * recipient), per Postfix's instance attribute. Zeroed: nothing. */
typedef struct pd_route_memo {
	const struct pd_conf *gen; /* the configuration it is valid for */
	const pd_chain *chain;
	char instance[64];
} pd_route_memo;

/* The chain for a request with attributes A that came in on a listener
 * whose chain is LISTENER_CHAIN: at DATA and END-OF-MESSAGE the one of the
 * message's first recipient (MEMO, may be NULL); else the first chain whose
 * rules all hold (recipients, senders, clients, sasl, protocol_state, in the
 * file's order); else the one Postfix's policy_context names; else the
 * listener's; else the default chain. */
const pd_chain *pd_route(const struct pd_conf *g, const pd_attrs *a, const char *listener_chain,
			 pd_route_memo *memo);

#endif
