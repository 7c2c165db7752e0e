/* spf_int.h - internal interfaces between the spf plugin's source files */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_SPF_INT_H
#define PD_SPF_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <netinet/in.h>
#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include <policyd/plugin.h>

/* Results, in the order used for per-result option tables. */
enum pd_spf_result {
	PD_SPF_NONE,
	PD_SPF_NEUTRAL,
	PD_SPF_PASS,
	PD_SPF_FAIL,
	PD_SPF_SOFTFAIL,
	PD_SPF_TEMPERROR,
	PD_SPF_PERMERROR,
	PD_SPF_NRESULTS
};

/* FNV-1a of a cache key (the message and outcome caches). */
static inline unsigned pd_spf_key_hash(const char *k)
{
	unsigned h = 2166136261u;

	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 16777619u;
	return h;
}

/* Name of a result as used in Received-SPF and in the options. */
const char *pd_spf_result_name(enum pd_spf_result r);

/* libspf2's DNS layer on the core's DNS service (host->dns): the lookups
 * of the check running on this thread go through the request it serves. */
typedef struct pd_spf_resolver pd_spf_resolver;

/* A resolver for instance INST (its host, clock and DNS settings). */
pd_spf_resolver *pd_spf_resolver_new(pd_instance *inst);
void pd_spf_resolver_free(pd_spf_resolver *r);

/* The request whose check runs on this thread (spf.c sets it around a check). */
extern __thread pd_request *pd_spf_req;
/* Set by a lookup whose answer is not in yet (the core started the query):
 * the check must end with PD_CHECK_WAIT, having changed nothing. */
extern __thread int pd_spf_missed;
/* Set by a lookup that ran out of time (the check's DNS deadline). */
extern __thread int pd_spf_timed_out;
/* Until when every answer this thread's check used stays true: lowered to
 * each answer's expiry. The engine sets it high before a check. */
extern __thread time_t pd_spf_valid_until;

/* Look NAME/TYPE up. Returns an SPF_dns_rr_t owned by the caller (herrno:
 * NETDB_SUCCESS, NO_DATA, HOST_NOT_FOUND or TRY_AGAIN: a failure, a timeout
 * or an answer not in yet), or NULL when out of memory. */
SPF_dns_rr_t *pd_spf_resolve(pd_spf_resolver *r, SPF_dns_server_t *layer, const char *name, ns_type type);

/* The resolver's clock (seconds). */
time_t pd_spf_resolver_now(pd_spf_resolver *r);

/* The evaluation engine: libspf2 with our DNS layer and RFC 7208 fixes. */
typedef struct pd_spf_engine pd_spf_engine;

struct pd_spf_engine_cfg {
	const char *receiver;    /* our name in headers and %{r} */
	unsigned lookup_limit;   /* DNS-mechanism terms, RFC 7208: 10 */
	unsigned void_limit;     /* void lookups, RFC 7208: 2 */
	const char *explanation; /* default explanation (macro string) or NULL */
	size_t result_cache;     /* outcomes remembered while their answers are cached (0: none) */
};

pd_spf_engine *pd_spf_engine_new(pd_spf_resolver *r, const struct pd_spf_engine_cfg *cfg, char *errbuf, size_t errlen);
void pd_spf_engine_free(pd_spf_engine *e);

/* Outcome of one check. */
struct pd_spf_outcome {
	enum pd_spf_result result;
	char mechanism[128];   /* the term that decided, or "default" */
	char problem[128];     /* why an error result, or "" */
	char explanation[256]; /* for fail: the explanation text, or "" */
	char comment[512];     /* RFC 7208 9.1 comment */
	int cached;            /* 1: remembered from an earlier check on the same cached answers */
};

/* Check IDENTITY ("mailfrom" or "helo") for client IP (text), HELO name and
 * SENDER (the full address; "" for the null sender). An outcome is
 * remembered until the first DNS answer it used expires, and a check with
 * the same inputs before then gets it without evaluating the records again
 * (temperror is never remembered, nor a check that must wait for DNS). */
void pd_spf_engine_check(pd_spf_engine *e, const char *ip, const char *helo, const char *sender, int helo_identity,
                         struct pd_spf_outcome *out);

#endif
