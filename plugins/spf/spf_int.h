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

/* A stub resolver with its own timeouts and a bounded TTL cache. */
typedef struct pd_spf_resolver pd_spf_resolver;

/* Make a resolver for the nameservers in RESOLV_CONF (NULL: the system
 * file), caching up to CACHE_SIZE answers (0: no cache) for at most
 * MAX_TTL seconds. NOW is the clock. Returns NULL after logging to ERRBUF. */
pd_spf_resolver *pd_spf_resolver_new(const char *resolv_conf, size_t cache_size, unsigned max_ttl, time_t (*now)(void),
                                     char *errbuf, size_t errlen);
void pd_spf_resolver_free(pd_spf_resolver *r);

/* Counters for tests and logs. */
struct pd_spf_dns_stats {
	unsigned long queries;    /* packets sent */
	unsigned long cache_hits; /* answers served from the cache */
	unsigned long timeouts;   /* lookups that ran out of time */
};
void pd_spf_resolver_stats(pd_spf_resolver *r, struct pd_spf_dns_stats *st);

/* Look NAME/TYPE up, never past DEADLINE (CLOCK_MONOTONIC). Returns an
 * SPF_dns_rr_t owned by the caller (herrno: NETDB_SUCCESS, NO_DATA,
 * HOST_NOT_FOUND or TRY_AGAIN), or NULL when out of memory. */
SPF_dns_rr_t *pd_spf_resolve(pd_spf_resolver *r, SPF_dns_server_t *layer, const char *name, ns_type type,
                             const struct timespec *deadline);

/* Cache-only lookups for this thread (a network thread, which must not
 * wait): a lookup the cache cannot answer sets pd_spf_missed and fails
 * with TRY_AGAIN at once, without a query. */
extern __thread int pd_spf_cache_only;
extern __thread int pd_spf_missed;

/* Until when every answer this thread's lookups used stays true: lowered to
 * the expiry of each cached answer used, and to 0 by an answer that came from
 * the network (or none came). The engine sets it high before a check. */
extern __thread time_t pd_spf_valid_until;

/* The resolver's clock (seconds). */
time_t pd_spf_resolver_now(pd_spf_resolver *r);

/* Milliseconds from now to DEADLINE (CLOCK_MONOTONIC), at least 0. */
long pd_spf_ms_left(const struct timespec *deadline);

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
 * SENDER (the full address; "" for the null sender), before DEADLINE. An
 * outcome that came from cached DNS answers alone is remembered until the
 * first of them expires, and a check with the same inputs before then gets it
 * without evaluating the records again (temperror is never remembered). */
void pd_spf_engine_check(pd_spf_engine *e, const char *ip, const char *helo, const char *sender, int helo_identity,
                         const struct timespec *deadline, struct pd_spf_outcome *out);

#endif
