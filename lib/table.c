/* table.c - lookup tables keyed by addresses, domains, networks or regexes (access tables, chain selection) */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "table.h"

#include "cidr.h"
#include "escape.h"

#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/*
 * Layout. Keys (normalised, lower case) and values live in a string arena
 * of 64 KiB chunks; values are interned, so a million entries that say
 * "REJECT" hold one copy of it. Each kind keeps an array of entries and an
 * open-addressing index over it (linear probing, at most 3/4 full): a slot
 * is the entry's 32-bit hash and its number + 1, so that a probe compares
 * hashes without touching the entry. Exact and suffix tables index the
 * normalised key strings; cidr tables index (prefix length, network) per
 * family and keep the list of prefix lengths present, longest first, so a
 * lookup is one probe per distinct prefix length (at most 33 or 129).
 * Regex tables are an array scanned in order.
 *
 * Lookups never write: no cache, no lazy initialisation, no static buffer.
 * A failed pd_table_load is undone: arrays are truncated to where they
 * were, the slots of the entries it added become tombstones, and the arena
 * is cut back.
 */

#define ARENA_CHUNK (64u * 1024u)
#define SLOT_TOMB UINT32_MAX /* a slot whose entry a failed load removed */
#define MAX_ENTRIES (UINT32_MAX - 1u)

/* one index slot: the entry's hash and its number + 1 (0: empty) */
typedef struct slot {
	uint32_t hash;
	uint32_t ref;
} slot;

/* an open-addressing index (cap: 0 or a power of two) */
typedef struct ix {
	slot *s;
	size_t cap, n, tombs;
} ix;

/* a block of the string arena; chunks are chained newest first */
typedef struct chunk {
	struct chunk *prev;
	size_t used, cap;
	char data[];
} chunk;

/* an exact or suffix entry: normalised key, interned value */
typedef struct kv {
	const char *key;
	const char *val;
} kv;

/* an IPv4 network: address in host order, host bits clear */
typedef struct net4 {
	uint32_t addr;
	uint32_t len;
	const char *val;
} net4;

/* an IPv6 network as two 64-bit halves, host bits clear */
typedef struct net6 {
	uint64_t hi, lo;
	const char *val;
	uint32_t len;
} net6;

/* a regex entry */
typedef struct rx {
	regex_t re;
	const char *val;
} rx;

/* key forms of exact and suffix tables (lookups skip the forms a table lacks) */
enum { F_ADDR, F_ATDOM, F_DOM, F_SUB, F_LOCAL, F_NULL, F_N };

/* counters a failed load restores */
typedef struct counts {
	size_t form[F_N];
	uint32_t len4[33], len6[129]; /* entries per prefix length */
	size_t dups;
} counts;

struct pd_table {
	enum pd_table_kind kind;
	size_t mem; /* bytes allocated, struct excepted */
	chunk *arena;
	kv *kv;
	size_t n_kv, cap_kv;
	ix kv_ix;
	net4 *n4;
	size_t n_n4, cap_n4;
	ix n4_ix;
	net6 *n6;
	size_t n_n6, cap_n6;
	ix n6_ix;
	rx *rx;
	size_t n_rx, cap_rx;
	const char **vals; /* interned values */
	size_t n_vals, cap_vals;
	ix val_ix;
	counts c;
	unsigned char lens4[33], lens6[129]; /* prefix lengths present, longest first */
	int nlens4, nlens6;
	char *first_dup;
	size_t first_dup_size;
	pd_table_check_fn check;
	void *check_arg;
	int merge; /* pd_table_set_merge: a repeated key joins its values */
};

/* where a load started, to undo it */
typedef struct checkpoint {
	chunk *chunk;
	size_t used;
	size_t n_kv, n_n4, n_n6, n_rx, n_vals;
	counts c;
	int had_dup;
} checkpoint;

static const char empty_value[] = "";

/* seterr - format a reason into ERR (which may be NULL or of length 0) */
static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* quote - KEY (LEN bytes) in double quotes, made safe and short for an error message (CAP >= 8) */
static const char *quote(char *dst, size_t cap, const char *key, size_t len)
{
	char tmp[64];
	size_t n = len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1;
	size_t o;

	memcpy(tmp, key, n);
	tmp[n] = 0;
	dst[0] = '"';
	o = 1 + pd_esc(dst + 1, cap - 5, tmp, n, 0);
	if (n < len)
		memcpy(dst + o, "...", 3), o += 3;
	memcpy(dst + o, "\"", 2);
	return dst;
}

/* t_alloc - malloc counted in T's memory */
static void *t_alloc(pd_table *t, size_t n)
{
	void *p = malloc(n);

	if (p)
		t->mem += n;
	return p;
}

/* t_free - free P of N bytes counted in T's memory */
static void t_free(pd_table *t, void *p, size_t n)
{
	if (p) {
		free(p);
		t->mem -= n;
	}
}

/* grow - make room for one more element in array *P (capacity *CAP, N used) */
static int grow(pd_table *t, void **p, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *np;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	if (ncap > SIZE_MAX / size || n >= MAX_ENTRIES)
		return -1;
	np = realloc(*p, ncap * size);
	if (!np)
		return -1;
	t->mem += (ncap - *cap) * size;
	*p = np;
	*cap = ncap;
	return 0;
}

/* fold - ASCII lower case of byte C (locale-independent) */
static inline unsigned char fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* mix - the 64-bit finaliser of MurmurHash3, to 32 bits */
static inline uint32_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (uint32_t)h;
}

/* hash_key - FNV-1a over PRE (0: none) and the LEN bytes at P folded to lower case */
static inline uint32_t hash_key(int pre, const char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	if (pre) {
		h ^= (unsigned char)pre;
		h *= 0x100000001b3ULL;
	}
	for (size_t i = 0; i < len; i++) {
		h ^= fold((unsigned char)p[i]);
		h *= 0x100000001b3ULL;
	}
	return mix(h);
}

/* hash_value - FNV-1a over the LEN bytes at P, case kept */
static uint32_t hash_value(const char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return mix(h);
}

/* hash4 - hash of an IPv4 network */
static inline uint32_t hash4(uint32_t addr, uint32_t len)
{
	return mix(((uint64_t)len << 32 | addr) * 0x9e3779b97f4a7c15ULL);
}

/* hash6 - hash of an IPv6 network */
static inline uint32_t hash6(uint64_t hi, uint64_t lo, uint32_t len)
{
	return mix(hi * 0x9e3779b97f4a7c15ULL ^ mix(lo + len) ^ ((uint64_t)len << 56));
}

/* key_eq - is stored KEY the string PRE (0: none) + LEN bytes at P, folded */
static inline int key_eq(const char *key, int pre, const char *p, size_t len)
{
	if (pre && (unsigned char)*key++ != pre)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)key[i] != fold((unsigned char)p[i]))
			return 0; /* also where KEY ends first: p holds no NUL */
	return key[len] == 0;
}

/* ix_put - place (HASH, REF) in the first free slot of its probe sequence */
static void ix_put(slot *s, size_t cap, uint32_t hash, uint32_t ref)
{
	size_t i = hash & (cap - 1);

	while (s[i].ref && s[i].ref != SLOT_TOMB)
		i = (i + 1) & (cap - 1);
	s[i].hash = hash;
	s[i].ref = ref;
}

/* ix_reserve - make room in X for one more slot (rehash without tombstones); 0 or -1 */
static int ix_reserve(pd_table *t, ix *x)
{
	size_t ncap;
	slot *ns;

	if ((x->n + x->tombs + 1) * 4 <= x->cap * 3)
		return 0;
	ncap = x->cap ? x->cap : 16;
	while ((x->n + 1) * 2 > ncap)
		ncap *= 2;
	if (ncap > SIZE_MAX / sizeof(slot))
		return -1;
	ns = calloc(ncap, sizeof(slot));
	if (!ns)
		return -1;
	t->mem += ncap * sizeof(slot);
	for (size_t i = 0; i < x->cap; i++)
		if (x->s[i].ref && x->s[i].ref != SLOT_TOMB)
			ix_put(ns, ncap, x->s[i].hash, x->s[i].ref);
	t_free(t, x->s, x->cap * sizeof(slot));
	x->s = ns;
	x->cap = ncap;
	x->tombs = 0;
	return 0;
}

/* ix_add - index entry number IDX under HASH (room reserved) */
static void ix_add(ix *x, uint32_t hash, size_t idx)
{
	size_t i = hash & (x->cap - 1);

	/* a tombstone may be reused only if no live duplicate follows, which
	 * the caller has checked: a key is added once */
	while (x->s[i].ref && x->s[i].ref != SLOT_TOMB)
		i = (i + 1) & (x->cap - 1);
	if (x->s[i].ref == SLOT_TOMB)
		x->tombs--;
	x->s[i].hash = hash;
	x->s[i].ref = (uint32_t)idx + 1;
	x->n++;
}

/* ix_truncate - forget the entries numbered KEEP and above (tombstones) */
static void ix_truncate(ix *x, size_t keep)
{
	for (size_t i = 0; i < x->cap; i++)
		if (x->s[i].ref && x->s[i].ref != SLOT_TOMB && x->s[i].ref > keep) {
			x->s[i].ref = SLOT_TOMB;
			x->n--;
			x->tombs++;
		}
}

/* kv_find - the exact/suffix entry whose key is PRE + LEN bytes at P (folded) */
static inline const kv *kv_find(const pd_table *t, int pre, const char *p, size_t len)
{
	const ix *x = &t->kv_ix;
	uint32_t h;

	if (!x->n)
		return NULL;
	h = hash_key(pre, p, len);
	for (size_t i = h & (x->cap - 1);; i = (i + 1) & (x->cap - 1)) {
		const slot *s = &x->s[i];

		if (!s->ref)
			return NULL;
		if (s->hash == h && s->ref != SLOT_TOMB && key_eq(t->kv[s->ref - 1].key, pre, p, len))
			return &t->kv[s->ref - 1];
	}
}

/* n4_find - the IPv4 entry for ADDR/LEN */
static inline const net4 *n4_find(const pd_table *t, uint32_t addr, uint32_t len)
{
	const ix *x = &t->n4_ix;
	uint32_t h = hash4(addr, len);

	if (!x->n)
		return NULL;
	for (size_t i = h & (x->cap - 1);; i = (i + 1) & (x->cap - 1)) {
		const slot *s = &x->s[i];

		if (!s->ref)
			return NULL;
		if (s->hash == h && s->ref != SLOT_TOMB) {
			const net4 *e = &t->n4[s->ref - 1];

			if (e->addr == addr && e->len == len)
				return e;
		}
	}
}

/* n6_find - the IPv6 entry for HI:LO/LEN */
static inline const net6 *n6_find(const pd_table *t, uint64_t hi, uint64_t lo, uint32_t len)
{
	const ix *x = &t->n6_ix;
	uint32_t h = hash6(hi, lo, len);

	if (!x->n)
		return NULL;
	for (size_t i = h & (x->cap - 1);; i = (i + 1) & (x->cap - 1)) {
		const slot *s = &x->s[i];

		if (!s->ref)
			return NULL;
		if (s->hash == h && s->ref != SLOT_TOMB) {
			const net6 *e = &t->n6[s->ref - 1];

			if (e->hi == hi && e->lo == lo && e->len == len)
				return e;
		}
	}
}

/* val_find - the interned copy of the LEN bytes at P, or NULL */
static const char *val_find(const pd_table *t, uint32_t h, const char *p, size_t len)
{
	const ix *x = &t->val_ix;

	if (!x->n)
		return NULL;
	for (size_t i = h & (x->cap - 1);; i = (i + 1) & (x->cap - 1)) {
		const slot *s = &x->s[i];

		if (!s->ref)
			return NULL;
		if (s->hash == h && s->ref != SLOT_TOMB) {
			const char *v = t->vals[s->ref - 1];

			if (memcmp(v, p, len) == 0 && v[len] == 0)
				return v;
		}
	}
}

/* arena_alloc - N bytes of string space */
static char *arena_alloc(pd_table *t, size_t n)
{
	chunk *c = t->arena;
	char *p;

	if (!c || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;

		if (cap > SIZE_MAX - sizeof(chunk))
			return NULL;
		c = t_alloc(t, sizeof(chunk) + cap);
		if (!c)
			return NULL;
		c->prev = t->arena;
		c->used = 0;
		c->cap = cap;
		t->arena = c;
	}
	p = c->data + c->used;
	c->used += n;
	return p;
}

/* arena_cut - free what was allocated since the arena was at (C, USED) */
static void arena_cut(pd_table *t, chunk *c, size_t used)
{
	while (t->arena && t->arena != c) {
		chunk *prev = t->arena->prev;

		t_free(t, t->arena, sizeof(chunk) + t->arena->cap);
		t->arena = prev;
	}
	if (t->arena)
		t->arena->used = used;
}

/* lens_rebuild - list the prefix lengths present, longest first */
static void lens_rebuild(pd_table *t)
{
	t->nlens4 = t->nlens6 = 0;
	for (int l = 32; l >= 0; l--)
		if (t->c.len4[l])
			t->lens4[t->nlens4++] = (unsigned char)l;
	for (int l = 128; l >= 0; l--)
		if (t->c.len6[l])
			t->lens6[t->nlens6++] = (unsigned char)l;
}

/* pd_table_new - an empty table */
pd_table *pd_table_new(enum pd_table_kind kind)
{
	pd_table *t;

	if (kind != PD_TABLE_CIDR && kind != PD_TABLE_EXACT && kind != PD_TABLE_SUFFIX && kind != PD_TABLE_REGEX)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t)
		t->kind = kind;
	return t;
}

/* pd_table_kind - the kind of T */
enum pd_table_kind pd_table_kind(const pd_table *t)
{
	return t->kind;
}

static const char *const kind_names[] = {"cidr", "exact", "suffix", "regex"};

/* pd_table_kind_name - name of a kind */
const char *pd_table_kind_name(enum pd_table_kind kind)
{
	return (unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[kind] : "?";
}

/* pd_table_kind_parse - kind of a name */
int pd_table_kind_parse(const char *name, enum pd_table_kind *kind)
{
	for (unsigned i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
		if (name && strcmp(name, kind_names[i]) == 0) {
			*kind = (enum pd_table_kind)i;
			return 0;
		}
	return -1;
}

/* pd_table_set_check - install a value check */
void pd_table_set_check(pd_table *t, pd_table_check_fn fn, void *arg)
{
	t->check = fn;
	t->check_arg = arg;
}

/* domain_error - why the LEN bytes at D are not a domain, or NULL */
static const char *domain_error(const char *d, size_t len)
{
	size_t label = 0;

	if (!len)
		return "empty domain";
	if (d[0] == '[') {
		if (len < 3 || d[len - 1] != ']' || memchr(d + 1, '[', len - 2) || memchr(d + 1, ']', len - 2))
			return "bad address literal (write [192.0.2.1] or [IPv6:2001:db8::1])";
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.') {
			if (!label)
				return "empty label in domain";
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			   c == '_' || c >= 0x80) {
			label++;
		} else {
			return "character not allowed in a domain";
		}
	}
	return label ? NULL : "empty label in domain";
}

/* put_lower - copy LEN bytes of P folded to lower case to D; returns D + LEN */
static char *put_lower(char *d, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		d[i] = (char)fold((unsigned char)p[i]);
	return d + len;
}

/* norm_key - the normalised form of an exact/suffix key (K, LEN) in the arena; NULL and *WHY on error */
static char *norm_key(pd_table *t, const char *k, size_t len, int *form, const char **why)
{
	const char *at = NULL, *dom;
	size_t dlen, llen;
	char *out, *o;
	int pre = 0;

	if (len >= 2 && k[0] == '<' && k[len - 1] == '>') {
		k++;
		len -= 2;
		if (!len) {
			/* stored as "": no lookup probes an empty string but the null sender's */
			*form = F_NULL;
			if (!(out = arena_alloc(t, 1)))
				goto oom;
			out[0] = 0;
			return out;
		}
	}
	if (!len) {
		*why = "empty key";
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)k[i];

		if (c <= ' ' || c == 0x7f) {
			*why = "white space or control character in key";
			return NULL;
		}
		if (c == '@')
			at = k + i;
	}
	if (at) {
		llen = (size_t)(at - k);
		dom = at + 1;
		dlen = len - llen - 1;
	} else {
		llen = 0;
		dom = k;
		dlen = len;
	}
	if (dlen && dom[dlen - 1] == '.')
		dlen--; /* one trailing dot: example.com. is example.com */
	if (at && llen && dom == k + len) { /* user@ */
		*form = F_LOCAL;
		if (!(out = arena_alloc(t, llen + 2)))
			goto oom;
		o = put_lower(out, k, llen);
		memcpy(o, "@", 2);
		return out;
	}
	if (!at && dlen && dom[0] == '.') { /* .domain */
		if (t->kind == PD_TABLE_EXACT) {
			*why = ".domain (subdomains) needs a suffix table";
			return NULL;
		}
		if (dlen > 1 && dom[1] == '[') {
			*why = "an address literal has no subdomains";
			return NULL;
		}
		dom++;
		dlen--;
		pre = '.';
		*form = F_SUB;
	} else if (at && llen) {
		*form = F_ADDR;
	} else if (at || t->kind == PD_TABLE_EXACT || dom[0] == '[') {
		/* @domain; domain in an exact table; an address literal, which has no subdomains */
		if (at && !dlen) {
			*why = "no domain after '@'";
			return NULL;
		}
		pre = '@';
		*form = F_ATDOM;
	} else {
		*form = F_DOM;
	}
	if ((*why = domain_error(dom, dlen)) != NULL)
		return NULL;
	if (*form == F_ADDR) {
		if (!(out = arena_alloc(t, llen + 1 + dlen + 1)))
			goto oom;
		o = put_lower(out, k, llen);
		*o++ = '@';
	} else {
		if (!(out = arena_alloc(t, (pre ? 1 : 0) + dlen + 1)))
			goto oom;
		o = out;
		if (pre)
			*o++ = (char)pre;
	}
	o = put_lower(o, dom, dlen);
	*o = 0;
	return out;
oom:
	*why = "out of memory";
	return NULL;
}

/* blank - space, tab, CR or LF */
static inline int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* trim - strip blanks at both ends of (*P, *LEN) */
static void trim(const char **p, size_t *len)
{
	while (*len && blank((*p)[0]))
		(*p)++, (*len)--;
	while (*len && blank((*p)[*len - 1]))
		(*len)--;
}

/* add_entry - add (KEY, KLEN) with value (VAL, VLEN; NULL: none); PATH:LINENO (PATH NULL: none) names a duplicate */
/* intern - the interned copy of the LEN bytes at P (made if new); NULL when out of memory */
static const char *intern(pd_table *t, const char *p, size_t len)
{
	uint32_t h = hash_value(p, len);
	const char *v = val_find(t, h, p, len);
	char *copy;

	if (v)
		return v;
	if (grow(t, (void **)&t->vals, &t->cap_vals, t->n_vals, sizeof(*t->vals)) < 0 ||
	    ix_reserve(t, &t->val_ix) < 0 || !(copy = arena_alloc(t, len + 1)))
		return NULL;
	memcpy(copy, p, len);
	copy[len] = 0;
	t->vals[t->n_vals] = copy;
	ix_add(&t->val_ix, h, t->n_vals++);
	return copy;
}

/* has_item - is V one of the comma-separated items of LIST? */
static int has_item(const char *list, const char *v)
{
	size_t n = strlen(v);

	for (const char *p = list; p; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (strncmp(p, v, n) == 0 && (p[n] == ',' || !p[n]))
			return 1;
	}
	return 0;
}

/* merge_value - merge mode: the entry already under this key gets ",V" after its value (once) */
static int merge_value(pd_table *t, const char *nkey, const net4 *e4, const net6 *e6, int form, const char *v,
		       char *why, size_t whylen)
{
	const char **slotp;
	const char *old, *joined;
	char *buf;
	size_t lo, lv;

	if (t->kind == PD_TABLE_CIDR)
		slotp = form == AF_INET ? &((net4 *)n4_find(t, e4->addr, e4->len))->val
					: &((net6 *)n6_find(t, e6->hi, e6->lo, e6->len))->val;
	else
		slotp = &((kv *)kv_find(t, 0, nkey, strlen(nkey)))->val;
	old = *slotp;
	if (!*v || has_item(old, v))
		return 0;
	lo = strlen(old);
	lv = strlen(v);
	if (!(buf = malloc(lo + lv + 2))) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	memcpy(buf, old, lo);
	buf[lo] = ',';
	memcpy(buf + lo + 1, v, lv + 1);
	joined = intern(t, buf, lo + lv + 1);
	free(buf);
	if (!joined) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	*slotp = joined;
	return 0;
}

static int add_entry(pd_table *t, const char *key, size_t klen, const char *val, size_t vlen, const char *path,
		     unsigned long lineno, char *why, size_t whylen)
{
	chunk *mark_c = t->arena;
	size_t mark_used = t->arena ? t->arena->used : 0;
	const char *reason = NULL, *v = empty_value;
	char q[128];
	char *nkey = NULL;
	int form = 0, have_re = 0, is_dup = 0, new_val = 0;
	uint32_t vh = 0, kh = 0;
	net4 e4 = {0};
	net6 e6 = {0};
	rx r;

	trim(&key, &klen);
	/* 1. the key */
	switch (t->kind) {
	case PD_TABLE_CIDR: {
		char buf[64];
		pd_cidr c;

		if (klen >= sizeof(buf)) {
			reason = "not an IPv4/IPv6 address or network";
			break;
		}
		memcpy(buf, key, klen);
		buf[klen] = 0;
		if (pd_cidr_parse_strict(buf, &c, &reason) < 0)
			break;
		if (c.family == AF_INET) {
			e4.addr = (uint32_t)c.addr[0] << 24 | (uint32_t)c.addr[1] << 16 | (uint32_t)c.addr[2] << 8 | c.addr[3];
			e4.len = (uint32_t)c.prefix;
			is_dup = n4_find(t, e4.addr, e4.len) != NULL;
		} else {
			for (int i = 0; i < 8; i++) {
				e6.hi = e6.hi << 8 | c.addr[i];
				e6.lo = e6.lo << 8 | c.addr[8 + i];
			}
			e6.len = (uint32_t)c.prefix;
			is_dup = n6_find(t, e6.hi, e6.lo, e6.len) != NULL;
		}
		form = c.family;
		break;
	}
	case PD_TABLE_REGEX: {
		char *pat;
		int rc;

		if (klen < 2 || key[0] != '/' || key[klen - 1] != '/') {
			reason = klen > 2 && key[0] == '/' && memchr(key + 1, '/', klen - 1)
					 ? "no flags after a regex (/pattern/: matching is case-insensitive)"
					 : "a regex key is written /pattern/";
			break;
		}
		if (klen == 2) {
			reason = "empty regex (/^/ matches everything)";
			break;
		}
		if (!(pat = malloc(klen - 1))) {
			reason = "out of memory";
			break;
		}
		memcpy(pat, key + 1, klen - 2);
		pat[klen - 2] = 0;
		rc = regcomp(&r.re, pat, REG_EXTENDED | REG_ICASE | REG_NOSUB);
		free(pat);
		if (rc != 0) {
			char m[96];

			regerror(rc, &r.re, m, sizeof(m));
			snprintf(why, whylen, "bad regex %s: %s", quote(q, sizeof(q), key, klen), m);
			return -1;
		}
		have_re = 1;
		break;
	}
	default:
		if ((nkey = norm_key(t, key, klen, &form, &reason)) != NULL) {
			size_t nlen = strlen(nkey);

			kh = hash_key(0, nkey, nlen);
			is_dup = kv_find(t, 0, nkey, nlen) != NULL;
		}
		break;
	}
	if (reason) {
		snprintf(why, whylen, "bad key %s: %s", quote(q, sizeof(q), key, klen), reason);
		goto fail;
	}
	/* 2. the value: one non-empty line, and what the caller's check says */
	if (val) {
		trim(&val, &vlen);
		if (!vlen) {
			snprintf(why, whylen, "empty value");
			goto fail;
		}
		for (size_t i = 0; i < vlen; i++) {
			unsigned char ch = (unsigned char)val[i];

			if ((ch < ' ' && ch != '\t') || ch == 0x7f) {
				snprintf(why, whylen, "control character in value (a value is one line)");
				goto fail;
			}
		}
		vh = hash_value(val, vlen);
		if (!(v = val_find(t, vh, val, vlen))) {
			char *copy = arena_alloc(t, vlen + 1);

			if (!copy) {
				snprintf(why, whylen, "out of memory");
				goto fail;
			}
			memcpy(copy, val, vlen);
			copy[vlen] = 0;
			if (t->check) {
				char cwhy[256] = "";

				if (t->check(copy, cwhy, sizeof(cwhy) - 1, t->check_arg) != 0) {
					snprintf(why, whylen, "bad value \"%.64s%s\": %s", copy, vlen > 64 ? "..." : "",
						 cwhy[0] ? cwhy : "refused");
					goto fail;
				}
			}
			v = copy;
			new_val = 1;
		}
	}
	/* 3. a key seen before: the first entry wins, or (merge) it gets this value too */
	if (is_dup && t->merge && t->kind != PD_TABLE_REGEX)
		return merge_value(t, nkey, &e4, &e6, form, v, why, whylen);
	if (is_dup) {
		arena_cut(t, mark_c, mark_used);
		t->c.dups++;
		if (!t->first_dup) {
			size_t n = (path ? strlen(path) : 0) + 200;

			if ((t->first_dup = t_alloc(t, n)) != NULL) {
				t->first_dup_size = n;
				if (path)
					snprintf(t->first_dup, n, "%s:%lu: duplicate key %s ignored (the first entry wins)",
						 path, lineno, quote(q, sizeof(q), key, klen));
				else
					snprintf(t->first_dup, n, "duplicate key %s ignored (the first entry wins)",
						 quote(q, sizeof(q), key, klen));
			}
		}
		return 0;
	}
	/* 4. make room, then nothing can fail */
	if (new_val && (grow(t, (void **)&t->vals, &t->cap_vals, t->n_vals, sizeof(*t->vals)) < 0 ||
			ix_reserve(t, &t->val_ix) < 0))
		goto oom;
	switch (t->kind) {
	case PD_TABLE_CIDR:
		if (form == AF_INET ? grow(t, (void **)&t->n4, &t->cap_n4, t->n_n4, sizeof(net4)) < 0 ||
					      ix_reserve(t, &t->n4_ix) < 0
				    : grow(t, (void **)&t->n6, &t->cap_n6, t->n_n6, sizeof(net6)) < 0 ||
					      ix_reserve(t, &t->n6_ix) < 0)
			goto oom;
		break;
	case PD_TABLE_REGEX:
		if (grow(t, (void **)&t->rx, &t->cap_rx, t->n_rx, sizeof(rx)) < 0)
			goto oom;
		break;
	default:
		if (grow(t, (void **)&t->kv, &t->cap_kv, t->n_kv, sizeof(kv)) < 0 || ix_reserve(t, &t->kv_ix) < 0)
			goto oom;
		break;
	}
	if (new_val) {
		t->vals[t->n_vals] = v;
		ix_add(&t->val_ix, vh, t->n_vals++);
	}
	switch (t->kind) {
	case PD_TABLE_CIDR:
		if (form == AF_INET) {
			e4.val = v;
			t->n4[t->n_n4] = e4;
			ix_add(&t->n4_ix, hash4(e4.addr, e4.len), t->n_n4++);
			if (!t->c.len4[e4.len]++)
				lens_rebuild(t);
		} else {
			e6.val = v;
			t->n6[t->n_n6] = e6;
			ix_add(&t->n6_ix, hash6(e6.hi, e6.lo, e6.len), t->n_n6++);
			if (!t->c.len6[e6.len]++)
				lens_rebuild(t);
		}
		break;
	case PD_TABLE_REGEX:
		r.val = v;
		t->rx[t->n_rx++] = r;
		break;
	default:
		t->kv[t->n_kv].key = nkey;
		t->kv[t->n_kv].val = v;
		ix_add(&t->kv_ix, kh, t->n_kv++);
		t->c.form[form]++;
		break;
	}
	return 0;
oom:
	snprintf(why, whylen, "out of memory");
fail:
	if (have_re)
		regfree(&r.re);
	arena_cut(t, mark_c, mark_used);
	return -1;
}

/* pd_table_add - add one entry */
int pd_table_add(pd_table *t, const char *key, const char *value, char *err, size_t errlen)
{
	char why[512];

	if (!t || !key) {
		seterr(err, errlen, "no table or no key");
		return -1;
	}
	if (add_entry(t, key, strlen(key), value, value ? strlen(value) : 0, NULL, 0, why, sizeof(why)) < 0) {
		seterr(err, errlen, "%s", why);
		return -1;
	}
	return 0;
}

/* checkpoint_take - remember T's state before a load */
static void checkpoint_take(const pd_table *t, checkpoint *cp)
{
	cp->chunk = t->arena;
	cp->used = t->arena ? t->arena->used : 0;
	cp->n_kv = t->n_kv;
	cp->n_n4 = t->n_n4;
	cp->n_n6 = t->n_n6;
	cp->n_rx = t->n_rx;
	cp->n_vals = t->n_vals;
	cp->c = t->c;
	cp->had_dup = t->first_dup != NULL;
}

/* checkpoint_restore - undo everything added since CP */
static void checkpoint_restore(pd_table *t, const checkpoint *cp)
{
	for (size_t i = cp->n_rx; i < t->n_rx; i++)
		regfree(&t->rx[i].re);
	t->n_rx = cp->n_rx;
	ix_truncate(&t->kv_ix, cp->n_kv);
	t->n_kv = cp->n_kv;
	ix_truncate(&t->n4_ix, cp->n_n4);
	t->n_n4 = cp->n_n4;
	ix_truncate(&t->n6_ix, cp->n_n6);
	t->n_n6 = cp->n_n6;
	ix_truncate(&t->val_ix, cp->n_vals);
	t->n_vals = cp->n_vals;
	t->c = cp->c;
	lens_rebuild(t);
	if (!cp->had_dup && t->first_dup) {
		t_free(t, t->first_dup, t->first_dup_size);
		t->first_dup = NULL;
	}
	arena_cut(t, cp->chunk, cp->used);
}

/* load - add the entries of a file, all or none; every key gets FIXED when it is not NULL */
static int load(pd_table *t, const char *path, unsigned flags, const char *fixed, char *err, size_t errlen)
{
	char *line = NULL, why[512];
	size_t cap = 0;
	unsigned long lineno = 0;
	ssize_t n;
	checkpoint cp;
	FILE *f;

	if (!t || !path) {
		seterr(err, errlen, "no table or no file");
		return -1;
	}
	if (!(f = fopen(path, "re"))) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	checkpoint_take(t, &cp);
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *p = line, *key;
		const char *val;
		size_t klen, vlen;

		lineno++;
		if ((size_t)n != strlen(line)) {
			seterr(err, errlen, "%s:%lu: NUL byte in line", path, lineno);
			goto fail;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '\n' || (*p == '\r' && (p[1] == '\n' || !p[1])) || *p == '#')
			continue;
		if (p != line) {
			seterr(err, errlen,
			       "%s:%lu: line starts with white space (Postfix would join it to the line before; "
			       "put each entry on one line)",
			       path, lineno);
			goto fail;
		}
		key = p;
		while (*p && !blank(*p))
			p++;
		klen = (size_t)(p - key);
		val = p;
		vlen = (size_t)(line + n - p);
		trim(&val, &vlen);
		if (fixed && vlen) {
			seterr(err, errlen, "%s:%lu: one key per line, nothing after it", path, lineno);
			goto fail;
		}
		if (fixed) {
			val = fixed;
			vlen = strlen(fixed);
		}
		if (!vlen && !(flags & PD_TABLE_VALUE_OPTIONAL)) {
			seterr(err, errlen, "%s:%lu: no value after the key", path, lineno);
			goto fail;
		}
		if (add_entry(t, key, klen, vlen ? val : NULL, vlen, path, lineno, why, sizeof(why)) < 0) {
			seterr(err, errlen, "%s:%lu: %s", path, lineno, why);
			goto fail;
		}
	}
	if (ferror(f)) {
		seterr(err, errlen, "%s: read error: %s", path, strerror(errno));
		goto fail;
	}
	free(line);
	fclose(f);
	return 0;
fail:
	free(line);
	fclose(f);
	checkpoint_restore(t, &cp);
	return -1;
}

/* The matches of one lookup, in order, to a callback: 1 from it stops the walk. */
typedef int each_fn(const char *value, void *arg);

/* EMIT - give value V to FN; stop the walk when it says so */
#define EMIT(v)                    \
	do {                       \
		if (fn((v), arg))  \
			return 1;  \
	} while (0)

/* each_name - every entry of an exact or suffix table an address or bare domain matches, in the
 * order of table.h; 1 if FN stopped the walk */
static int each_name(const pd_table *t, const char *s, each_fn *fn, void *arg)
{
	const size_t *form = t->c.form;
	size_t len = strlen(s), dlen;
	const char *at = NULL, *dom, *end;
	const kv *e;

	if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
		s++;
		len -= 2;
	}
	if (!len) {
		if (form[F_NULL] && (e = kv_find(t, 0, "", 0)))
			EMIT(e->val);
		return 0;
	}
	end = s + len;
	for (const char *p = end; p > s; p--)
		if (p[-1] == '@') {
			at = p - 1;
			break;
		}
	dom = at ? at + 1 : s;
	if (end > dom && end[-1] == '.')
		end--; /* one trailing dot */
	dlen = (size_t)(end - dom);
	/* 1. user@domain */
	if (at && at > s && dlen && form[F_ADDR] && (e = kv_find(t, 0, s, (size_t)(end - s))))
		EMIT(e->val);
	if (dlen) {
		/* 2. @domain, then domain */
		if (form[F_ATDOM] && (e = kv_find(t, '@', dom, dlen)))
			EMIT(e->val);
		if (form[F_DOM] && (e = kv_find(t, 0, dom, dlen)))
			EMIT(e->val);
		/* 3. parent domains, nearest first: .parent, then parent */
		if ((form[F_SUB] || form[F_DOM]) && dom[0] != '[')
			for (const char *p = dom; p < end; p++) {
				if (*p != '.')
					continue;
				if (form[F_SUB] && (e = kv_find(t, 0, p, (size_t)(end - p))))
					EMIT(e->val);
				if (form[F_DOM] && p + 1 < end && (e = kv_find(t, 0, p + 1, (size_t)(end - p - 1))))
					EMIT(e->val);
			}
	}
	/* 4. user@ */
	if (at && at > s && form[F_LOCAL] && (e = kv_find(t, 0, s, (size_t)(at + 1 - s))))
		EMIT(e->val);
	return 0;
}

/* each_regex - every regex matching S (surrounding <> removed), in order */
static int each_regex(const pd_table *t, const char *s, each_fn *fn, void *arg)
{
	size_t len = strlen(s);

	if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
#ifdef REG_STARTEND
		for (size_t i = 0; i < t->n_rx; i++) {
			/* the text starts at s + 1 so that ^ matches there */
			regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)(len - 2)};

			if (regexec(&t->rx[i].re, s + 1, 1, &m, REG_STARTEND) == 0)
				EMIT(t->rx[i].val);
		}
		return 0;
#else
		char *copy = strndup(s + 1, len - 2);
		int r = copy ? each_regex(t, copy, fn, arg) : 0;

		free(copy);
		return r;
#endif
	}
	for (size_t i = 0; i < t->n_rx; i++)
		if (regexec(&t->rx[i].re, s, 0, NULL, 0) == 0)
			EMIT(t->rx[i].val);
	return 0;
}

/* first - a callback keeping the first value and stopping */
static int first(const char *value, void *arg)
{
	*(const char **)arg = value;
	return 1;
}

/* pd_table_match_addr - look up an address, a bare domain or a text */
const char *pd_table_match_addr(const pd_table *t, const char *address)
{
	const char *v = NULL;

	if (!t || !address)
		return NULL;
	if (t->kind == PD_TABLE_EXACT || t->kind == PD_TABLE_SUFFIX)
		each_name(t, address, first, &v);
	else if (t->kind == PD_TABLE_REGEX)
		each_regex(t, address, first, &v);
	return v;
}

/* pd_table_load - "KEY VALUE" lines */
int pd_table_load(pd_table *t, const char *path, unsigned flags, char *err, size_t errlen)
{
	return load(t, path, flags, NULL, err, errlen);
}

/* pd_table_load_keys - a list of keys, each with VALUE */
int pd_table_load_keys(pd_table *t, const char *path, const char *value, char *err, size_t errlen)
{
	return load(t, path, PD_TABLE_VALUE_OPTIONAL, value, err, errlen);
}

/* mask64 - the top BITS bits of a 64-bit word */
static inline uint64_t mask64(unsigned bits)
{
	return bits ? ~0ULL << (64 - bits) : 0;
}

/* each_ip - every network of a cidr table holding the address IP, longest first */
static int each_ip(const pd_table *t, const char *ip, each_fn *fn, void *arg)
{
	unsigned char a[16];
	int fam;

	if (pd_addr_parse(ip, &fam, a) < 0)
		return 0;
	if (fam == AF_INET) {
		uint32_t x = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];

		for (int i = 0; i < t->nlens4; i++) {
			uint32_t l = t->lens4[i];
			const net4 *e = n4_find(t, l ? x & (0xffffffffu << (32 - l)) : 0, l);

			if (e)
				EMIT(e->val);
		}
	} else {
		uint64_t hi = 0, lo = 0;

		for (int i = 0; i < 8; i++) {
			hi = hi << 8 | a[i];
			lo = lo << 8 | a[8 + i];
		}
		for (int i = 0; i < t->nlens6; i++) {
			uint32_t l = t->lens6[i];
			const net6 *e = l <= 64 ? n6_find(t, hi & mask64(l), 0, l) : n6_find(t, hi, lo & mask64(l - 64), l);

			if (e)
				EMIT(e->val);
		}
	}
	return 0;
}

/* pd_table_match_ip - longest prefix match of a client address */
const char *pd_table_match_ip(const pd_table *t, const char *ip)
{
	const char *v = NULL;

	if (t && ip && t->kind == PD_TABLE_CIDR)
		each_ip(t, ip, first, &v);
	return v;
}

/* pd_table_each - every match, in lookup order */
int pd_table_each(const pd_table *t, const char *text, int (*fn)(const char *value, void *arg), void *arg)
{
	if (!t || !text)
		return 0;
	switch (t->kind) {
	case PD_TABLE_CIDR:
		return each_ip(t, text, fn, arg);
	case PD_TABLE_EXACT:
	case PD_TABLE_SUFFIX:
		return each_name(t, text, fn, arg);
	default:
		return each_regex(t, text, fn, arg);
	}
}

/* pd_table_set_merge - a repeated key joins its values instead of being ignored */
void pd_table_set_merge(pd_table *t, int on)
{
	t->merge = on;
}

/* pd_table_match - dispatch by kind */
const char *pd_table_match(const pd_table *t, const char *text)
{
	if (t && t->kind == PD_TABLE_CIDR)
		return pd_table_match_ip(t, text);
	return pd_table_match_addr(t, text);
}

/* pd_table_size - number of entries */
size_t pd_table_size(const pd_table *t)
{
	return t ? t->n_kv + t->n_n4 + t->n_n6 + t->n_rx : 0;
}

/* pd_table_memory - bytes allocated */
size_t pd_table_memory(const pd_table *t)
{
	return t ? sizeof(*t) + t->mem : 0;
}

/* pd_table_duplicates - keys ignored as duplicates, and where the first was */
size_t pd_table_duplicates(const pd_table *t, const char **first)
{
	if (first)
		*first = t ? t->first_dup : NULL;
	return t ? t->c.dups : 0;
}

/* pd_table_free - free everything */
void pd_table_free(pd_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_rx; i++)
		regfree(&t->rx[i].re);
	free(t->rx);
	free(t->kv);
	free(t->kv_ix.s);
	free(t->n4);
	free(t->n4_ix.s);
	free(t->n6);
	free(t->n6_ix.s);
	free(t->vals);
	free(t->val_ix.s);
	free(t->first_dup);
	arena_cut(t, NULL, 0);
	free(t);
}
