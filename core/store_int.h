/* store_int.h - internals of the state service shared by store.c and its backends (not for plugins) */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_STORE_INT_H
#define PD_STORE_INT_H

#ifdef HAVE_CONFIG_H
#include "config.h" /* HAVE_HIREDIS */
#endif

#include "store.h"

#include <stdarg.h>

#define PD_STORE_LOG_ERR 3
#define PD_STORE_LOG_WARNING 4
#define PD_STORE_LOG_NOTICE 5
#define PD_STORE_LOG_INFO 6
#define PD_STORE_LOG_DEBUG 7

/* Longest full key "NS:K:KEY" (without the Redis prefix), and a Redis prefix. */
#define PD_STORE_FKEY_MAX (PD_STORE_NS_MAX + 3 + PD_STORE_KEY_MAX)
#define PD_STORE_PREFIX_MAX 64
/* Redis keys live this much longer than their data says (garbage collection only). */
#define PD_STORE_GC_SLACK 3600
/* Largest counter amount (and exact total on Redis): 2^53. */
#define PD_STORE_AMOUNT_MAX 9007199254740992LL
/* Latest clock accepted: the end of 9999 (NOW * 16 and NOW + TTL stay far from overflow). */
#define PD_STORE_NOW_MAX 253402300799LL
/* Buffer for a rendering of an entry (pd_store_entry.text). */
#define PD_STORE_TEXT_MAX 256

/* A parsed Redis address. */
typedef struct pd_store_addr {
	char host[256]; /* name or address, "" with path */
	int port;
	char path[108]; /* unix socket, or "" */
} pd_store_addr;

/* The settings of a Redis store, parsed and copied. */
typedef struct pd_store_redis_conf {
	pd_store_addr server;
	char username[128], password[256];
	long db;
	char prefix[PD_STORE_PREFIX_MAX + 1];
	long connect_timeout_ms, timeout_ms;
	pd_store_addr sentinels[PD_STORE_SENTINELS_MAX];
	int n_sentinels;
	char master_name[128];
	char sentinel_username[128], sentinel_password[256];
} pd_store_redis_conf;

/* The settings of a GDBM store, copied. */
typedef struct pd_store_gdbm_conf {
	char *path;
	long lock_ms; /* -1: no bound */
	long expire_interval;
	unsigned flags;
} pd_store_gdbm_conf;

/* What a backend does; keys are full keys "NS:K:KEY" (FK, FKL bytes). */
typedef struct pd_store_ops {
	const char *name;
	int remote;
	int (*count)(pd_store *s, const char *fk, size_t fkl, unsigned window, long long amount,
		     int64_t now, long long *total);
	int (*set)(pd_store *s, const char *fk, size_t fkl, const void *v, size_t len, unsigned ttl,
		   int64_t now);
	int (*get)(pd_store *s, const char *fk, size_t fkl, int64_t now, pd_store_val *val);
	/* 1 deleted, 0 absent, -1 */
	int (*del)(pd_store *s, const char *fk, size_t fkl);
	int (*members)(pd_store *s, const char *fk, size_t fkl, const char *m, size_t ml, unsigned ttl,
		       int64_t now, long long *count);
	int (*update)(pd_store *s, const char *fk, size_t fkl, pd_store_update_fn *fn, void *arg,
		      int64_t now, int *result);
	long (*scan)(pd_store *s, const char *ns, int64_t now, pd_store_scan_fn *fn, void *arg);
	long (*expire)(pd_store *s, int64_t now, size_t batch, int *done);
	int (*sync)(pd_store *s);
	int (*compact)(pd_store *s);
	void (*close)(pd_store *s);
} pd_store_ops;

/* An open store: the backend, the logger and the backend's own state. */
struct pd_store {
	const pd_store_ops *ops;
	pd_store_log_fn *log;
	void *log_ctx;
	void *b;
};

/* store.c */
void pd_store_logf(const pd_store *s, int level, const char *fmt, ...) PD_STORE_PRINTF(3, 4);
/* FK (a full key, client data) escaped for a log line into OUT (a short prefix of it) */
const char *pd_store_esc_key(const char *fk, size_t fkl, char *out, size_t outsz);
/* the bucket of time NOW for WINDOW: floor(NOW * 16 / WINDOW) */
int64_t pd_store_bucket(int64_t now, unsigned window);
/* the first time at which nothing of a counter whose latest bucket is H counts any more */
int64_t pd_store_counter_end(int64_t h, unsigned window);
/* run FN for an update and check what it asks: 0 with *RESULT, or -1 after logging */
int pd_store_run_update(const pd_store *s, const char *fk, size_t fkl, pd_store_update_fn *fn,
			void *arg, const void *old, size_t oldlen, unsigned oldttl, void *new,
			size_t *newlen, unsigned *ttl, int *result);
/* renderings of pd_store_entry.text into OUT (PD_STORE_TEXT_MAX) */
void pd_store_render_counter(char *out, long long total, unsigned window);
void pd_store_render_value(char *out, const void *data, size_t len);
/* members: start with N, then add names (in order) while they fit */
void pd_store_render_members(char *out, long long n);
void pd_store_render_member(char *out, const char *m, size_t ml);
/* split a full key into namespace, kind and key (copied into NS and KEY); 0 or -1 */
int pd_store_split_key(const char *fk, size_t fkl, char ns[PD_STORE_NS_MAX + 1], int *kind,
		       char key[PD_STORE_KEY_MAX + 1]);
/* parse a Redis address: "host:port", "[v6]:port", "host" (DEFPORT) or "unix:/path" (not with
 * NOUNIX); 0 or -1 */
int pd_store_parse_addr(const char *spec, int defport, int nounix, pd_store_addr *a);

/* store_gdbm.c */
extern const pd_store_ops pd_store_gdbm_ops;
/* open (or share) the GDBM file in GC into S->b; 0, or -1 with ERR (logged) */
int pd_store_gdbm_open(pd_store *s, const pd_store_gdbm_conf *gc, char *err, size_t errlen);

/* store_redis.c (only with hiredis) */
#ifdef HAVE_HIREDIS
extern const pd_store_ops pd_store_redis_ops;
/* a connection pool for RC into S->b (a first connection is tried: down is logged, not fatal) */
int pd_store_redis_open(pd_store *s, const pd_store_redis_conf *rc, char *err, size_t errlen);
#endif

#endif
