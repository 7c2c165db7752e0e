/* dns_cache.c - one DNS answer cache for every plugin and thread: keyed hashing, TTLs, bounded size */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Stripes, each under its own mutex, hold hash chains of entries and a
 * FIFO list for eviction. The hash is SipHash-2-4 under a random key:
 * clients choose the names looked up (sender domains, HELO names, PTRs), so
 * an unkeyed hash would let them pile entries into one chain.
 */
#include "config.h"
#include "dns_cache.h"
#include "siphash.h"
#include "util.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define STRIPES 64

typedef struct entry {
	struct entry *hnext;          /* hash chain */
	struct entry *older, *newer;  /* insertion order, for eviction */
	uint64_t hash;
	int resolver;
	time_t expires;
	pd_dns_blob *blob;
} entry;

typedef struct stripe {
	pthread_mutex_t lock;
	entry **buckets;
	size_t nbuckets, n, max;
	entry *oldest, *newest;
	unsigned long hits, misses;
} stripe;

static stripe stripes[STRIPES];
static uint8_t key[16];
static int ready;

/* pd_dns_hash - keyed hash of NAME, TYPE and RESOLVER */
uint64_t pd_dns_hash(const char *name, unsigned type, int resolver)
{
	char buf[272];
	size_t n = strlen(name);

	memcpy(buf, name, n);
	buf[n++] = 0;
	memcpy(buf + n, &type, sizeof(type));
	n += sizeof(type);
	memcpy(buf + n, &resolver, sizeof(resolver));
	n += sizeof(resolver);
	return pd_siphash64(key, buf, n);
}

/* unlink_entry - take E out of stripe S and free it (lock held) */
static void unlink_entry(stripe *s, entry *e)
{
	entry **pp = &s->buckets[(e->hash >> 6) & (s->nbuckets - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	if (e->older)
		e->older->newer = e->newer;
	else
		s->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		s->newest = e->older;
	s->n--;
	pd_dns_blob_unref(e->blob);
	free(e);
}

/* pd_dns_cache_free - forget everything */
void pd_dns_cache_free(void)
{
	if (!ready)
		return;
	for (int i = 0; i < STRIPES; i++) {
		stripe *s = &stripes[i];

		while (s->oldest)
			unlink_entry(s, s->oldest);
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	memset(stripes, 0, sizeof(stripes));
	ready = 0;
}

/* pd_dns_cache_init - an empty cache for MAX answers */
void pd_dns_cache_init(size_t max)
{
	pd_dns_cache_free();
	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
		uint64_t t = pd_now_us() ^ (uint64_t)(uintptr_t)&key;

		memcpy(key, &t, sizeof(t)); /* no entropy yet: still unknown to a remote client */
		memcpy(key + 8, &t, sizeof(t));
	}
	for (int i = 0; i < STRIPES; i++) {
		stripe *s = &stripes[i];

		pthread_mutex_init(&s->lock, NULL);
		s->max = max ? (max + STRIPES - 1) / STRIPES : 0;
		s->nbuckets = 4;
		while (s->nbuckets < s->max && s->nbuckets < (1u << 20))
			s->nbuckets <<= 1;
		s->buckets = pd_xcalloc(s->nbuckets, sizeof(*s->buckets));
	}
	ready = 1;
}

/* pd_dns_cache_get - a referenced live answer, or NULL */
pd_dns_blob *pd_dns_cache_get(const char *name, unsigned type, int resolver, unsigned max_ttl, time_t now)
{
	uint64_t h;
	stripe *s;
	entry *e;
	pd_dns_blob *b = NULL;

	if (!ready)
		return NULL;
	h = pd_dns_hash(name, type, resolver);
	s = &stripes[h & (STRIPES - 1)];
	if (!s->max)
		return NULL;
	pthread_mutex_lock(&s->lock);
	for (e = s->buckets[(h >> 6) & (s->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == h && e->resolver == resolver && e->blob->type == type && strcmp(e->blob->name, name) == 0)
			break;
	if (e && e->expires <= now) {
		unlink_entry(s, e);
		e = NULL;
	}
	if (e && now - e->blob->stored < (time_t)max_ttl)
		b = pd_dns_blob_ref(e->blob);
	if (b)
		s->hits++;
	else
		s->misses++;
	pthread_mutex_unlock(&s->lock);
	return b;
}

/* pd_dns_cache_put - remember B until it expires */
void pd_dns_cache_put(pd_dns_blob *b, int resolver)
{
	uint64_t h;
	stripe *s;
	entry *e, *old;
	size_t slot;

	if (!ready || b->ttl == 0 || (b->status != PD_DNS_OK && b->status != PD_DNS_NXDOMAIN))
		return;
	h = pd_dns_hash(b->name, b->type, resolver);
	s = &stripes[h & (STRIPES - 1)];
	if (!s->max)
		return;
	e = pd_xcalloc(1, sizeof(*e));
	e->hash = h;
	e->resolver = resolver;
	e->expires = b->stored + (time_t)b->ttl;
	e->blob = pd_dns_blob_ref(b);
	slot = (h >> 6) & (s->nbuckets - 1);
	pthread_mutex_lock(&s->lock);
	for (old = s->buckets[slot]; old; old = old->hnext)
		if (old->hash == h && old->resolver == resolver && old->blob->type == b->type &&
		    strcmp(old->blob->name, b->name) == 0)
			break;
	if (old)
		unlink_entry(s, old);
	while (s->n >= s->max && s->oldest)
		unlink_entry(s, s->oldest);
	e->hnext = s->buckets[slot];
	s->buckets[slot] = e;
	e->older = s->newest;
	if (s->newest)
		s->newest->newer = e;
	else
		s->oldest = e;
	s->newest = e;
	s->n++;
	pthread_mutex_unlock(&s->lock);
}

/* pd_dns_cache_stats_get - sizes and counters */
void pd_dns_cache_stats_get(pd_dns_cache_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!ready)
		return;
	for (int i = 0; i < STRIPES; i++) {
		stripe *s = &stripes[i];

		pthread_mutex_lock(&s->lock);
		st->entries += s->n;
		st->hits += s->hits;
		st->misses += s->misses;
		for (size_t k = 0; k < s->nbuckets; k++) {
			size_t len = 0;

			for (entry *e = s->buckets[k]; e; e = e->hnext)
				len++;
			if (len > st->longest_chain)
				st->longest_chain = len;
		}
		pthread_mutex_unlock(&s->lock);
	}
}
