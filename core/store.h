/* store.h - the core's state service: windowed counters, TTL values, member sets, records; GDBM or Redis */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * One store holds the state of every plugin instance, each in its own
 * namespace (the instance's name). Local: one GDBM file shared by the
 * daemon's threads, `policyd -s` processes and the admin command. Shared:
 * a Redis server (or the master a set of Sentinels names), for several MX
 * hosts. Every operation takes the caller's clock, NOW (seconds since the
 * epoch): every expiry and window decision is taken against it, on Redis
 * too (Redis TTLs only collect garbage, an hour after the data says it
 * expired), so tests can move time and hosts agree as long as their clocks
 * do (NTP).
 *
 * Every operation is atomic on both backends: one locked unit of work on
 * GDBM, one command or Lua script call on Redis (update(): an optimistic
 * WATCH/MULTI/EXEC, retried). It returns 0 (get: 1 found, 0 absent) or -1
 * after logging through the configured logger: bad arguments, the backend
 * down or slower than its bound (the GDBM lock wait, the Redis timeout), a
 * write error. -1 never waits past the bound.
 *
 * Kinds of entries (a kind has its own keys: count(ns, "x") and set(ns,
 * "x") are two entries; set/get/del and update share the value kind):
 *
 * Counter (count): a sliding window of WINDOW seconds as a ring of 16
 * buckets of WINDOW/16 seconds each plus the current one. The bucket of
 * time T is floor(T * 16 / WINDOW) (fractional widths: no rounding of the
 * window). An event added at T counts in every total asked at any NOW in
 * [T, T + WINDOW] and in none at NOW >= T + WINDOW * 17/16: a limit checked
 * against the total never lets more than the limit through in any WINDOW
 * seconds (no 2x burst at the edge); it may hold events up to one bucket
 * (WINDOW/16) longer. A counter asked with another WINDOW than it was
 * written with starts over. Totals are 64-bit on GDBM; on Redis (Lua
 * numbers) exact up to 2^53. A NOW earlier than the latest bucket written
 * (a clock that stepped back, another host behind) adds to the latest
 * buckets the ring still has and counts everything written.
 *
 * Value (set/get/del): up to PD_STORE_VALUE_MAX bytes with a TTL of 1 s to
 * PD_STORE_TTL_MAX; live while NOW < set time + TTL.
 *
 * Members (members): distinct members (1 to PD_STORE_MEMBER_MAX bytes),
 * each live for TTL seconds after it was last added; at most
 * PD_STORE_MEMBERS_MAX per set: adding one more drops the member that
 * would expire first (ties: the lowest in byte order), as Redis orders a
 * sorted set.
 *
 * Record (update): a value of at most PD_STORE_UPDATE_MAX bytes changed by
 * a pure C function; see pd_store_update_fn.
 */
#ifndef PD_STORE_H
#define PD_STORE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define PD_STORE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PD_STORE_PRINTF(f, a)
#endif

#define PD_STORE_NS_MAX 64          /* namespace: 1 to 64 of A-Z a-z 0-9 _ . - */
#define PD_STORE_KEY_MAX 512        /* key: 0 to 512 bytes of text (longer: refused) */
#define PD_STORE_VALUE_MAX 4096     /* set(): longest value */
#define PD_STORE_UPDATE_MAX 256     /* update(): room for the new record */
#define PD_STORE_MEMBER_MAX 255     /* members(): longest member (longer: refused) */
#define PD_STORE_MEMBERS_MAX 1000   /* members(): most live members kept per set */
#define PD_STORE_BUCKETS 16         /* count(): buckets per window (plus the current one) */
#define PD_STORE_TTL_MAX 315360000u /* longest TTL and window: 3650 days */
#define PD_STORE_SENTINELS_MAX 8

/* Kinds of entries (the letter in keys: "NS:c:KEY"). */
#define PD_STORE_COUNTER 'c'
#define PD_STORE_VALUE 'v'
#define PD_STORE_MEMBERS 'm'

/* What an update function wants done (the values of plugin.h's PD_STORE_KEEP ...). */
#define PD_STORE_UPD_KEEP 0   /* leave the record as it was */
#define PD_STORE_UPD_WRITE 1  /* store NEW (NEWLEN bytes) with *TTL seconds */
#define PD_STORE_UPD_DELETE 2 /* remove it */

/* pd_store_conf.flags (GDBM) */
#define PD_STORE_NOCREATE 1u /* never create the file nor move a corrupt one aside (admin command) */
#define PD_STORE_LEASE 2u    /* keep the inter-process lock across operations for <= 5 ms (daemon) */

/* Log callback: LEVEL is a syslog priority (3 err ... 7 debug); the line has no newline. */
typedef void pd_store_log_fn(void *ctx, int level, const char *fmt, ...) PD_STORE_PRINTF(3, 4);

/* Settings of a store. Zero means the default; strings are copied by open. */
typedef struct pd_store_conf {
	const char *backend; /* "gdbm" (NULL: "gdbm") or "redis" (when built with hiredis) */

	/* GDBM */
	const char *path;     /* the database file, e.g. STATE_DIR/state.db; its lock is PATH.lock */
	long lock_timeout_ms; /* longest wait of one operation for the lock, 1..60000 (0: 1000);
			       * -1: wait as long as it takes (the admin command) */
	long expire_interval; /* s between two expiry passes over the file by any process sharing it
			       * (0: whenever pd_store_expire() starts one) */
	unsigned flags;       /* PD_STORE_NOCREATE, PD_STORE_LEASE */

	/* Redis */
	const char *server;               /* "host:port", "[v6]:port", "host" (6379), "unix:/path"
					   * (NULL: "127.0.0.1:6379"); unused with sentinels */
	const char *username, *password;  /* AUTH [username] password (NULL/"": none) */
	long db;                          /* SELECT (0..65535) */
	const char *prefix;               /* key prefix, 1 to 64 printable bytes (NULL: "policyd:") */
	long connect_timeout_ms;          /* connecting, and each sentinel question (0: 500) */
	long timeout_ms;                  /* each command (0: 500) */
	const char *const *sentinels;     /* "host[:port]" (26379), at most PD_STORE_SENTINELS_MAX */
	size_t n_sentinels;               /* 0: no Sentinel, use server */
	const char *master_name;          /* the name the sentinels monitor the master by */
	const char *sentinel_username, *sentinel_password;

	/* logging (NULL: silent) */
	pd_store_log_fn *log;
	void *log_ctx;
} pd_store_conf;

typedef struct pd_store pd_store;

/* A value read by pd_store_get. */
typedef struct pd_store_val {
	void *data;   /* malloc'd: LEN bytes and a NUL after them; the caller frees it */
	size_t len;
	unsigned ttl; /* seconds left (>= 1) */
} pd_store_val;

/* A record update function: a pure function of the old record (OLD NULL, OLDLEN 0 when there is
 * none or it expired), called with *TTL set to the old record's seconds left (0: none). It
 * returns PD_STORE_UPD_KEEP, or _WRITE after filling NEW (room for PD_STORE_UPDATE_MAX bytes),
 * *NEWLEN and *TTL (1..PD_STORE_TTL_MAX), or _DELETE. It may run more than once for one update
 * (Redis retries when another client changed the record meanwhile): it must keep no state.
 * (The same type as plugin.h's pd_store_update_fn.) */
typedef int pd_store_update_fn(void *arg, const void *old, size_t oldlen, void *new, size_t *newlen,
			       unsigned *ttl);

/* One entry listed by pd_store_scan (valid during the callback). */
typedef struct pd_store_entry {
	const char *ns;   /* namespace */
	const char *key;  /* the key: client data, escape it before printing it to a log */
	int kind;         /* PD_STORE_COUNTER, PD_STORE_VALUE or PD_STORE_MEMBERS */
	long long ttl;    /* seconds until it expires (whole, at NOW) */
	const char *text; /* short rendering of the content, printable and escaped:
			   * "total=N window=Ws", "len=N \"bytes...\"", "members=N \"a\" \"b\" ..." */
} pd_store_entry;

/* pd_store_scan callback: 0 to go on, 1 to stop. */
typedef int pd_store_scan_fn(void *arg, const pd_store_entry *e);

/* Check CONF without opening anything (for the configuration's validation); 0, or -1 with the
 * reason in ERR. */
int pd_store_conf_check(const pd_store_conf *conf, char *err, size_t errlen);

/* Open the store CONF describes. GDBM: the file is opened (created unless NOCREATE) now; one
 * handle per file is shared by every opener in the process (with the first opener's flags).
 * Redis: a first connection is tried now; a server that is down is logged, not fatal (operations
 * fail until it is back). NULL with the reason in ERR (also logged). */
pd_store *pd_store_open(const pd_store_conf *conf, char *err, size_t errlen);

/* Close S (NULL: nothing): GDBM syncs when its last opener closes. */
void pd_store_close(pd_store *s);

/* 1 when operations wait for the network (Redis), 0 for the local file. */
int pd_store_remote(const pd_store *s);

/* Counter KEY of NS over WINDOW_S (1..PD_STORE_TTL_MAX) seconds: add AMOUNT (0..2^53; 0 only
 * reads) at NOW and put the window's total in *TOTAL. */
int pd_store_count(pd_store *s, const char *ns, const char *key, unsigned window_s, long long amount,
		   int64_t now, long long *total);

/* Value KEY of NS: set LEN (<= PD_STORE_VALUE_MAX) bytes for TTL_S seconds from NOW, replacing. */
int pd_store_set(pd_store *s, const char *ns, const char *key, const void *value, size_t len,
		 unsigned ttl_s, int64_t now);

/* Value KEY of NS at NOW: 1 found (*VAL filled; free VAL->data), 0 absent or expired, -1 error. */
int pd_store_get(pd_store *s, const char *ns, const char *key, int64_t now, pd_store_val *val);

/* Delete value KEY of NS (absent is fine): 0 or -1. */
int pd_store_del(pd_store *s, const char *ns, const char *key);

/* Member set KEY of NS: add (or refresh) MEMBER for TTL_S seconds from NOW (NULL: only count)
 * and put the number of live members in *COUNT. */
int pd_store_members(pd_store *s, const char *ns, const char *key, const char *member, unsigned ttl_s,
		     int64_t now, long long *count);

/* Read-modify-write record KEY of NS (a value) with FN in one atomic step at NOW; *RESULT gets
 * what FN returned last. Redis: WATCH/GET, FN, MULTI/SET/EXEC, up to 5 tries when another
 * client changed the record meanwhile; then -1. */
int pd_store_update(pd_store *s, const char *ns, const char *key, pd_store_update_fn *fn, void *arg,
		    int64_t now, int *result);

/* List every live entry (of namespace NS; NULL: all) at NOW to FN, while others keep using the
 * store (GDBM: batches under the lock, FN called without it; Redis: SCAN of the prefix). Entries
 * written meanwhile may be missed or listed twice. Returns the number listed, or -1. */
long pd_store_scan(pd_store *s, const char *ns, int64_t now, pd_store_scan_fn *fn, void *arg);

/* Delete entry KEY of kind KIND in NS (the admin command): 1 deleted, 0 absent, -1 error. */
int pd_store_delete(pd_store *s, const char *ns, int kind, const char *key);

/* GDBM: one step of the expiry pass: look at up to BATCH entries (one hold of the lock) from
 * where the last step stopped and delete those expired at NOW. *DONE is set to 1 when the pass
 * is over (the next step starts a new one, if expire_interval has passed since any process
 * sharing the file started one). A pass that deleted most of a large file compacts it, at most
 * daily (operations fail at once meanwhile instead of waiting). Returns the number deleted, or
 * -1. Redis: nothing to do (its TTLs collect garbage), *DONE = 1. */
long pd_store_expire(pd_store *s, int64_t now, size_t batch, int *done);

/* GDBM: make the writes so far durable (fsync, without holding the lock). Redis: nothing. */
int pd_store_sync(pd_store *s);

/* GDBM: compact the file now (gdbm_reorganize; operations fail at once meanwhile). Redis: nothing. */
int pd_store_compact(pd_store *s);

/* Tests: called while pd_store_compact() holds the GDBM file (NULL otherwise). */
extern void (*pd_store_compact_hook)(void);

#endif
