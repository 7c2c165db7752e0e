/* spf_dns.c - libspf2's DNS layer on the core's DNS service: answers through host->dns */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * libspf2 asks synchronously; the core answers at once what it has (its
 * shared cache, or what this request already received) and starts a query
 * for the rest. Such a lookup fails here with TRY_AGAIN and marks the check
 * pd_spf_missed: spf.c then returns PD_CHECK_WAIT, and the core runs the
 * check again from the start once the answers are in, or past its DNS
 * deadline (then the answers are timeouts, and libspf2 gets TRY_AGAIN:
 * temperror). The query guarantees (random IDs and ports, question
 * matching, TCP after truncation, the deadline) are the core's (dns.c).
 */
#include "spf_int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include <spf2/spf_dns_rr.h>

struct pd_spf_resolver {
	pd_instance *inst;
};

__thread pd_request *pd_spf_req;
__thread int pd_spf_missed;
__thread int pd_spf_timed_out;
__thread time_t pd_spf_valid_until;

/* pd_spf_resolver_new - the layer for INST */
pd_spf_resolver *pd_spf_resolver_new(pd_instance *inst)
{
	pd_spf_resolver *r = calloc(1, sizeof(*r));

	if (r)
		r->inst = inst;
	return r;
}

/* pd_spf_resolver_free - free it */
void pd_spf_resolver_free(pd_spf_resolver *r)
{
	free(r);
}

/* pd_spf_resolver_now - the host's clock */
time_t pd_spf_resolver_now(pd_spf_resolver *r)
{
	return r->inst->host->now();
}

/* to_libspf2 - the core's answer A as an SPF_dns_rr_t */
static SPF_dns_rr_t *to_libspf2(SPF_dns_server_t *layer, const char *name, ns_type type, const pd_dns_answer *a)
{
	SPF_dns_rr_t *out;
	size_t k = 0;

	if (a->status == PD_DNS_NXDOMAIN || a->status == PD_DNS_BADNAME)
		return SPF_dns_rr_new_init(layer, name, type, (int)a->ttl, HOST_NOT_FOUND);
	if (a->status != PD_DNS_OK)
		return SPF_dns_rr_new_init(layer, name, type, 0, TRY_AGAIN);
	out = SPF_dns_rr_new_init(layer, name, type, (int)a->ttl, a->n ? NETDB_SUCCESS : NO_DATA);
	if (!out)
		return NULL;
	for (size_t i = 0; i < a->n; i++) {
		const pd_dns_rr *rr = &a->rr[i];
		size_t need;

		switch (type) {
		case ns_t_a:
			need = sizeof(struct in_addr);
			break;
		case ns_t_aaaa:
			need = sizeof(struct in6_addr);
			break;
		default:
			need = rr->len + 1;
		}
		if (SPF_dns_rr_buf_realloc(out, (int)k, need) != SPF_E_SUCCESS) {
			SPF_dns_rr_free(out);
			return NULL;
		}
		if (type == ns_t_a)
			memcpy(&out->rr[k]->a, rr->addr, 4);
		else if (type == ns_t_aaaa)
			memcpy(&out->rr[k]->aaaa, rr->addr, 16);
		else
			memcpy(out->rr[k]->txt, rr->text, rr->len + 1);
		k++;
	}
	out->num_rr = (int)k;
	if (!k)
		out->herrno = NO_DATA;
	return out;
}

/* pd_spf_resolve - NAME/TYPE through the core */
SPF_dns_rr_t *pd_spf_resolve(pd_spf_resolver *r, SPF_dns_server_t *layer, const char *name, ns_type type)
{
	const pd_host *h = r->inst->host;
	const pd_dns_answer *a;
	int st;

	if (!pd_spf_req) /* outside a check */
		return SPF_dns_rr_new_init(layer, name, type, 0, TRY_AGAIN);
	st = h->dns(pd_spf_req, name, (unsigned)type, &a);
	if (st == PD_DNS_PENDING) { /* under way: the check runs again when it is in */
		pd_spf_missed = 1;
		return SPF_dns_rr_new_init(layer, name, type, 0, TRY_AGAIN);
	}
	if (st == PD_DNS_TIMEOUT)
		pd_spf_timed_out = 1;
	if (a) {
		time_t until = h->now() + (time_t)a->ttl;

		if (until < pd_spf_valid_until)
			pd_spf_valid_until = until;
	}
	return a ? to_libspf2(layer, name, type, a) : SPF_dns_rr_new_init(layer, name, type, 0, TRY_AGAIN);
}
