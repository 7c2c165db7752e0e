/* request.c - one request on its way through the core: attributes, chain progress, DNS answers, scores */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "request.h"

#include <string.h>

/* pd_request_init - an empty request belonging to CONN */
void pd_request_init(pd_request *r, struct pd_conn *conn)
{
	memset(r, 0, sizeof(*r));
	pd_attrs_init(&r->attrs);
	r->conn = conn;
}

/* pd_request_reset - ready for the next request on the same connection */
void pd_request_reset(pd_request *r)
{
	pd_attrs_reset(&r->attrs);
	pd_attrs_trim(&r->attrs);
	pd_dns_req_reset(&r->dns);
	pd_scores_reset(&r->scores);
	r->gen = NULL;
	r->chain = NULL;
	r->t0 = 0;
	r->qnext = NULL;
}

/* pd_request_free - release everything R holds */
void pd_request_free(pd_request *r)
{
	pd_attrs_free(&r->attrs);
	pd_dns_req_free(&r->dns);
	pd_scores_free(&r->scores);
}
