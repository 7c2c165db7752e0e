/* route.h - which chain a request takes */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_ROUTE_H
#define PD_ROUTE_H

#include "chain.h"
#include "proto.h"

struct pd_conf;

/* The chain for a request with attributes A that came in on a listener
 * whose chain is LISTENER_CHAIN: the one Postfix's policy_context names,
 * else the listener's, else the default chain. */
const pd_chain *pd_route(const struct pd_conf *g, const pd_attrs *a, const char *listener_chain);

#endif
