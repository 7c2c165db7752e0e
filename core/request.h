/* request.h - one request on its way through the core: attributes, chain progress, DNS answers, scores */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_REQUEST_H
#define PD_REQUEST_H

#include <stdint.h>

#include "chain.h"
#include "dns.h"
#include "proto.h"
#include "score.h"

struct pd_conf;
struct pd_conn;

/* The request a connection has in flight (at most one, as Postfix sends
 * them): the plugins' opaque pd_request. It travels one way: parsed on its
 * connection's network thread (pipeline.c), routed to a chain (route.c),
 * checked by the plugins (chain.c) inline, on a worker (workers.c) or after
 * waiting for DNS (dns.c), and answered once (finish.c). */
struct pd_request {
	pd_attrs attrs;         /* what the client sent */
	struct pd_conn *conn;   /* where the answer goes */
	struct pd_conf *gen;    /* the configuration it runs on (one reference) */
	const pd_chain *chain;  /* the chain route.c chose */
	pd_result res;          /* the chain's progress and the reply */
	int chain_rc;           /* what pd_chain_run said on the last worker pass */
	uint64_t t0;            /* pd_now_us() when it was complete */
	pd_dns_req dns;         /* answers it used, names it waits for */
	pd_scores scores;       /* score contributions of its plugins */
	struct pd_request *qnext; /* the worker queue, a loop's done list */
};

/* Set up R for CONN (once), forget one request but keep buffers, free. */
void pd_request_init(pd_request *r, struct pd_conn *conn);
void pd_request_reset(pd_request *r);
void pd_request_free(pd_request *r);

#endif
