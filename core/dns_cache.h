/* dns_cache.h - one DNS answer cache for every plugin and thread: keyed hashing, TTLs, bounded size */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_DNS_CACHE_H
#define PD_DNS_CACHE_H

#include <stddef.h>
#include <time.h>

#include "dns_answer.h"

/* Make the cache for at most MAX answers (0: none), with a fresh random
 * SipHash key (clients choose the names: no unkeyed hash, issue 12.17).
 * Main thread, before the loops start; again on reload to resize. */
void pd_dns_cache_init(size_t max);
void pd_dns_cache_free(void);

/* The keyed hash of a (NAME, TYPE, RESOLVER) key: the cache's, and the
 * loops' tables of queries under way. */
uint64_t pd_dns_hash(const char *name, unsigned type, int resolver);

/* The live answer for NAME (normalised) / TYPE from RESOLVER (an index of
 * dns.c's resolver table), not older than MAX_TTL seconds (the asking
 * instance's limit): a reference the caller unrefs, or NULL. */
pd_dns_blob *pd_dns_cache_get(const char *name, unsigned type, int resolver, unsigned max_ttl, time_t now);
/* Keep B (the cache takes its own reference) until its TTL runs out; the
 * oldest entry of its stripe goes when the stripe is full. */
void pd_dns_cache_put(pd_dns_blob *b, int resolver);

/* Statistics for tests and the metrics. */
typedef struct pd_dns_cache_stats {
	size_t entries;
	size_t longest_chain; /* of any hash bucket */
	unsigned long hits, misses;
} pd_dns_cache_stats;
void pd_dns_cache_stats_get(pd_dns_cache_stats *st);

#endif
