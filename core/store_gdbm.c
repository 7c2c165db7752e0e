/* store_gdbm.c - the state service on one GDBM file, shared by threads and processes */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * (The file and lock machinery is the greylist plugin's store_gdbm.c,
 * generalised: the plugin moves onto this library.)
 *
 * Locking. One open GDBM handle per database file per process, shared
 * (reference counted) by every opener and thread of that process. An
 * operation is one unit of work: it takes, in this order, the handle's
 * mutex (threads of this process) and an exclusive fcntl() lock on byte 0
 * of PATH.lock (other processes: `policyd -s`, the admin command). GDBM's
 * own locking is off (GDBM_NOLOCK) because it locks per open, not per
 * operation. Taking the lock goes through a turnstile, byte 1: lock byte 1,
 * lock byte 0, unlock byte 1. A process waiting for byte 0 holds byte 1, so
 * whoever comes next queues behind it: nobody is starved.
 *
 * Lease (PD_STORE_LEASE, the daemon): the process keeps the lock across
 * units of work for up to LEASE_MS, so a busy daemon pays the lock's system
 * calls once per lease instead of once per operation. It gives the lock
 * back at the first unit that ends after LEASE_MS, or, when idle, from a
 * small releaser thread.
 *
 * Bounded waits (lock_timeout_ms): an operation polls F_SETLK (short
 * sleeps, 0.2 ms doubling to 2 ms) for at most lock_ms, the thread mutex
 * included, then fails with -1. The first such failure logs who holds the
 * lock (its pid) and starts an outage: until the lock is had again an
 * operation waits only BUSY_WAIT_MS, so a storm of requests does not queue
 * up behind a stuck process; the end of the outage is logged with the
 * count of failures. lock_timeout_ms -1 (the admin command) waits as long
 * as it takes. Compaction holds the file for the whole gdbm_reorganize;
 * meanwhile bounded operations fail at once instead of waiting behind it.
 *
 * GDBM caches the header and buckets of an open file, so a process must
 * not keep using its handle after another process wrote the file. The lock
 * file holds a 64-bit generation number: whoever writes bumps it before its
 * first write under each hold of the lock (so a writer killed halfway still
 * leaves the new number); taking the lock reads the number and reopens the
 * database when it is not the one this process saw last. A lone daemon
 * never reopens; processes that share the file reopen only after someone
 * else wrote. Reads never write.
 *
 * GDBM writes each update to the file (page cache) before returning, so a
 * killed process loses nothing; sync() makes it durable (fsync) without
 * holding the lock.
 *
 * A file whose content is not a database, or that reports corruption, is
 * renamed to PATH.corrupt.TIMESTAMP and a fresh one is created, logged at
 * error level. A file that cannot be opened or read (EACCES: it belongs to
 * another user; EIO) is never moved aside: that is an error naming the file
 * and its cause, and the file stays as it is. Write errors (full disk) fail
 * the operation only.
 *
 * Encodings. The GDBM key is the full key "NS:K:KEY"; keys starting with
 * '!' are bookkeeping ("!expire": when the last expiry pass began). Every
 * value starts with a version byte (1) and the kind letter; integers are
 * little-endian:
 *   value    1 'v' expiry(i64) data...
 *   counter  1 'c' window(u32) H(i64) then 17 LEB128 counts, of buckets H-16 .. H
 *   members  1 'm' n(u16) then n x { expiry(i64) len(u8) bytes }, ascending by
 *            (expiry, bytes)
 *   meta     1 'M' time(i64)
 * A value that does not decode is treated as absent (and overwritten); the
 * expiry pass deletes it, except one of a newer version (2..15): kept for
 * the policyd that wrote it.
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <gdbm.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LEASE_MS 5       /* longest hold of the inter-process lock across units of work */
#define BUSY_WAIT_MS 20  /* longest lock wait during an outage (another process held it too long) */
#define REC_VERSION 1
#define NEWEST_UNKNOWN 15 /* versions 2..15: written by a newer policyd, kept by expiry */
#define NSLOTS (PD_STORE_BUCKETS + 1)
#define COMPACT_MIN 10000 /* a pass that deleted this many (and half the file) compacts */

#define LOG_ERR_ PD_STORE_LOG_ERR
#define LOG_WARN_ PD_STORE_LOG_WARNING
#define LOG_NOTICE_ PD_STORE_LOG_NOTICE
#define LOG_INFO_ PD_STORE_LOG_INFO

static const char meta_key[] = "!expire";

/* State shared by every opener of one file in this process. */
typedef struct shared {
	struct shared *next;
	char *path;
	char *lockpath;
	dev_t dev;     /* of the lock file, to find a shared handle by another path */
	ino_t ino;
	int refs;
	unsigned flags;
	pthread_mutex_t mu;
	GDBM_FILE db;
	int lockfd;
	uint64_t gen;  /* generation this process saw last */
	int dirty;     /* the file was (re)created: others must reopen */
	int broken;    /* reopen at the next begin() */
	int held;      /* this process holds the inter-process lock */
	int bumped;    /* the generation was bumped during this hold */
	int lease;     /* keep the lock across units of work (PD_STORE_LEASE) */
	int stop;      /* the releaser thread must end */
	uint64_t held_since; /* monotonic ms when the lock was taken */
	pthread_cond_t cond; /* wakes the releaser thread */
	pthread_t releaser;
	time_t err_at; /* last logged error, to log a persistent failure once a minute */
	long err_quiet; /* errors not logged since */
	int busy;            /* a bounded wait for the lock failed: outage until it is had again */
	uint64_t busy_since; /* monotonic ms when the outage began */
	long busy_failed;    /* units of work failed during the outage */
	int compacting;      /* atomic: compact() holds the store, bounded begin()s fail at once */
	long compact_failed; /* atomic: begin()s failed during this compaction */
	time_t mu_warn_at;   /* atomic: last "busy" warning for a mutex wait (once a minute) */
} shared;

/* One opener: the shared handle, its store (logger), its lock wait, its expiry pass. */
typedef struct gd {
	shared *sh;
	pd_store *st;
	long lock_ms;          /* longest wait in begin() (mutex and lock together); -1: no bound */
	long expire_interval;
	pthread_mutex_t xmu;   /* the expiry pass below */
	datum cursor;          /* the next key of the pass under way (dptr NULL: none) */
	int in_pass;
	long pass_deleted, pass_visited;
	int64_t last_compact;
	char msg[600];         /* why the database could not be opened, last time */
} gd;

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static shared *registry;

#define SLOG(g, lvl, ...) pd_store_logf((g)->st, (lvl), __VA_ARGS__)

/* ---- little-endian integers and LEB128 ---- */

/* put64 - store V little-endian at P */
static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

/* get64 - read a little-endian 64-bit integer at P */
static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* put_uvar - LEB128 of V at P; its length (<= 10) */
static size_t put_uvar(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			p[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

/* get_uvar - a LEB128 number from P (END: the end of the data) into *V; bytes read, 0 if bad */
static size_t get_uvar(const unsigned char *p, const unsigned char *end, uint64_t *v)
{
	size_t n = 0;

	*v = 0;
	while (p + n < end && n < 10) {
		*v |= (uint64_t)(p[n] & 0x7f) << (7 * n);
		if (!(p[n++] & 0x80))
			return n;
	}
	return 0;
}

/* ---- locking (shared handle) ---- */

/* is_corruption - does this GDBM error mean the file content is bad? (system errors never do:
 * a file that cannot be opened or read, EACCES or EIO, is left alone) */
static int is_corruption(int e)
{
	switch (e) {
	case GDBM_BAD_MAGIC_NUMBER:
	case GDBM_EMPTY_DATABASE:
	case GDBM_BAD_FILE_OFFSET:
	case GDBM_FILE_EOF:
	case GDBM_BLOCK_SIZE_ERROR:
	case GDBM_BAD_HEADER:
	case GDBM_BAD_BUCKET:
	case GDBM_BAD_HASH_TABLE:
	case GDBM_BAD_DIR_ENTRY:
	case GDBM_BAD_AVAIL:
	case GDBM_BAD_OPEN_FLAGS:
	case GDBM_NEED_RECOVERY:
	case GDBM_BUCKET_CACHE_CORRUPTED:
	case GDBM_DIR_OVERFLOW:
	case GDBM_BYTE_SWAPPED:
	case GDBM_UNKNOWN_ERROR:
		return 1;
	default:
		return 0;
	}
}

/* err_due - may a repeated error be logged now? (once a minute, with the count of the others) */
static int err_due(gd *g)
{
	shared *sh = g->sh;
	time_t now = time(NULL);

	if (sh->err_at && now - sh->err_at < 60 && now >= sh->err_at) {
		sh->err_quiet++;
		return 0;
	}
	if (sh->err_quiet)
		SLOG(g, LOG_ERR_, "store: database %s: %ld more errors in the last minute", sh->path,
		     sh->err_quiet);
	sh->err_at = now;
	sh->err_quiet = 0;
	return 1;
}

/* read_gen - the generation number in the lock file (0 when empty) */
static uint64_t read_gen(shared *sh)
{
	unsigned char b[8];

	if (pread(sh->lockfd, b, 8, 0) != 8)
		return 0;
	return get64(b);
}

/* write_gen - store a new generation number in the lock file */
static int write_gen(shared *sh, uint64_t g)
{
	unsigned char b[8];

	put64(b, g);
	return pwrite(sh->lockfd, b, 8, 0) == 8 ? 0 : -1;
}

/* now_ms - monotonic milliseconds */
static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ms_timespec - monotonic milliseconds MS as the absolute time of a CLOCK_MONOTONIC wait */
static struct timespec ms_timespec(uint64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000u), .tv_nsec = (long)(ms % 1000u) * 1000000L};

	return ts;
}

/* sleep_until - sleep STEP_US microseconds, but not past DEADLINE (monotonic ms) */
static void sleep_until(unsigned step_us, uint64_t deadline)
{
	uint64_t now = now_ms();
	struct timespec ts;

	if (now >= deadline)
		return;
	if ((uint64_t)step_us > (deadline - now) * 1000u)
		step_us = (unsigned)((deadline - now) * 1000u);
	ts.tv_sec = 0;
	ts.tv_nsec = (long)step_us * 1000L;
	nanosleep(&ts, NULL);
}

/* lock_byte - take one byte of the lock file (waiting until DEADLINE, monotonic ms; 0: as long
 * as it takes) or release it; 0, or -1 with errno (ETIMEDOUT: another process kept it) */
static int lock_byte(shared *sh, short type, off_t byte, uint64_t deadline)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
	unsigned step_us = 200;

	if (type == F_UNLCK || !deadline) {
		while (fcntl(sh->lockfd, type == F_UNLCK ? F_SETLK : F_SETLKW, &fl) != 0)
			if (errno != EINTR)
				return -1;
		return 0;
	}
	/* no F_SETLKW with a timeout: poll, with sleeps from 0.2 ms doubling to 2 ms (short, so
	 * that a waiter that has waited long is not outpaced by newer ones) */
	for (;;) {
		if (fcntl(sh->lockfd, F_SETLK, &fl) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EACCES && errno != EAGAIN)
			return -1;
		if (now_ms() >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		sleep_until(step_us, deadline);
		if (step_us < 2000)
			step_us *= 2;
	}
}

/* lock_holder - the pid holding byte 0 of the lock file now, or 0 */
static long lock_holder(shared *sh)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};

	if (fcntl(sh->lockfd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK)
		return 0;
	return (long)fl.l_pid;
}

/* lock_take - the inter-process lock, through the turnstile, by DEADLINE (0: no bound); 0 or -1 */
static int lock_take(shared *sh, uint64_t deadline)
{
	if (lock_byte(sh, F_WRLCK, 1, deadline) != 0)
		return -1;
	if (lock_byte(sh, F_WRLCK, 0, deadline) != 0) {
		int e = errno;

		lock_byte(sh, F_UNLCK, 1, 0);
		errno = e;
		return -1;
	}
	lock_byte(sh, F_UNLCK, 1, 0);
	sh->held = 1;
	sh->bumped = 0;
	sh->held_since = now_ms();
	if (sh->lease)
		pthread_cond_signal(&sh->cond); /* the releaser times the lease */
	return 0;
}

/* lock_drop - give the inter-process lock back */
static void lock_drop(shared *sh)
{
	lock_byte(sh, F_UNLCK, 0, 0);
	sh->held = 0;
}

/* lock_busy - a bounded wait failed: start an outage (logged once, with the holder) or count it */
static void lock_busy(gd *g, long waited_ms)
{
	shared *sh = g->sh;
	long pid;

	if (sh->busy) {
		sh->busy_failed++;
		return;
	}
	pid = lock_holder(sh);
	sh->busy = 1;
	sh->busy_since = now_ms();
	sh->busy_failed = 1;
	if (pid > 0)
		SLOG(g, LOG_ERR_, "store: database %s: another process (pid %ld) has kept %s for more "
		     "than %ld ms: operations fail until it is free", sh->path, pid, sh->lockpath,
		     waited_ms);
	else
		SLOG(g, LOG_ERR_, "store: database %s: other processes have kept %s for more than %ld "
		     "ms: operations fail until it is free", sh->path, sh->lockpath, waited_ms);
}

/* lock_free_again - the lock was had again after an outage: log its end */
static void lock_free_again(gd *g)
{
	shared *sh = g->sh;

	SLOG(g, LOG_NOTICE_, "store: database %s: %s free again after %.1f s (%ld operations failed "
	     "meanwhile)", sh->path, sh->lockpath, (double)(now_ms() - sh->busy_since) / 1000.0,
	     sh->busy_failed);
	sh->busy = 0;
	sh->busy_failed = 0;
}

/* mutex_until - the thread mutex by DEADLINE (monotonic ms; 0: no bound); 0 or -1. The wait is on
 * the monotonic clock (pthread_mutex_clocklock): a wall-clock deadline fails at once, or waits
 * far too long, when the wall clock is stepped (NTP, an admin, libfaketime) between reading it
 * and the wait. */
static int mutex_until(shared *sh, uint64_t deadline)
{
	struct timespec ts;
	int r;

	if (!deadline) {
		pthread_mutex_lock(&sh->mu);
		return 0;
	}
	if (pthread_mutex_trylock(&sh->mu) == 0)
		return 0;
	ts = ms_timespec(deadline);
	while ((r = pthread_mutex_clocklock(&sh->mu, CLOCK_MONOTONIC, &ts)) == EINTR)
		;
	return r == 0 ? 0 : -1;
}

/* minute_due - may a warning be logged now (AT: last time, updated atomically)? once a minute */
static int minute_due(time_t *at)
{
	time_t now = time(NULL), was = __atomic_load_n(at, __ATOMIC_RELAXED);

	if (was && now >= was && now - was < 60)
		return 0;
	return __atomic_compare_exchange_n(at, &was, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/* note_write - before the first write under this hold: a new generation, so others reopen */
static void note_write(gd *g)
{
	shared *sh = g->sh;

	if (sh->bumped)
		return;
	if (write_gen(sh, sh->gen + 1) == 0)
		sh->gen++;
	else
		SLOG(g, LOG_WARN_, "store: cannot write %s: %s", sh->lockpath, strerror(errno));
	sh->bumped = 1;
}

/* releaser_main - give a leased lock back once it is LEASE_MS old and nobody is using it */
static void *releaser_main(void *arg)
{
	shared *sh = arg;

	pthread_mutex_lock(&sh->mu);
	while (!sh->stop) {
		uint64_t due = sh->held_since + LEASE_MS;
		struct timespec ts;

		if (!sh->held) {
			pthread_cond_wait(&sh->cond, &sh->mu);
			continue;
		}
		if (now_ms() >= due) {
			lock_drop(sh);
			continue;
		}
		ts = ms_timespec(due);
		pthread_cond_timedwait(&sh->cond, &sh->mu, &ts);
	}
	pthread_mutex_unlock(&sh->mu);
	return NULL;
}

/* move_aside - rename a bad database to PATH.corrupt.TIMESTAMP; 0 or -1 */
static int move_aside(gd *g, const char *why)
{
	shared *sh = g->sh;
	char dst[4200];
	struct stat st;
	long t = (long)time(NULL);

	if (sh->db) {
		gdbm_close(sh->db);
		sh->db = NULL;
	}
	for (int i = 0; i < 100; i++) {
		if (i == 0)
			snprintf(dst, sizeof(dst), "%s.corrupt.%ld", sh->path, t);
		else
			snprintf(dst, sizeof(dst), "%s.corrupt.%ld.%d", sh->path, t, i);
		if (stat(dst, &st) != 0)
			break;
	}
	if (rename(sh->path, dst) != 0) {
		SLOG(g, LOG_ERR_, "store: database %s is unusable (%s) and cannot be moved aside: %s",
		     sh->path, why, strerror(errno));
		return -1;
	}
	SLOG(g, LOG_ERR_, "store: database %s is unusable (%s): moved aside to %s, starting a fresh "
	     "one; its counters and values start over", sh->path, why, dst);
	return 0;
}

/* denied - is ERR a permission error (the file or its directory belongs to someone else)? */
static int denied(int err)
{
	return err == EACCES || err == EPERM;
}

/* tune - options of a new handle: coalesce adjacent free blocks (records that grow, member sets,
 * otherwise leave holes: 10 members added one by one cost 1500 bytes a key instead of 400);
 * a bounded bucket cache: gdbm 1.23 grows its cache with the file by default, so the daemon's
 * memory grew by about 26 bytes per key (372 MB resident after 10M keys); the buckets are in
 * the mapped file anyway, so a cache of CACHE_BUCKETS keeps memory flat at little cost */
#define CACHE_BUCKETS 1024
static void tune(GDBM_FILE db)
{
	int one = 1;
	size_t buckets = CACHE_BUCKETS;

	gdbm_setopt(db, GDBM_SETCOALESCEBLKS, &one, sizeof(one));
	gdbm_setopt(db, GDBM_SETCACHESIZE, &buckets, sizeof(buckets));
}

/* db_open - open (or create) the GDBM file; move a corrupt one aside. Inter-process lock held. */
static int db_open(gd *g)
{
	shared *sh = g->sh;
	int create = !(sh->flags & PD_STORE_NOCREATE);
	int mode = create ? GDBM_WRCREAT : GDBM_WRITER;
	int e, err;

	if (sh->db) {
		gdbm_close(sh->db);
		sh->db = NULL;
	}
	sh->db = gdbm_open(sh->path, 0, mode | GDBM_NOLOCK | GDBM_CLOEXEC, 0600, NULL);
	if (sh->db) {
		tune(sh->db);
		return 0;
	}
	e = gdbm_errno;
	err = errno;
	/* only bad content is moved aside: a file that cannot be opened (a permission
	 * problem, EACCES after a restore as root) or read is an error and stays as it is */
	if (!create || !is_corruption(e)) {
		if (gdbm_check_syserr(e) && denied(err))
			snprintf(g->msg, sizeof(g->msg), "cannot open database %s: %s (running as uid %ld: "
				 "check the owner and mode of the file and of its directory; the file is "
				 "left as it is)", sh->path, strerror(err), (long)geteuid());
		else
			snprintf(g->msg, sizeof(g->msg), "cannot open database %s: %s%s%s", sh->path,
				 gdbm_strerror(e), gdbm_check_syserr(e) ? ": " : "",
				 gdbm_check_syserr(e) ? strerror(err) : "");
		if (err_due(g))
			SLOG(g, LOG_ERR_, "store: %s", g->msg);
		return -1;
	}
	if (move_aside(g, gdbm_strerror(e)) != 0)
		return -1;
	sh->db = gdbm_open(sh->path, 0, GDBM_NEWDB | GDBM_NOLOCK | GDBM_CLOEXEC, 0600, NULL);
	if (!sh->db) {
		SLOG(g, LOG_ERR_, "store: cannot create database %s: %s", sh->path,
		     gdbm_strerror(gdbm_errno));
		return -1;
	}
	tune(sh->db);
	sh->dirty = 1; /* others must reopen */
	return 0;
}

/* op_error - handle a failed GDBM operation: corruption moves the file aside now */
static void op_error(gd *g, const char *what)
{
	shared *sh = g->sh;
	int e = gdbm_last_errno(sh->db);
	int err = gdbm_last_syserr(sh->db);

	if (is_corruption(e) && !(sh->flags & PD_STORE_NOCREATE)) {
		if (move_aside(g, gdbm_strerror(e)) == 0 &&
		    (sh->db = gdbm_open(sh->path, 0, GDBM_NEWDB | GDBM_NOLOCK | GDBM_CLOEXEC, 0600,
					NULL)) != NULL) {
			tune(sh->db);
			sh->dirty = 1;
			return;
		}
		sh->broken = 1;
		return;
	}
	if (err_due(g))
		SLOG(g, LOG_ERR_, "store: database %s: %s: %s%s%s", sh->path, what, gdbm_strerror(e),
		     err ? ": " : "", err ? strerror(err) : "");
	sh->broken = 1; /* the handle may hold half-written state: reopen next time */
}

/* begin - lock (threads, then processes) within lock_ms and reopen if another process wrote */
static int begin(gd *g)
{
	shared *sh = g->sh;
	uint64_t gen, deadline = 0, start = 0;

	if (g->lock_ms >= 0) {
		if (__atomic_load_n(&sh->compacting, __ATOMIC_ACQUIRE)) {
			__atomic_add_fetch(&sh->compact_failed, 1, __ATOMIC_RELAXED);
			return -1; /* never wait behind a reorganisation */
		}
		start = now_ms();
		deadline = start + (uint64_t)g->lock_ms;
	}
	if (mutex_until(sh, deadline) != 0) {
		if (minute_due(&sh->mu_warn_at))
			SLOG(g, LOG_WARN_, "store: database %s: busy in this process for more than %ld ms: "
			     "the operation fails", sh->path, g->lock_ms);
		return -1;
	}
	sh->dirty = 0;
	if (!sh->held) {
		uint64_t until = deadline;

		if (deadline && sh->busy && until > now_ms() + BUSY_WAIT_MS)
			until = now_ms() + BUSY_WAIT_MS; /* an outage: do not queue up behind it */
		if (lock_take(sh, until) != 0) {
			if (errno == ETIMEDOUT)
				lock_busy(g, (long)(now_ms() - start));
			else if (err_due(g))
				SLOG(g, LOG_ERR_, "store: cannot lock %s: %s", sh->lockpath, strerror(errno));
			pthread_mutex_unlock(&sh->mu);
			return -1;
		}
		if (sh->busy)
			lock_free_again(g);
		gen = read_gen(sh);
		if (gen != sh->gen) {
			sh->gen = gen;
			sh->broken = 1; /* someone else wrote: reopen */
		}
	}
	if (!sh->db || sh->broken) {
		if (db_open(g) != 0) {
			sh->broken = 1;
			lock_drop(sh);
			pthread_mutex_unlock(&sh->mu);
			return -1;
		}
		sh->broken = 0;
	}
	return 0;
}

/* end - publish writes (new generation) and unlock */
static void end(gd *g)
{
	shared *sh = g->sh;

	if (sh->dirty)
		note_write(g);
	sh->dirty = 0;
	if (!sh->lease || sh->broken || now_ms() - sh->held_since >= LEASE_MS)
		lock_drop(sh);
	pthread_mutex_unlock(&sh->mu);
}

/* ---- records ---- */

/* A decoded counter. */
typedef struct ctr {
	uint32_t w;
	int64_t h;
	uint64_t b[NSLOTS]; /* buckets h-16 .. h */
} ctr;

/* A decoded member set: entries point into the raw value. */
typedef struct mem {
	int64_t exp;
	size_t len;
	const unsigned char *p;
} mem;

/* dec_value - a 'v' value: expiry, data; 0 or -1 */
static int dec_value(const unsigned char *v, size_t len, int64_t *exp, const unsigned char **data,
		     size_t *dlen)
{
	if (len < 10 || v[0] != REC_VERSION || v[1] != PD_STORE_VALUE)
		return -1;
	*exp = (int64_t)get64(v + 2);
	*data = v + 10;
	*dlen = len - 10;
	return 0;
}

/* dec_counter - a 'c' value; 0 or -1 */
static int dec_counter(const unsigned char *v, size_t len, ctr *c)
{
	const unsigned char *p = v + 14, *e = v + len;

	if (len < 14 + NSLOTS || v[0] != REC_VERSION || v[1] != PD_STORE_COUNTER)
		return -1;
	c->w = (uint32_t)(v[2] | v[3] << 8 | v[4] << 16 | (uint32_t)v[5] << 24);
	c->h = (int64_t)get64(v + 6);
	if (c->w < 1 || c->w > PD_STORE_TTL_MAX)
		return -1;
	for (int j = 0; j < NSLOTS; j++) {
		size_t n = get_uvar(p, e, &c->b[j]);

		if (!n || c->b[j] > (uint64_t)LLONG_MAX)
			return -1;
		p += n;
	}
	return p == e ? 0 : -1;
}

/* enc_counter - C as a 'c' value into OUT (>= 14 + 17 * 10); its length */
static size_t enc_counter(const ctr *c, unsigned char *out)
{
	size_t n = 14;

	out[0] = REC_VERSION;
	out[1] = PD_STORE_COUNTER;
	out[2] = (unsigned char)c->w;
	out[3] = (unsigned char)(c->w >> 8);
	out[4] = (unsigned char)(c->w >> 16);
	out[5] = (unsigned char)(c->w >> 24);
	put64(out + 6, (uint64_t)c->h);
	for (int j = 0; j < NSLOTS; j++)
		n += put_uvar(out + n, c->b[j]);
	return n;
}

/* dec_members - an 'm' value into M (room for PD_STORE_MEMBERS_MAX + 1); the count, or -1 */
static long dec_members(const unsigned char *v, size_t len, mem *m)
{
	size_t n, off = 4;

	if (len < 4 || v[0] != REC_VERSION || v[1] != PD_STORE_MEMBERS)
		return -1;
	n = (size_t)(v[2] | v[3] << 8);
	if (n > PD_STORE_MEMBERS_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (off + 9 > len)
			return -1;
		m[i].exp = (int64_t)get64(v + off);
		m[i].len = v[off + 8];
		m[i].p = v + off + 9;
		off += 9 + m[i].len;
		if (m[i].len < 1 || off > len)
			return -1;
	}
	return off == len ? (long)n : -1;
}

/* mem_cmp - the order of a Redis sorted set: expiry, then bytes, then length */
static int mem_cmp(const mem *a, const mem *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int r;

	if (a->exp != b->exp)
		return a->exp < b->exp ? -1 : 1;
	r = memcmp(a->p, b->p, n);
	if (r)
		return r;
	return a->len < b->len ? -1 : a->len > b->len;
}

/* enc_members - N entries of M as an 'm' value into OUT; its length */
static size_t enc_members(const mem *m, size_t n, unsigned char *out)
{
	size_t off = 4;

	out[0] = REC_VERSION;
	out[1] = PD_STORE_MEMBERS;
	out[2] = (unsigned char)n;
	out[3] = (unsigned char)(n >> 8);
	for (size_t i = 0; i < n; i++) {
		put64(out + off, (uint64_t)m[i].exp);
		out[off + 8] = (unsigned char)m[i].len;
		memmove(out + off + 9, m[i].p, m[i].len);
		off += 9 + m[i].len;
	}
	return off;
}

/* members_walk - check an 'm' value without decoding it into an array: *MAXEXP the latest
 * expiry, *LIVE the members live at NOW, and with TEXT their names appended; 0 or -1 */
static int members_walk(const unsigned char *v, size_t len, int64_t now, int64_t *maxexp, long *live,
			char *text)
{
	size_t n, off = 4;

	*maxexp = 0;
	if (live)
		*live = 0;
	if (len < 4 || v[0] != REC_VERSION || v[1] != PD_STORE_MEMBERS)
		return -1;
	n = (size_t)(v[2] | v[3] << 8);
	if (n > PD_STORE_MEMBERS_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int64_t exp;
		size_t ml;

		if (off + 9 > len)
			return -1;
		exp = (int64_t)get64(v + off);
		ml = v[off + 8];
		if (ml < 1 || off + 9 + ml > len)
			return -1;
		if (exp > *maxexp)
			*maxexp = exp;
		if (exp > now && live)
			(*live)++;
		if (exp > now && text)
			pd_store_render_member(text, (const char *)v + off + 9, ml);
		off += 9 + ml;
	}
	return off == len ? 0 : -1;
}

/* sat_add - A + B, at most LLONG_MAX */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > (uint64_t)LLONG_MAX - b ? (uint64_t)LLONG_MAX : a + b;
}

/* ---- units of work ---- */

/* What a unit's function wants done with the entry. */
#define U_KEEP 0
#define U_WRITE 1
#define U_DELETE 2

/* A unit's function: OLD (NULL: absent) to *OUT (U_WRITE: OUTLEN bytes it owns); U_* or -1. */
typedef int unit_fn(gd *g, void *arg, const unsigned char *old, size_t oldlen, unsigned char **out,
		    size_t *outlen);

/* unit - one locked read-modify-write of key FK with FN; FN's U_* or -1 */
static int unit(gd *g, const char *fk, size_t fkl, unit_fn *fn, void *arg)
{
	shared *sh;
	datum k = {.dptr = (char *)fk, .dsize = (int)fkl}, d;
	unsigned char *out = NULL;
	size_t outlen = 0;
	int r;

	if (begin(g) != 0)
		return -1;
	sh = g->sh;
	d = gdbm_fetch(sh->db, k);
	if (!d.dptr && gdbm_last_errno(sh->db) != GDBM_ITEM_NOT_FOUND) {
		op_error(g, "fetch");
		end(g);
		return -1;
	}
	r = fn(g, arg, (unsigned char *)d.dptr, d.dptr ? (size_t)d.dsize : 0, &out, &outlen);
	if (r == U_WRITE) {
		datum v = {.dptr = (char *)out, .dsize = (int)outlen};

		note_write(g);
		if (gdbm_store(sh->db, k, v, GDBM_REPLACE) != 0) {
			op_error(g, "store");
			r = -1;
		}
	} else if (r == U_DELETE && d.dptr) {
		note_write(g);
		if (gdbm_delete(sh->db, k) != 0 && gdbm_last_errno(sh->db) != GDBM_ITEM_NOT_FOUND) {
			op_error(g, "delete");
			r = -1;
		}
	}
	end(g);
	free(d.dptr);
	return r;
}

/* Arguments of a counter unit. */
typedef struct count_arg {
	unsigned w;
	int64_t cur;
	long long amount;
	long long total;
	unsigned char buf[14 + NSLOTS * 10];
} count_arg;

/* u_count - the counter's ring at bucket CUR: add AMOUNT, total (the same rules as the Lua) */
static int u_count(gd *g, void *arg, const unsigned char *old, size_t oldlen, unsigned char **out,
		   size_t *outlen)
{
	count_arg *a = arg;
	ctr c;
	int have = old && dec_counter(old, oldlen, &c) == 0 && c.w == a->w;
	uint64_t t = 0;

	if (!a->amount) { /* read: the buckets from max(cur, h) - 16 on */
		if (have) {
			int64_t lo = (a->cur > c.h ? a->cur : c.h) - PD_STORE_BUCKETS;

			for (int j = 0; j < NSLOTS; j++)
				if (c.h - PD_STORE_BUCKETS + j >= lo)
					t = sat_add(t, c.b[j]);
		}
		a->total = (long long)t;
		return U_KEEP;
	}
	if (!have) {
		memset(&c, 0, sizeof(c));
		c.w = a->w;
		c.h = a->cur;
	}
	if (a->cur > c.h) { /* advance: buckets before cur - 16 leave the ring */
		int64_t d = a->cur - c.h;

		for (int j = 0; j < NSLOTS; j++)
			c.b[j] = j + d < NSLOTS ? c.b[j + d] : 0;
		c.h = a->cur;
	}
	/* a clock behind the ring adds to its oldest bucket: counted longer, never shorter */
	{
		int64_t slot = a->cur > c.h - PD_STORE_BUCKETS ? a->cur : c.h - PD_STORE_BUCKETS;

		c.b[slot - (c.h - PD_STORE_BUCKETS)] =
			sat_add(c.b[slot - (c.h - PD_STORE_BUCKETS)], (uint64_t)a->amount);
	}
	for (int j = 0; j < NSLOTS; j++)
		t = sat_add(t, c.b[j]);
	a->total = (long long)t;
	*outlen = enc_counter(&c, a->buf);
	*out = a->buf;
	return U_WRITE;
}

/* g_count - a windowed counter in one locked unit */
static int g_count(pd_store *s, const char *fk, size_t fkl, unsigned window, long long amount,
		   int64_t now, long long *total)
{
	count_arg a = {.w = window, .cur = pd_store_bucket(now, window), .amount = amount};

	if (unit(s->b, fk, fkl, u_count, &a) < 0)
		return -1;
	*total = a.total;
	return 0;
}

/* Arguments of a value unit (set, get, update). */
typedef struct value_arg {
	int64_t now;
	unsigned ttl;
	const void *data; /* set */
	size_t len;
	pd_store_val *val; /* get */
	int found;
	pd_store_update_fn *fn; /* update */
	void *fnarg;
	int result;
	const char *fk;
	size_t fkl;
	unsigned char *buf; /* set: 10 + len; update: 10 + PD_STORE_UPDATE_MAX */
} value_arg;

/* u_set - replace the value */
static int u_set(gd *g, void *arg, const unsigned char *old, size_t oldlen, unsigned char **out,
		 size_t *outlen)
{
	value_arg *a = arg;

	a->buf[0] = REC_VERSION;
	a->buf[1] = PD_STORE_VALUE;
	put64(a->buf + 2, (uint64_t)(a->now + a->ttl));
	memcpy(a->buf + 10, a->data, a->len);
	*out = a->buf;
	*outlen = 10 + a->len;
	return U_WRITE;
}

/* g_set - a value with its expiry */
static int g_set(pd_store *s, const char *fk, size_t fkl, const void *v, size_t len, unsigned ttl,
		 int64_t now)
{
	unsigned char buf[10 + PD_STORE_VALUE_MAX];
	value_arg a = {.now = now, .ttl = ttl, .data = v, .len = len, .buf = buf};

	return unit(s->b, fk, fkl, u_set, &a) < 0 ? -1 : 0;
}

/* u_get - copy the value out when it is live */
static int u_get(gd *g, void *arg, const unsigned char *old, size_t oldlen, unsigned char **out,
		 size_t *outlen)
{
	value_arg *a = arg;
	const unsigned char *data;
	size_t dlen;
	int64_t exp;

	if (!old || dec_value(old, oldlen, &exp, &data, &dlen) != 0 || exp <= a->now)
		return U_KEEP;
	a->val->data = malloc(dlen + 1);
	if (!a->val->data) {
		SLOG(g, LOG_ERR_, "store: out of memory");
		return -1;
	}
	memcpy(a->val->data, data, dlen);
	((char *)a->val->data)[dlen] = 0;
	a->val->len = dlen;
	a->val->ttl = (unsigned)(exp - a->now);
	a->found = 1;
	return U_KEEP;
}

/* g_get - a value at NOW */
static int g_get(pd_store *s, const char *fk, size_t fkl, int64_t now, pd_store_val *val)
{
	value_arg a = {.now = now, .val = val};

	if (unit(s->b, fk, fkl, u_get, &a) < 0)
		return -1;
	return a.found;
}

/* u_del - delete what is there */
static int u_del(gd *g, void *arg, const unsigned char *old, size_t oldlen, unsigned char **out,
		 size_t *outlen)
{
	*(int *)arg = old != NULL;
	return U_DELETE;
}

/* g_del - delete an entry: 1 deleted, 0 absent */
static int g_del(pd_store *s, const char *fk, size_t fkl)
{
	int found = 0;

	if (unit(s->b, fk, fkl, u_del, &found) < 0)
		return -1;
	return found;
}

/* Arguments of a members unit. */
typedef struct members_arg {
	int64_t now;
	const char *m; /* NULL: count only */
	size_t ml;
	unsigned ttl;
	long long count;
	mem *list;     /* PD_STORE_MEMBERS_MAX + 1 */
	unsigned char *buf;
} members_arg;

/* u_members - prune, add or refresh the member, bound the set, count */
static int u_members(gd *g, void *arg, const unsigned char *old, size_t oldlen, unsigned char **out,
		     size_t *outlen)
{
	members_arg *a = arg;
	long n = old ? dec_members(old, oldlen, a->list) : 0, k = 0;
	mem add;

	if (n < 0)
		n = 0; /* malformed: starts over */
	for (long i = 0; i < n; i++) /* live ones, and not the one being added */
		if (a->list[i].exp > a->now &&
		    !(a->m && a->list[i].len == a->ml && !memcmp(a->list[i].p, a->m, a->ml)))
			a->list[k++] = a->list[i];
	if (!a->m) {
		a->count = k;
		return U_KEEP;
	}
	add = (mem){.exp = a->now + a->ttl, .len = a->ml, .p = (const unsigned char *)a->m};
	{
		long pos = k;

		while (pos > 0 && mem_cmp(&a->list[pos - 1], &add) > 0) {
			a->list[pos] = a->list[pos - 1];
			pos--;
		}
		a->list[pos] = add;
		k++;
	}
	if (k > PD_STORE_MEMBERS_MAX) { /* drop the one that would expire first */
		memmove(a->list, a->list + 1, (size_t)(k - 1) * sizeof(*a->list));
		k--;
	}
	a->count = k;
	/* encode into a new buffer: the entries point into OLD and the member */
	*outlen = enc_members(a->list, (size_t)k, a->buf);
	*out = a->buf;
	return U_WRITE;
}

/* g_members - a set of distinct members in one locked unit */
static int g_members(pd_store *s, const char *fk, size_t fkl, const char *m, size_t ml, unsigned ttl,
		     int64_t now, long long *count)
{
	members_arg a = {.now = now, .m = m, .ml = ml, .ttl = ttl};
	int r;

	a.list = malloc((PD_STORE_MEMBERS_MAX + 1) * sizeof(*a.list));
	a.buf = malloc(4 + (size_t)(PD_STORE_MEMBERS_MAX + 1) * (9 + PD_STORE_MEMBER_MAX));
	if (!a.list || !a.buf) {
		free(a.list);
		free(a.buf);
		pd_store_logf(s, LOG_ERR_, "store: out of memory");
		return -1;
	}
	r = unit(s->b, fk, fkl, u_members, &a);
	free(a.list);
	free(a.buf);
	if (r < 0)
		return -1;
	*count = a.count;
	return 0;
}

/* u_update - the caller's function on the live record */
static int u_update(gd *g, void *arg, const unsigned char *old, size_t oldlen, unsigned char **out,
		    size_t *outlen)
{
	value_arg *a = arg;
	const unsigned char *data = NULL;
	size_t dlen = 0, newlen;
	int64_t exp = 0;
	unsigned ttl;

	if (old && (dec_value(old, oldlen, &exp, &data, &dlen) != 0 || exp <= a->now)) {
		data = NULL;
		dlen = 0;
		exp = 0;
	}
	if (pd_store_run_update(g->st, a->fk, a->fkl, a->fn, a->fnarg, data, dlen,
				data ? (unsigned)(exp - a->now) : 0, a->buf + 10, &newlen, &ttl,
				&a->result) != 0)
		return -1;
	if (a->result == PD_STORE_UPD_KEEP)
		return U_KEEP;
	if (a->result == PD_STORE_UPD_DELETE)
		return U_DELETE;
	a->buf[0] = REC_VERSION;
	a->buf[1] = PD_STORE_VALUE;
	put64(a->buf + 2, (uint64_t)(a->now + ttl));
	*out = a->buf;
	*outlen = 10 + newlen;
	return U_WRITE;
}

/* g_update - read-modify-write in one locked unit */
static int g_update(pd_store *s, const char *fk, size_t fkl, pd_store_update_fn *fn, void *arg,
		    int64_t now, int *result)
{
	unsigned char buf[10 + PD_STORE_UPDATE_MAX];
	value_arg a = {.now = now, .fn = fn, .fnarg = arg, .fk = fk, .fkl = fkl, .buf = buf};

	if (unit(s->b, fk, fkl, u_update, &a) < 0)
		return -1;
	*result = a.result;
	return 0;
}

/* ---- whole-file passes: expiry and listing ---- */

/* entry_end - when the entry (key FK, value V) stops existing: 1 with *END, 0 malformed (a newer
 * version's: *KEEP set), -1 bookkeeping */
static int entry_end(const char *fk, size_t fkl, const unsigned char *v, size_t len, int64_t *endt,
		     int *keep)
{
	char ns[PD_STORE_NS_MAX + 1], key[PD_STORE_KEY_MAX + 1];
	int kind;

	*keep = 0;
	if (fkl && fk[0] == '!')
		return -1;
	if (len >= 2 && v[0] > REC_VERSION && v[0] <= NEWEST_UNKNOWN) {
		*keep = 1;
		return 0;
	}
	if (pd_store_split_key(fk, fkl, ns, &kind, key) != 0 || len < 2 || v[1] != kind)
		return 0;
	if (kind == PD_STORE_VALUE) {
		const unsigned char *d;
		size_t dl;

		if (dec_value(v, len, endt, &d, &dl) != 0)
			return 0;
		return 1;
	}
	if (kind == PD_STORE_COUNTER) {
		ctr c;

		if (dec_counter(v, len, &c) != 0)
			return 0;
		*endt = pd_store_counter_end(c.h, c.w);
		return 1;
	}
	return members_walk(v, len, 0, endt, NULL, NULL) == 0 ? 1 : 0;
}

/* pass_claim - a new pass may begin if no process began one within expire_interval (recorded);
 * locked; 1 due, 0 not */
static int pass_claim(gd *g, int64_t now)
{
	shared *sh = g->sh;
	datum k = {.dptr = (char *)meta_key, .dsize = (int)sizeof(meta_key) - 1}, d;
	unsigned char b[10];
	int64_t last = -1;

	d = gdbm_fetch(sh->db, k);
	if (d.dptr) {
		if (d.dsize == 10 && (unsigned char)d.dptr[0] == REC_VERSION && d.dptr[1] == 'M')
			last = (int64_t)get64((unsigned char *)d.dptr + 2);
		free(d.dptr);
	}
	if (g->expire_interval > 0 && last >= 0 && last <= now && now - last < g->expire_interval)
		return 0;
	b[0] = REC_VERSION;
	b[1] = 'M';
	put64(b + 2, (uint64_t)now);
	d.dptr = (char *)b;
	d.dsize = 10;
	note_write(g);
	if (gdbm_store(sh->db, k, d, GDBM_REPLACE) != 0) {
		op_error(g, "store");
		return 0;
	}
	return 1;
}

/* g_expire - one step of the expiry pass: BATCH entries under one hold of the lock */
static long g_expire(pd_store *s, int64_t now, size_t batch, int *done)
{
	gd *g = s->b;
	shared *sh = g->sh;
	datum *keys = calloc(batch, sizeof(*keys));
	char *del = calloc(batch, 1);
	size_t n = 0;
	long deleted = 0;
	int compact = 0;

	if (!keys || !del) {
		free(keys);
		free(del);
		SLOG(g, LOG_ERR_, "store: out of memory");
		return -1;
	}
	pthread_mutex_lock(&g->xmu);
	if (begin(g) != 0) {
		pthread_mutex_unlock(&g->xmu);
		free(keys);
		free(del);
		return -1;
	}
	*done = 0;
	if (!g->in_pass) {
		if (!pass_claim(g, now)) {
			*done = 1;
			goto out;
		}
		g->in_pass = 1;
		g->pass_deleted = g->pass_visited = 0;
		g->cursor = gdbm_firstkey(sh->db);
	}
	/* collect up to BATCH keys and the one after them, then delete the expired ones (deleting
	 * while walking would lose the walk's place) */
	while (g->cursor.dptr && n < batch) {
		datum v = gdbm_fetch(sh->db, g->cursor);
		int64_t endt;
		int keep, r;

		if (!v.dptr) { /* deleted by another process since the last step: start over later */
			free(g->cursor.dptr);
			g->cursor.dptr = NULL;
			break;
		}
		r = entry_end(g->cursor.dptr, (size_t)g->cursor.dsize, (unsigned char *)v.dptr,
			      (size_t)v.dsize, &endt, &keep);
		free(v.dptr);
		keys[n] = g->cursor;
		del[n] = (r == 1 && endt <= now) || (r == 0 && !keep);
		n++;
		g->cursor = gdbm_nextkey(sh->db, keys[n - 1]);
	}
	for (size_t i = 0; i < n; i++)
		if (del[i]) {
			note_write(g);
			if (gdbm_delete(sh->db, keys[i]) == 0)
				deleted++;
		}
	g->pass_visited += (long)n;
	g->pass_deleted += deleted;
	if (!g->cursor.dptr) {
		*done = 1;
		g->in_pass = 0;
		if (g->pass_deleted >= COMPACT_MIN && g->pass_deleted * 2 >= g->pass_visited &&
		    now - g->last_compact >= 86400) {
			g->last_compact = now;
			compact = 1;
		}
		SLOG(g, deleted || g->pass_deleted ? LOG_INFO_ : PD_STORE_LOG_DEBUG,
		     "store: expiry: %ld of %ld entries removed", g->pass_deleted, g->pass_visited);
	}
out:
	end(g);
	pthread_mutex_unlock(&g->xmu);
	for (size_t i = 0; i < n; i++)
		free(keys[i].dptr);
	free(keys);
	free(del);
	if (compact)
		pd_store_compact(s); /* logs its duration; operations meanwhile fail at once */
	return deleted;
}

/* One entry copied out of the database by g_scan. */
typedef struct item {
	datum key, val;
} item;

/* render - the entry (FK, V) for a listing at NOW; 1 with E filled, 0 to skip it */
static int render(const char *fk, size_t fkl, const unsigned char *v, size_t len, int64_t now,
		  pd_store_entry *e, char *ns, char *key, char *text)
{
	int64_t endt;
	int keep;

	if (entry_end(fk, fkl, v, len, &endt, &keep) != 1 || endt <= now)
		return 0;
	pd_store_split_key(fk, fkl, ns, &e->kind, key);
	e->ns = ns;
	e->key = key;
	e->ttl = endt - now;
	e->text = text;
	if (e->kind == PD_STORE_VALUE) {
		const unsigned char *d = NULL;
		size_t dl = 0;

		dec_value(v, len, &endt, &d, &dl);
		pd_store_render_value(text, d, dl);
	} else if (e->kind == PD_STORE_COUNTER) {
		count_arg a;
		ctr c;

		dec_counter(v, len, &c);
		a = (count_arg){.w = c.w, .cur = pd_store_bucket(now, c.w)};
		u_count(NULL, &a, v, len, NULL, NULL);
		pd_store_render_counter(text, a.total, c.w);
	} else {
		long live = 0;

		members_walk(v, len, now, &endt, &live, NULL);
		pd_store_render_members(text, live);
		members_walk(v, len, now, &endt, &live, text);
	}
	return 1;
}

/* g_scan - every live entry (of NS), 100 at a time; FN runs with no lock held */
static long g_scan(pd_store *s, const char *ns, int64_t now, pd_store_scan_fn *fn, void *arg)
{
	enum { BATCH = 100 };
	gd *g = s->b;
	shared *sh = g->sh;
	item items[BATCH];
	datum next = {0};
	size_t nsl = ns ? strlen(ns) : 0;
	long listed = 0;
	int first = 1, stop = 0, failed = 0;
	char nsb[PD_STORE_NS_MAX + 1], key[PD_STORE_KEY_MAX + 1], text[PD_STORE_TEXT_MAX];

	/* Each step copies up to BATCH entries and the key after them under the lock, then calls
	 * FN on the copies without the lock (a slow consumer, "list | less", never stalls the
	 * daemon). Writes by others between steps may make a pass skip entries. */
	while (!stop) {
		size_t n = 0;

		if (begin(g) != 0) {
			failed = 1;
			break;
		}
		if (first) {
			next = gdbm_firstkey(sh->db);
			first = 0;
		}
		while (next.dptr && n < BATCH) {
			datum v = gdbm_fetch(sh->db, next);

			if (!v.dptr) { /* deleted by someone else since the last step */
				free(next.dptr);
				next.dptr = NULL;
				break;
			}
			items[n].key = next;
			items[n].val = v;
			n++;
			next = gdbm_nextkey(sh->db, next);
		}
		end(g);
		if (!next.dptr)
			stop = 1;
		for (size_t i = 0; i < n; i++) {
			pd_store_entry e;
			const char *k = items[i].key.dptr;
			size_t kl = (size_t)items[i].key.dsize;

			if (stop == 2 || (ns && (kl <= nsl || memcmp(k, ns, nsl) || k[nsl] != ':')))
				continue;
			if (!render(k, kl, (unsigned char *)items[i].val.dptr, (size_t)items[i].val.dsize,
				    now, &e, nsb, key, text))
				continue;
			listed++;
			if (fn(arg, &e) != 0)
				stop = 2;
		}
		for (size_t i = 0; i < n; i++) {
			free(items[i].key.dptr);
			free(items[i].val.dptr);
		}
	}
	free(next.dptr);
	return failed ? -1 : listed;
}

/* g_sync - fsync the database file without holding the lock across the flush */
static int g_sync(pd_store *s)
{
	gd *g = s->b;
	shared *sh = g->sh;
	int fd = -1, r = 0;

	pthread_mutex_lock(&sh->mu);
	if (sh->db)
		fd = dup(gdbm_fdesc(sh->db));
	pthread_mutex_unlock(&sh->mu);
	if (fd < 0)
		return 0;
	if (fsync(fd) != 0) {
		SLOG(g, LOG_ERR_, "store: database %s: fsync: %s", sh->path, strerror(errno));
		r = -1;
	}
	close(fd);
	return r;
}

/* g_compact - gdbm_reorganize: give freed space back. It holds the store while it runs; bounded
 * operations fail at once meanwhile instead of waiting. */
static int g_compact(pd_store *s)
{
	gd *g = s->b;
	shared *sh = g->sh;
	uint64_t t0;
	long failed;
	int r;

	if (begin(g) != 0)
		return -1;
	__atomic_store_n(&sh->compact_failed, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&sh->compacting, 1, __ATOMIC_RELEASE);
	t0 = now_ms();
	note_write(g); /* the file is replaced: others reopen */
	if (pd_store_compact_hook)
		pd_store_compact_hook();
	r = gdbm_reorganize(sh->db);
	if (r == 0)
		tune(sh->db);
	__atomic_store_n(&sh->compacting, 0, __ATOMIC_RELEASE);
	failed = __atomic_exchange_n(&sh->compact_failed, 0, __ATOMIC_RELAXED);
	if (r != 0)
		op_error(g, "reorganize");
	else
		SLOG(g, LOG_INFO_, "store: database %s reorganised in %.1f s (%ld operations failed "
		     "meanwhile rather than wait)", sh->path, (double)(now_ms() - t0) / 1000.0, failed);
	end(g);
	return r == 0 ? 0 : -1;
}

/* shared_find - the shared handle of PATH's file in this process (registry_mu held), or NULL */
static shared *shared_find(const char *path, const char *lockpath)
{
	struct stat st;
	int have = stat(lockpath, &st) == 0;

	for (shared *sh = registry; sh; sh = sh->next)
		if (!strcmp(sh->path, path) || (have && sh->dev == st.st_dev && sh->ino == st.st_ino))
			return sh;
	return NULL;
}

/* shared_new - open the lock file and the database of GC; NULL with ERR (*LOGGED: already logged)
 * (registry_mu held) */
static shared *shared_new(gd *g, const pd_store_gdbm_conf *gc, const char *lockpath, char *err,
			  size_t errlen, int *logged)
{
	shared *sh = calloc(1, sizeof(*sh));
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;
	struct stat st;

	if (!sh || !(sh->path = strdup(gc->path)) || !(sh->lockpath = strdup(lockpath))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	sh->flags = gc->flags;
	sh->refs = 1;
	pthread_mutexattr_init(&ma); /* units are short: spin a little before sleeping */
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&sh->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sh->cond, &ca);
	pthread_condattr_destroy(&ca);
	g->sh = sh;
	sh->lockfd = open(sh->lockpath, O_RDWR | O_CLOEXEC | (gc->flags & PD_STORE_NOCREATE ? 0 : O_CREAT),
			  0600);
	if (sh->lockfd < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot open %s: %s%s", sh->lockpath, strerror(e),
			 denied(e) ? " (check the owner and mode of the file and of its directory)" : "");
		goto fail_mu;
	}
	if (fstat(sh->lockfd, &st) == 0) {
		sh->dev = st.st_dev;
		sh->ino = st.st_ino;
	}
	if (lock_take(sh, 0) != 0) { /* at start: nobody waits for us yet */
		snprintf(err, errlen, "cannot lock %s: %s", sh->lockpath, strerror(errno));
		close(sh->lockfd);
		goto fail_mu;
	}
	sh->gen = read_gen(sh);
	sh->err_at = 0;
	if (db_open(g) != 0) {
		snprintf(err, errlen, "%s", g->msg[0] ? g->msg : "cannot open the database");
		*logged = 1;
		lock_drop(sh);
		close(sh->lockfd);
		goto fail_mu;
	}
	sh->err_at = 0; /* a later error is logged at once */
	if (sh->dirty)
		note_write(g);
	sh->dirty = 0;
	lock_drop(sh);
	if ((gc->flags & PD_STORE_LEASE) && pthread_create(&sh->releaser, NULL, releaser_main, sh) == 0)
		sh->lease = 1; /* else: a lock per unit of work, as without the flag */
	return sh;
fail_mu:
	pthread_mutex_destroy(&sh->mu);
	pthread_cond_destroy(&sh->cond);
fail:
	if (sh) {
		free(sh->path);
		free(sh->lockpath);
		free(sh);
	}
	g->sh = NULL;
	return NULL;
}

/* pd_store_gdbm_open - share the handle of the file or open it */
int pd_store_gdbm_open(pd_store *s, const pd_store_gdbm_conf *gc, char *err, size_t errlen)
{
	gd *g = calloc(1, sizeof(*g));
	char *lockpath = malloc(strlen(gc->path) + 6);
	shared *sh;
	int logged = 0;

	if (!g || !lockpath) {
		free(g);
		free(lockpath);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sprintf(lockpath, "%s.lock", gc->path);
	g->st = s;
	g->lock_ms = gc->lock_ms;
	g->expire_interval = gc->expire_interval;
	g->last_compact = INT64_MIN / 2;
	pthread_mutex_init(&g->xmu, NULL);
	pthread_mutex_lock(&registry_mu);
	sh = shared_find(gc->path, lockpath);
	if (sh) {
		sh->refs++; /* its flags (LEASE, NOCREATE) are those of its first opener */
		g->sh = sh;
	} else if ((sh = shared_new(g, gc, lockpath, err, errlen, &logged)) != NULL) {
		sh->next = registry;
		registry = sh;
	}
	pthread_mutex_unlock(&registry_mu);
	free(lockpath);
	if (!sh) {
		if (!logged)
			pd_store_logf(s, LOG_ERR_, "store: %s", err);
		pthread_mutex_destroy(&g->xmu);
		free(g);
		return -1;
	}
	s->b = g;
	return 0;
}

/* g_close - drop a reference; the last one closes (GDBM syncs on close) */
static void g_close(pd_store *s)
{
	gd *g = s->b;
	shared *sh = g->sh;

	pthread_mutex_lock(&registry_mu);
	if (--sh->refs == 0) {
		for (shared **pp = &registry; *pp; pp = &(*pp)->next)
			if (*pp == sh) {
				*pp = sh->next;
				break;
			}
		if (sh->lease) {
			pthread_mutex_lock(&sh->mu);
			sh->stop = 1;
			pthread_cond_signal(&sh->cond);
			pthread_mutex_unlock(&sh->mu);
			pthread_join(sh->releaser, NULL);
		}
		pthread_mutex_lock(&sh->mu);
		if (sh->db) {
			/* a stuck lock holder must not hang the shutdown either */
			if (sh->held ||
			    lock_take(sh, g->lock_ms >= 0 ? now_ms() + (uint64_t)g->lock_ms : 0) == 0) {
				gdbm_close(sh->db);
				lock_drop(sh);
			} else {
				gdbm_close(sh->db);
			}
		}
		close(sh->lockfd);
		pthread_mutex_unlock(&sh->mu);
		pthread_mutex_destroy(&sh->mu);
		pthread_cond_destroy(&sh->cond);
		free(sh->path);
		free(sh->lockpath);
		free(sh);
	}
	pthread_mutex_unlock(&registry_mu);
	free(g->cursor.dptr);
	pthread_mutex_destroy(&g->xmu);
	free(g);
}

const pd_store_ops pd_store_gdbm_ops = {
	.name = "gdbm",
	.remote = 0,
	.count = g_count,
	.set = g_set,
	.get = g_get,
	.del = g_del,
	.members = g_members,
	.update = g_update,
	.scan = g_scan,
	.expire = g_expire,
	.sync = g_sync,
	.compact = g_compact,
	.close = g_close,
};
