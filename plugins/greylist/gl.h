/* gl.h - internal interfaces of the greylist plugin: keys, records, storage, whitelists */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_GL_H
#define PD_GL_H

#ifdef HAVE_CONFIG_H
#include "config.h" /* HAVE_HIREDIS */
#endif

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <confuse.h>

#include "siphash.h"

/* Longest address part kept in a key (longer ones are cut). */
#define GL_ADDR_MAX 320
/* Longest key the plugin builds. */
#define GL_KEY_MAX (1 + 64 + 1 + GL_ADDR_MAX + 1 + GL_ADDR_MAX)
/* Size of an encoded record. */
#define GL_REC_SIZE 32
#define GL_REC_VERSION 1

/* Record types (byte 1 of an encoded record). */
#define GL_T_PENDING 'T' /* triplet seen, not yet retried after the delay */
#define GL_T_PASSED 'P'  /* triplet retried after the delay: passes */
#define GL_T_CLIENT 'C'  /* client network: count of successful deliveries */
#define GL_T_META 'M'    /* bookkeeping (time of the last cleanup) */

/* One stored record (triplet or client), decoded. */
typedef struct gl_rec {
	int type;           /* GL_T_* */
	uint32_t count;     /* triplet: passes seen; client: deliveries */
	int64_t first_seen; /* first request */
	int64_t last_seen;  /* last update */
	int64_t passed_at;  /* triplet: when confirmed; client: when whitelisted */
} gl_rec;

/* Logging callback shared by the plugin (host log) and the admin command (stderr). */
typedef void gl_log_fn(void *ctx, int level, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

typedef struct gl_logger {
	gl_log_fn *fn;
	void *ctx;
} gl_logger;

/* Parameters that determine keys: the plugin and the admin command must agree. */
typedef struct gl_keyconf {
	int ipv4_prefix;      /* 0..32 */
	int ipv6_prefix;      /* 0..128 */
	int normalise_sender; /* BATV, SRS, VERP, +ext */
	int privacy;          /* keys are keyed hashes */
	uint8_t hash_key[16]; /* SipHash key when privacy is on */
} gl_keyconf;

/* key.c */
int gl_client_net(const gl_keyconf *kc, const char *addr, char *out, size_t outsz);
void gl_fold_addr(const char *in, char *out, size_t outsz);
void gl_norm_sender(const gl_keyconf *kc, const char *in, char *out, size_t outsz);
size_t gl_triplet_key(const gl_keyconf *kc, const char *net, const char *sender, const char *rcpt,
		      unsigned char *out, size_t outsz);
size_t gl_client_key(const gl_keyconf *kc, const char *net, unsigned char *out, size_t outsz);
size_t gl_client_prefix(const gl_keyconf *kc, const char *net, unsigned char *out, size_t outsz);
void gl_rec_encode(const gl_rec *r, unsigned char out[GL_REC_SIZE]);
int gl_rec_decode(const void *in, size_t len, gl_rec *r);
int gl_key_from_secret(const char *secret, uint8_t key[16]);
int gl_key_file(const char *path, int create, uint8_t key[16], char *err, size_t errsz);
void gl_describe_key(const unsigned char *key, size_t klen, char *out, size_t outsz);
int gl_rec_expired(const gl_rec *r, int64_t now, long retry_window, long lifetime);

/*
 * Storage interface. A backend keeps opaque keys and GL_REC_SIZE values.
 * Every get/put/del runs between begin() and end(), which make the unit of
 * work atomic against other threads and processes using the same store; a
 * backend without transactions (Redis) makes them no-ops and provides
 * update() instead: the whole decision of one request as one atomic call.
 */
typedef struct gl_store gl_store;

/* iterate() calls this for each record; return 0 to keep it, 1 to delete it, -1 to stop. */
typedef int gl_iter_fn(void *arg, const unsigned char *key, size_t klen, const gl_rec *rec);

/* open() flags */
#define GL_STORE_NOCREATE 1 /* do not create, do not move a corrupt file aside (admin) */
#define GL_STORE_LEASE 2    /* keep the inter-process lock across units of work, briefly (daemon) */

/* Input of update(): one request's keys, clock and settings. */
typedef struct gl_upd {
	const unsigned char *tkey; /* triplet key */
	size_t tkl;
	const unsigned char *ckey; /* client key; ckl 0 when auto_whitelist is off */
	size_t ckl;
	int64_t now;
	long delay, retry_window, lifetime, auto_whitelist;
	int fresh; /* 1: this message's delivery is not counted yet */
} gl_upd;

/* Verdicts of update(). */
#define GL_UPD_DEFER 0      /* new triplet or early retry: defer, res.remaining seconds left */
#define GL_UPD_PASS 1       /* known triplet passes */
#define GL_UPD_PASSED_NOW 2 /* first retry after the delay: passes, res.delayed seconds */
#define GL_UPD_CLIENT 3     /* auto-whitelisted client passes */

typedef struct gl_upd_res {
	int verdict;
	long remaining;
	long delayed;
} gl_upd_res;

typedef struct gl_store_ops {
	const char *name;
	/* open (or share, refcounted) the store at PATH; NULL after logging */
	gl_store *(*open)(const char *path, int flags, const gl_logger *log);
	/* lock the store for a unit of work; -1 after logging */
	int (*begin)(gl_store *s);
	/* unlock, publishing writes to other processes */
	void (*end)(gl_store *s);
	/* 1 found (REC filled), 0 not found, -1 error */
	int (*get)(gl_store *s, const unsigned char *key, size_t klen, gl_rec *rec);
	/* 0 stored, -1 error */
	int (*put)(gl_store *s, const unsigned char *key, size_t klen, const gl_rec *rec);
	/* 0 deleted or absent, -1 error */
	int (*del)(gl_store *s, const unsigned char *key, size_t klen);
	/* visit every record in batches of BATCH, locking per batch (not inside begin/end);
	 * returns the number visited or -1; *deleted counts deletions */
	long (*iterate)(gl_store *s, size_t batch, gl_iter_fn *fn, void *arg, long *deleted);
	/* flush to stable storage without holding the lock across the flush */
	int (*sync)(gl_store *s);
	/* compact the file (slow: holds the store; bounded begin()s fail meanwhile, never wait) */
	int (*compact)(gl_store *s);
	/* drop one reference; the last one syncs and closes */
	void (*close)(gl_store *s);
	/* optional (NULL: greylist.c uses begin/get/put/end): the same decision as
	 * greylist.c in one atomic call; 0 with RES filled, -1 error (logged) */
	int (*update)(gl_store *s, const gl_upd *in, gl_upd_res *res);
	/* 1: records expire by themselves (no cleanup, sync or compact needed) */
	int self_expiring;
	/* optional: bound the wait of every later begin() of this opener to MS milliseconds
	 * (the lock and the thread mutex together; -1, the default: wait as long as it takes);
	 * past it begin() fails (logged once per outage) */
	void (*lock_timeout)(gl_store *s, long ms);
} gl_store_ops;

extern const gl_store_ops gl_store_gdbm;
/* store_gdbm.c, for tests: called while compact() holds the store (NULL otherwise) */
extern void (*gl_gdbm_compact_hook)(void);

/* Most sentinels in redis_sentinels. */
#define GL_SENTINELS_MAX 8

/* One sentinel's address. */
typedef struct gl_sentinel {
	char host[256];
	int port;
} gl_sentinel;

/* Redis backend settings (options redis_*). */
typedef struct gl_redis_conf {
	char host[256];       /* host name or address, or "" with path */
	int port;
	char path[108];       /* unix socket, or "" */
	char username[128];   /* ACL user ("" = default) */
	char password[256];   /* "" = no AUTH */
	long db;
	char prefix[65];
	long connect_timeout_ms, timeout_ms;
	long retry_window, lifetime; /* TTLs of records written with put() */
	/* Sentinel discovery (n_sentinels 0 = off: host/port/path above are used) */
	gl_sentinel sentinels[GL_SENTINELS_MAX];
	int n_sentinels;
	char master_name[128];        /* the master's name in the sentinels' configuration */
	char sentinel_username[128];  /* AUTH to the sentinels ("" = default user) */
	char sentinel_password[256];  /* "" = no AUTH to the sentinels */
} gl_redis_conf;

/* options.c: parse "host:port", "[v6]:port", "host" or "unix:/path" into RC; -1 if invalid */
int gl_redis_server(const char *spec, gl_redis_conf *rc);
/* options.c: parse a sentinel "host[:port]" or "[v6][:port]" (port 26379 by default); -1 if invalid */
int gl_redis_sentinel(const char *spec, gl_sentinel *out);
/* options.c: fill RC from a greylist section (NULL: defaults); -1 with the reason in ERR */
int gl_redis_conf_get(cfg_t *cfg, gl_redis_conf *rc, char *err, size_t errsz);
/* Checks across the section's options (pd_plugin_validate); 0 or -1 after cfg_error. */
int gl_validate_section(cfg_t *sec);

/* store_redis.c (built only with hiredis, HAVE_HIREDIS) */
extern const gl_store_ops gl_store_redis;
/* open a connection pool to the server in RC (a first connection failure is logged, not fatal) */
gl_store *gl_redis_open(const gl_redis_conf *rc, const gl_logger *log);
/* the Lua script's reply {verdict, remaining, delayed} for IN into RES; -1 if it is not one the
 * script can give (unknown verdict, seconds out of range): an error, never a pass */
int gl_redis_verdict(const gl_upd *in, long long verdict, long long remaining, long long delayed,
		     gl_upd_res *res);

/* whitelist.c */
typedef struct gl_wl gl_wl;
gl_wl *gl_wl_new(void);
void gl_wl_free(gl_wl *wl);
/* load a client (CLIENTS=1) or recipient file; -1 with "file:line: why" in ERR */
int gl_wl_load(gl_wl *wl, const char *path, int clients, char *err, size_t errsz);
/* add one entry (for tests and files); -1 with the reason in ERR */
int gl_wl_add(gl_wl *wl, const char *entry, int clients, char *err, size_t errsz);
/* does the client match? names and regexes: the verified client_name only, never the reverse name */
int gl_wl_client(const gl_wl *wl, const char *addr, const char *name);
int gl_wl_recipient(const gl_wl *wl, const char *rcpt);
size_t gl_wl_count(const gl_wl *wl);

/* options.c */
#include <confuse.h>
#define GL_DEF_TEXT "4.2.0 Greylisted, please retry in %s seconds"
extern cfg_opt_t gl_options[];


#endif
