/* store.c - the state service's front: configuration, key namespacing, argument checks, dispatch */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Keys. Every entry is named "NS:K:KEY": the namespace (an instance name,
 * letters, digits, '_', '.', '-': it has no ':', so the first ':' ends it),
 * the kind letter (c counter, v value, m members) and the caller's key
 * (text, up to PD_STORE_KEY_MAX bytes, ':' allowed). GDBM keeps that as
 * its key; Redis puts its prefix ("policyd:") before it. Keys starting with
 * '!' (no namespace has one) are the GDBM backend's own bookkeeping.
 *
 * Argument errors (a key too long, a bad namespace, a TTL out of range)
 * are the caller's bug or client data out of bounds: logged, at most once
 * a minute in the process with a count of the others, and -1.
 */
#include "store_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "escape.h"

/* Tests: called while pd_store_compact() holds the GDBM file. */
void (*pd_store_compact_hook)(void);

/* Rate limit of argument errors (once a minute, all stores of the process). */
static time_t arg_err_at;
static long arg_err_quiet;

/* pd_store_logf - log through the store's callback (nothing without one) */
void pd_store_logf(const pd_store *s, int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!s->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->log(s->log_ctx, level, "%s", line);
}

/* arg_error - log a bad argument, at most once a minute (with the count of the others); -1 */
static int arg_error(const pd_store *s, const char *fmt, ...) PD_STORE_PRINTF(2, 3);
static int arg_error(const pd_store *s, const char *fmt, ...)
{
	time_t now = time(NULL), was = __atomic_load_n(&arg_err_at, __ATOMIC_RELAXED);
	char msg[900];
	va_list ap;
	long quiet;

	if (was && now >= was && now - was < 60) {
		__atomic_add_fetch(&arg_err_quiet, 1, __ATOMIC_RELAXED);
		return -1;
	}
	if (!__atomic_compare_exchange_n(&arg_err_at, &was, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return -1;
	quiet = __atomic_exchange_n(&arg_err_quiet, 0, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (quiet)
		pd_store_logf(s, PD_STORE_LOG_ERR, "store: %s (and %ld more such errors in the last minute)",
			      msg, quiet);
	else
		pd_store_logf(s, PD_STORE_LOG_ERR, "store: %s", msg);
	return -1;
}

/* pd_store_esc_key - a full key (client data) escaped for a log line */
const char *pd_store_esc_key(const char *fk, size_t fkl, char *out, size_t outsz)
{
	pd_esc(out, outsz, fk, fkl < 120 ? fkl : 120, PD_ESC_TOKEN);
	return out;
}

/* valid_ns - a namespace: 1 to PD_STORE_NS_MAX letters, digits, '_', '.', '-' */
static int valid_ns(const char *ns)
{
	size_t n;

	if (!ns)
		return 0;
	n = strspn(ns, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
	return n >= 1 && n <= PD_STORE_NS_MAX && !ns[n];
}

/* full_key - "NS:KIND:KEY" into OUT (PD_STORE_FKEY_MAX + 1); its length, or 0 after logging */
static size_t full_key(const pd_store *s, const char *ns, int kind, const char *key, char *out)
{
	char a[100], b[100];
	size_t nl, kl;

	if (!valid_ns(ns)) {
		pd_esc(a, sizeof(a), ns ? ns : "(null)", 80, PD_ESC_TOKEN);
		arg_error(s, "namespace \"%s\" is not 1 to 64 letters, digits, '_', '.' or '-'", a);
		return 0;
	}
	if (!key) {
		arg_error(s, "no key (namespace %s)", ns);
		return 0;
	}
	kl = strnlen(key, PD_STORE_KEY_MAX + 1);
	if (kl > PD_STORE_KEY_MAX) {
		pd_esc(b, sizeof(b), key, 60, PD_ESC_TOKEN);
		arg_error(s, "key longer than %d bytes refused (namespace %s): \"%s\"", PD_STORE_KEY_MAX,
			  ns, b);
		return 0;
	}
	nl = strlen(ns);
	memcpy(out, ns, nl);
	out[nl] = ':';
	out[nl + 1] = (char)kind;
	out[nl + 2] = ':';
	memcpy(out + nl + 3, key, kl);
	out[nl + 3 + kl] = 0;
	return nl + 3 + kl;
}

/* check_args - TTL (WHAT: "TTL", "window"; NULL: none) of 1..PD_STORE_TTL_MAX seconds and a clock
 * from 1970 to 9999; 0 or -1 after logging */
static int check_args(const pd_store *s, const char *what, unsigned ttl, int64_t now, const char *fk,
		      size_t fkl)
{
	char k[140];

	if (now < 0 || now > PD_STORE_NOW_MAX)
		return arg_error(s, "a clock out of range (%lld: before 1970 or after 9999), key %s",
				 (long long)now, pd_store_esc_key(fk, fkl, k, sizeof(k)));
	if (what && (ttl < 1 || ttl > PD_STORE_TTL_MAX))
		return arg_error(s, "%s %u s out of range (1 s to 3650 days), key %s", what, ttl,
				 pd_store_esc_key(fk, fkl, k, sizeof(k)));
	return 0;
}

/* pd_store_bucket - floor(NOW * 16 / WINDOW), NOW >= 0 */
int64_t pd_store_bucket(int64_t now, unsigned window)
{
	return now * PD_STORE_BUCKETS / (int64_t)window;
}

/* pd_store_counter_end - ceil((H + 17) * WINDOW / 16): bucket H + 17 begins, nothing counts */
int64_t pd_store_counter_end(int64_t h, unsigned window)
{
	int64_t x = (h + PD_STORE_BUCKETS + 1) * (int64_t)window;

	return (x + PD_STORE_BUCKETS - 1) / PD_STORE_BUCKETS;
}

/* pd_store_run_update - call FN on OLD and check its answer */
int pd_store_run_update(const pd_store *s, const char *fk, size_t fkl, pd_store_update_fn *fn,
			void *arg, const void *old, size_t oldlen, unsigned oldttl, void *new,
			size_t *newlen, unsigned *ttl, int *result)
{
	char k[140];
	int r;

	*newlen = 0;
	*ttl = oldttl;
	r = fn(arg, old, oldlen, new, newlen, ttl);
	if (r == PD_STORE_UPD_KEEP || r == PD_STORE_UPD_DELETE) {
		*result = r;
		return 0;
	}
	pd_store_esc_key(fk, fkl, k, sizeof(k));
	if (r != PD_STORE_UPD_WRITE) {
		pd_store_logf(s, PD_STORE_LOG_ERR, "store: update of %s: the function returned %d, not "
			      "KEEP, WRITE or DELETE", k, r);
		return -1;
	}
	if (*newlen > PD_STORE_UPDATE_MAX) {
		pd_store_logf(s, PD_STORE_LOG_ERR, "store: update of %s: a record of %zu bytes (at most "
			      "%d)", k, *newlen, PD_STORE_UPDATE_MAX);
		return -1;
	}
	if (*ttl < 1 || *ttl > PD_STORE_TTL_MAX) {
		pd_store_logf(s, PD_STORE_LOG_ERR, "store: update of %s: TTL %u s out of range (1 s to "
			      "3650 days)", k, *ttl);
		return -1;
	}
	*result = r;
	return 0;
}

/* esc_bytes - binary-safe escape of DATA into OUT (as pd_esc, NUL included: \x00); its length */
static size_t esc_bytes(char *out, size_t cap, const unsigned char *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	for (i = 0; i < len; i++) {
		unsigned char c = data[i];
		int e = c < 0x20 || c == 0x7f || c == '"' || c == '\\';

		if (o + (e ? 4 : 1) + 4 > cap)
			break;
		if (e) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	if (i < len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = 0;
	return o;
}

/* pd_store_render_counter - "total=N window=Ws" */
void pd_store_render_counter(char *out, long long total, unsigned window)
{
	snprintf(out, PD_STORE_TEXT_MAX, "total=%lld window=%us", total, window);
}

/* pd_store_render_value - "len=N \"first bytes\"" */
void pd_store_render_value(char *out, const void *data, size_t len)
{
	int n = snprintf(out, PD_STORE_TEXT_MAX, "len=%zu \"", len);
	size_t o = (size_t)n;

	o += esc_bytes(out + o, 80, data, len);
	snprintf(out + o, PD_STORE_TEXT_MAX - o, "\"");
}

/* pd_store_render_members - "members=N" */
void pd_store_render_members(char *out, long long n)
{
	snprintf(out, PD_STORE_TEXT_MAX, "members=%lld", n);
}

/* pd_store_render_member - append " \"M\"" while it fits (else " ..." once) */
void pd_store_render_member(char *out, const char *m, size_t ml)
{
	size_t o = strlen(out);
	char e[PD_STORE_TEXT_MAX];
	size_t el;

	if (o >= 4 && !strcmp(out + o - 4, " ..."))
		return;
	el = esc_bytes(e, 60, (const unsigned char *)m, ml);
	if (o + el + 4 + 5 > PD_STORE_TEXT_MAX - 1) {
		snprintf(out + o, PD_STORE_TEXT_MAX - o, " ...");
		return;
	}
	snprintf(out + o, PD_STORE_TEXT_MAX - o, " \"%s\"", e);
}

/* pd_store_split_key - "NS:K:KEY" into its parts; -1 when it is not one of ours */
int pd_store_split_key(const char *fk, size_t fkl, char ns[PD_STORE_NS_MAX + 1], int *kind,
		       char key[PD_STORE_KEY_MAX + 1])
{
	const char *c = memchr(fk, ':', fkl);
	size_t nl, kl;

	if (!c)
		return -1;
	nl = (size_t)(c - fk);
	if (nl < 1 || nl > PD_STORE_NS_MAX || fkl < nl + 3 || c[2] != ':')
		return -1;
	kl = fkl - nl - 3;
	if (kl > PD_STORE_KEY_MAX || memchr(fk + nl + 3, 0, kl))
		return -1;
	memcpy(ns, fk, nl);
	ns[nl] = 0;
	if (!valid_ns(ns))
		return -1;
	*kind = (unsigned char)c[1];
	if (*kind != PD_STORE_COUNTER && *kind != PD_STORE_VALUE && *kind != PD_STORE_MEMBERS)
		return -1;
	memcpy(key, fk + nl + 3, kl);
	key[kl] = 0;
	return 0;
}

/* pd_store_parse_addr - "host:port", "[v6]:port", "host" or "unix:/path" into A */
int pd_store_parse_addr(const char *spec, int defport, int nounix, pd_store_addr *a)
{
	const char *colon;
	size_t hl;
	char *end;
	long port = defport;

	memset(a, 0, sizeof(*a));
	if (!strncmp(spec, "unix:", 5)) {
		if (nounix || spec[5] != '/' || strlen(spec + 5) >= sizeof(a->path))
			return -1;
		snprintf(a->path, sizeof(a->path), "%s", spec + 5);
		return 0;
	}
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || close == spec + 1)
			return -1;
		hl = (size_t)(close - spec - 1);
		spec++;
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] && !colon)
			return -1;
	} else {
		colon = strrchr(spec, ':');
		if (colon && strchr(spec, ':') != colon)
			return -1; /* a bare IPv6 address: needs [ ] */
		hl = colon ? (size_t)(colon - spec) : strlen(spec);
	}
	if (!hl || hl >= sizeof(a->host))
		return -1;
	for (size_t i = 0; i < hl; i++)
		if (!isalnum((unsigned char)spec[i]) && !strchr(".-_:", spec[i]))
			return -1;
	if (colon) {
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (!colon[1] || *end || errno || port < 1 || port > 65535)
			return -1;
	}
	memcpy(a->host, spec, hl);
	a->host[hl] = 0;
	a->port = (int)port;
	return 0;
}

#ifdef HAVE_HIREDIS
/* word - a credential or name: at most MAX bytes, no space or control character; 0 or -1 */
static int word(const char *v, size_t max)
{
	if (!v)
		return 0;
	if (strlen(v) > max)
		return -1;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= 32 || *p == 127)
			return -1;
	return 0;
}

/* redis_conf - CONF's Redis settings parsed into RC; 0, or -1 with ERR */
static int redis_conf(const pd_store_conf *c, pd_store_redis_conf *rc, char *err, size_t errlen)
{
	memset(rc, 0, sizeof(*rc));
	if (!c->n_sentinels &&
	    pd_store_parse_addr(c->server ? c->server : "127.0.0.1:6379", 6379, 0, &rc->server) != 0) {
		snprintf(err, errlen, "redis server \"%.200s\" must be HOST:PORT, [IPV6]:PORT, HOST or "
			 "unix:/PATH", c->server);
		return -1;
	}
	if (word(c->username, 127) || word(c->password, 255) || word(c->sentinel_username, 127) ||
	    word(c->sentinel_password, 255) || word(c->master_name, 127)) {
		snprintf(err, errlen, "redis username, password or master name: too long, or with a "
			 "space or control character");
		return -1;
	}
	snprintf(rc->username, sizeof(rc->username), "%s", c->username ? c->username : "");
	snprintf(rc->password, sizeof(rc->password), "%s", c->password ? c->password : "");
	if (rc->username[0] && !rc->password[0]) {
		snprintf(err, errlen, "redis username needs a password");
		return -1;
	}
	if (c->db < 0 || c->db > 65535) {
		snprintf(err, errlen, "redis db %ld out of range (0 to 65535)", c->db);
		return -1;
	}
	rc->db = c->db;
	if (c->prefix && (!c->prefix[0] || word(c->prefix, PD_STORE_PREFIX_MAX))) {
		snprintf(err, errlen, "redis prefix must be 1 to %d printable characters without spaces",
			 PD_STORE_PREFIX_MAX);
		return -1;
	}
	snprintf(rc->prefix, sizeof(rc->prefix), "%s", c->prefix ? c->prefix : "policyd:");
	if (c->connect_timeout_ms < 0 || c->connect_timeout_ms > 600000 || c->timeout_ms < 0 ||
	    c->timeout_ms > 600000) {
		snprintf(err, errlen, "redis timeouts must be 1 to 600000 ms");
		return -1;
	}
	rc->connect_timeout_ms = c->connect_timeout_ms ? c->connect_timeout_ms : 500;
	rc->timeout_ms = c->timeout_ms ? c->timeout_ms : 500;
	if (c->n_sentinels > PD_STORE_SENTINELS_MAX) {
		snprintf(err, errlen, "at most %d redis sentinels", PD_STORE_SENTINELS_MAX);
		return -1;
	}
	for (size_t i = 0; i < c->n_sentinels; i++) {
		const char *v = c->sentinels[i];

		if (!v || pd_store_parse_addr(v, 26379, 1, &rc->sentinels[i]) != 0) {
			snprintf(err, errlen, "redis sentinel \"%.200s\" must be HOST:PORT or [IPV6]:PORT "
				 "(port 26379 if left out)", v ? v : "");
			return -1;
		}
	}
	rc->n_sentinels = (int)c->n_sentinels;
	snprintf(rc->master_name, sizeof(rc->master_name), "%s", c->master_name ? c->master_name : "");
	if (rc->n_sentinels && !rc->master_name[0]) {
		snprintf(err, errlen, "redis sentinels need the master's name (as in \"sentinel monitor "
			 "NAME ...\")");
		return -1;
	}
	snprintf(rc->sentinel_username, sizeof(rc->sentinel_username), "%s",
		 c->sentinel_username ? c->sentinel_username : "");
	snprintf(rc->sentinel_password, sizeof(rc->sentinel_password), "%s",
		 c->sentinel_password ? c->sentinel_password : "");
	if (rc->sentinel_username[0] && !rc->sentinel_password[0]) {
		snprintf(err, errlen, "redis sentinel username needs a sentinel password");
		return -1;
	}
	return 0;
}

#endif

/* gdbm_conf - CONF's GDBM settings checked into GC (PATH not copied); 0, or -1 with ERR */
static int gdbm_conf(const pd_store_conf *c, pd_store_gdbm_conf *gc, char *err, size_t errlen)
{
	if (!c->path || !c->path[0]) {
		snprintf(err, errlen, "gdbm store: no database file");
		return -1;
	}
	if (strlen(c->path) > 4000) {
		snprintf(err, errlen, "gdbm store: database path too long");
		return -1;
	}
	if (c->lock_timeout_ms < -1 || c->lock_timeout_ms > 60000) {
		snprintf(err, errlen, "gdbm store: lock timeout %ld ms out of range (1 to 60000)",
			 c->lock_timeout_ms);
		return -1;
	}
	if (c->expire_interval < 0 || c->expire_interval > (long)PD_STORE_TTL_MAX) {
		snprintf(err, errlen, "gdbm store: expiry interval %ld s out of range", c->expire_interval);
		return -1;
	}
	if (c->flags & ~(PD_STORE_NOCREATE | PD_STORE_LEASE)) {
		snprintf(err, errlen, "gdbm store: unknown flags 0x%x", c->flags);
		return -1;
	}
	gc->path = (char *)c->path;
	gc->lock_ms = c->lock_timeout_ms ? c->lock_timeout_ms : 1000;
	gc->expire_interval = c->expire_interval;
	gc->flags = c->flags;
	return 0;
}

/* backend_of - 'g' for gdbm, 'r' for redis, 0 for anything else */
static int backend_of(const pd_store_conf *c)
{
	if (!c->backend || !strcmp(c->backend, "gdbm"))
		return 'g';
	return !strcmp(c->backend, "redis") ? 'r' : 0;
}

/* pd_store_conf_check - the settings as open would take them */
int pd_store_conf_check(const pd_store_conf *conf, char *err, size_t errlen)
{
#ifdef HAVE_HIREDIS
	pd_store_redis_conf rc;
#endif
	pd_store_gdbm_conf gc;

	switch (backend_of(conf)) {
	case 'g':
		return gdbm_conf(conf, &gc, err, errlen);
	case 'r':
#ifndef HAVE_HIREDIS
		snprintf(err, errlen, "store backend \"redis\" is not available: policyd was built "
			 "without hiredis (install libhiredis-dev and run configure again)");
		return -1;
#else
		return redis_conf(conf, &rc, err, errlen);
#endif
	default:
		snprintf(err, errlen, "store backend \"%.100s\" must be \"gdbm\" or \"redis\"", conf->backend);
		return -1;
	}
}

/* pd_store_open - check CONF and open its backend */
pd_store *pd_store_open(const pd_store_conf *conf, char *err, size_t errlen)
{
	pd_store *s;
	int r = -1;

	if (pd_store_conf_check(conf, err, errlen) != 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->log = conf->log;
	s->log_ctx = conf->log_ctx;
	if (backend_of(conf) == 'g') {
		pd_store_gdbm_conf gc;

		gdbm_conf(conf, &gc, err, errlen);
		s->ops = &pd_store_gdbm_ops;
		r = pd_store_gdbm_open(s, &gc, err, errlen);
	}
#ifdef HAVE_HIREDIS
	else {
		pd_store_redis_conf rc;

		redis_conf(conf, &rc, err, errlen);
		s->ops = &pd_store_redis_ops;
		r = pd_store_redis_open(s, &rc, err, errlen);
		memset(&rc, 0, sizeof(rc)); /* no copy of the passwords left on the stack */
	}
#endif
	if (r != 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* pd_store_close - close the backend and free S */
void pd_store_close(pd_store *s)
{
	if (!s)
		return;
	s->ops->close(s);
	free(s);
}

/* pd_store_remote - does S wait for the network? */
int pd_store_remote(const pd_store *s)
{
	return s->ops->remote;
}

/* pd_store_count - a windowed counter */
int pd_store_count(pd_store *s, const char *ns, const char *key, unsigned window_s, long long amount,
		   int64_t now, long long *total)
{
	char fk[PD_STORE_FKEY_MAX + 1], k[140];
	size_t fkl = full_key(s, ns, PD_STORE_COUNTER, key, fk);

	*total = 0;
	if (!fkl || check_args(s, "window", window_s, now, fk, fkl) != 0)
		return -1;
	if (amount < 0 || amount > PD_STORE_AMOUNT_MAX)
		return arg_error(s, "counter amount %lld out of range (0 to 2^53), key %s", amount,
				 pd_store_esc_key(fk, fkl, k, sizeof(k)));
	return s->ops->count(s, fk, fkl, window_s, amount, now, total);
}

/* pd_store_set - a value with a TTL */
int pd_store_set(pd_store *s, const char *ns, const char *key, const void *value, size_t len,
		 unsigned ttl_s, int64_t now)
{
	char fk[PD_STORE_FKEY_MAX + 1], k[140];
	size_t fkl = full_key(s, ns, PD_STORE_VALUE, key, fk);

	if (!fkl || check_args(s, "TTL", ttl_s, now, fk, fkl) != 0)
		return -1;
	if (len > PD_STORE_VALUE_MAX || (len && !value))
		return arg_error(s, "value of %zu bytes refused (at most %d), key %s", len,
				 PD_STORE_VALUE_MAX, pd_store_esc_key(fk, fkl, k, sizeof(k)));
	return s->ops->set(s, fk, fkl, len ? value : "", len, ttl_s, now);
}

/* pd_store_get - a value, if live at NOW */
int pd_store_get(pd_store *s, const char *ns, const char *key, int64_t now, pd_store_val *val)
{
	char fk[PD_STORE_FKEY_MAX + 1];
	size_t fkl = full_key(s, ns, PD_STORE_VALUE, key, fk);

	memset(val, 0, sizeof(*val));
	if (!fkl || check_args(s, NULL, 0, now, fk, fkl) != 0)
		return -1;
	return s->ops->get(s, fk, fkl, now, val);
}

/* pd_store_del - delete a value */
int pd_store_del(pd_store *s, const char *ns, const char *key)
{
	char fk[PD_STORE_FKEY_MAX + 1];
	size_t fkl = full_key(s, ns, PD_STORE_VALUE, key, fk);

	if (!fkl)
		return -1;
	return s->ops->del(s, fk, fkl) < 0 ? -1 : 0;
}

/* pd_store_members - a set of distinct members */
int pd_store_members(pd_store *s, const char *ns, const char *key, const char *member, unsigned ttl_s,
		     int64_t now, long long *count)
{
	char fk[PD_STORE_FKEY_MAX + 1], a[100], k[140];
	size_t fkl = full_key(s, ns, PD_STORE_MEMBERS, key, fk), ml = 0;

	*count = 0;
	if (!fkl || check_args(s, member ? "TTL" : NULL, ttl_s, now, fk, fkl) != 0)
		return -1;
	if (member) {
		ml = strnlen(member, PD_STORE_MEMBER_MAX + 1);
		if (ml < 1 || ml > PD_STORE_MEMBER_MAX) {
			pd_esc(a, sizeof(a), member, 60, PD_ESC_TOKEN);
			return arg_error(s, "member \"%s\" refused (1 to %d bytes), key %s", a,
					 PD_STORE_MEMBER_MAX, pd_store_esc_key(fk, fkl, k, sizeof(k)));
		}
	}
	return s->ops->members(s, fk, fkl, member, ml, ttl_s, now, count);
}

/* pd_store_update - atomic read-modify-write of a record */
int pd_store_update(pd_store *s, const char *ns, const char *key, pd_store_update_fn *fn, void *arg,
		    int64_t now, int *result)
{
	char fk[PD_STORE_FKEY_MAX + 1], k[140];
	size_t fkl = full_key(s, ns, PD_STORE_VALUE, key, fk);

	*result = PD_STORE_UPD_KEEP;
	if (!fkl || check_args(s, NULL, 0, now, fk, fkl) != 0)
		return -1;
	if (!fn)
		return arg_error(s, "update without a function, key %s",
				 pd_store_esc_key(fk, fkl, k, sizeof(k)));
	return s->ops->update(s, fk, fkl, fn, arg, now, result);
}

/* pd_store_scan - list live entries */
long pd_store_scan(pd_store *s, const char *ns, int64_t now, pd_store_scan_fn *fn, void *arg)
{
	if (ns && !valid_ns(ns)) {
		char a[100];

		pd_esc(a, sizeof(a), ns, 80, PD_ESC_TOKEN);
		return arg_error(s, "namespace \"%s\" is not 1 to 64 letters, digits, '_', '.' or '-'", a);
	}
	return s->ops->scan(s, ns, now, fn, arg);
}

/* pd_store_delete - delete one entry of any kind */
int pd_store_delete(pd_store *s, const char *ns, int kind, const char *key)
{
	char fk[PD_STORE_FKEY_MAX + 1];
	size_t fkl;

	if (kind != PD_STORE_COUNTER && kind != PD_STORE_VALUE && kind != PD_STORE_MEMBERS)
		return arg_error(s, "unknown kind %d", kind);
	fkl = full_key(s, ns, kind, key, fk);
	if (!fkl)
		return -1;
	return s->ops->del(s, fk, fkl);
}

/* pd_store_expire - one step of the expiry pass */
long pd_store_expire(pd_store *s, int64_t now, size_t batch, int *done)
{
	*done = 1;
	return s->ops->expire(s, now, batch ? batch : 200, done);
}

/* pd_store_sync - make writes durable */
int pd_store_sync(pd_store *s)
{
	return s->ops->sync(s);
}

/* pd_store_compact - compact the file */
int pd_store_compact(pd_store *s)
{
	return s->ops->compact(s);
}
