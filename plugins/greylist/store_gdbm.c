/* store_gdbm.c - GDBM storage backend of the greylist plugin, shared by threads and processes */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Locking. One open GDBM handle per database path per process, shared
 * (reference counted) by every instance and thread of that process: two
 * plugin instances coexist during a reload. A unit of work (begin..end)
 * takes, in this order, the handle's mutex (threads of this process) and
 * an exclusive fcntl() lock on byte 0 of PATH.lock (other processes:
 * spawn-mode policyd, the policyd-greylist command). GDBM's own locking
 * is off (GDBM_NOLOCK) because it locks per open, not per operation.
 * Taking the lock goes through a turnstile, byte 1: lock byte 1, lock
 * byte 0, unlock byte 1. A process waiting for byte 0 holds byte 1, so
 * whoever comes next queues behind it: nobody is starved.
 *
 * Lease (GL_STORE_LEASE, the daemon): the process keeps the lock across
 * units of work for up to LEASE_MS, so a busy daemon pays the lock's
 * system calls once per lease instead of once per request. It gives the
 * lock back at the first end() after LEASE_MS, or, when idle, from a small
 * releaser thread: another process waits at most about LEASE_MS (plus the
 * unit in progress) for its turn.
 *
 * Bounded waits (lock_timeout(), the daemon): the daemon runs its units of
 * work inline on network threads, so it never waits for the lock without a
 * bound. begin() polls F_SETLK (short sleeps, 0.2 ms doubling to 2 ms) for
 * at most lock_ms, the thread mutex included, then fails: the core answers
 * on_error. The first such failure logs who holds the lock (its pid) and
 * starts an outage: until the lock is had again begin() waits only
 * BUSY_WAIT_MS, so a storm of requests does not queue up behind a stuck
 * process; the end of the outage is logged with the count of failures.
 * Without lock_timeout() (the admin command) begin() waits as long as it
 * takes, with F_SETLKW. compact() holds the store for the whole
 * gdbm_reorganize; meanwhile bounded begin()s fail at once instead of
 * waiting behind it (logged with the duration and the count afterwards).
 *
 * GDBM caches the header and buckets of an open file, so a process must
 * not keep using its handle after another process wrote the file. The lock
 * file holds a 64-bit generation number: whoever writes bumps it before
 * its first write under each hold of the lock (so a writer killed halfway
 * still leaves the new number); taking the lock reads the number and
 * reopens the database when it is not the one this process saw last. A
 * lone daemon therefore never reopens; processes that share the file
 * reopen only after someone else wrote.
 *
 * GDBM writes each update to the file (page cache) before returning, so a
 * killed process loses nothing; sync() makes it durable (fsync) without
 * holding the lock. A crash of the machine loses at most the writes since
 * the last sync: triplets that will simply be greylisted once more.
 *
 * A file whose content is not a database, or that reports corruption, is
 * renamed to PATH.corrupt.TIMESTAMP and a fresh one is created, logged at
 * PD_LOG_ERR. A file that cannot be opened or read (EACCES: it belongs to
 * another user; EIO) is never moved aside: that is an error, logged with
 * its cause, and the file stays as it is (at start the plugin does not
 * start; later the request fails and the next one tries again). Write
 * errors (full disk) fail the request only.
 */
#include "gl.h"

#include <errno.h>
#include <fcntl.h>
#include <gdbm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_ERR_ 3
#define LOG_WARN_ 4
#define LOG_NOTICE_ 5
#define LOG_INFO_ 6
#define LEASE_MS 5 /* longest hold of the inter-process lock across units of work */
#define BUSY_WAIT_MS 20 /* longest lock wait during an outage (another process held it too long) */

/* State shared by every opener of one path in this process. */
typedef struct gl_shared {
	struct gl_shared *next;
	char *path;
	char *lockpath;
	int refs;
	int flags;
	pthread_mutex_t mu;
	GDBM_FILE db;
	int lockfd;
	uint64_t gen;  /* generation this process saw last */
	int dirty;     /* the file was (re)created: others must reopen */
	int broken;    /* reopen at the next begin() */
	int held;      /* this process holds the inter-process lock */
	int bumped;    /* the generation was bumped during this hold */
	int lease;     /* keep the lock across units of work (GL_STORE_LEASE) */
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
} gl_shared;

/* What open() hands out: the shared handle, this opener's logger and lock wait. */
struct gl_store {
	gl_shared *sh;
	gl_logger log;
	long lock_ms; /* longest wait in begin() (mutex and lock together); -1: no bound */
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static gl_shared *registry;

#define SLOG(s, lvl, ...) ((s)->log.fn((s)->log.ctx, (lvl), __VA_ARGS__))

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
static int err_due(gl_store *s)
{
	gl_shared *sh = s->sh;
	time_t now = time(NULL);

	if (sh->err_at && now - sh->err_at < 60 && now >= sh->err_at) {
		sh->err_quiet++;
		return 0;
	}
	if (sh->err_quiet)
		SLOG(s, LOG_ERR_, "database %s: %ld more errors in the last minute", sh->path, sh->err_quiet);
	sh->err_at = now;
	sh->err_quiet = 0;
	return 1;
}

/* read_gen - the generation number in the lock file (0 when empty) */
static uint64_t read_gen(gl_shared *sh)
{
	unsigned char b[8];
	uint64_t g = 0;

	if (pread(sh->lockfd, b, 8, 0) != 8)
		return 0;
	for (int i = 7; i >= 0; i--)
		g = (g << 8) | b[i];
	return g;
}

/* write_gen - store a new generation number in the lock file */
static int write_gen(gl_shared *sh, uint64_t g)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++, g >>= 8)
		b[i] = (unsigned char)g;
	return pwrite(sh->lockfd, b, 8, 0) == 8 ? 0 : -1;
}

/* now_ms - monotonic milliseconds */
static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
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
static int lock_byte(gl_shared *sh, short type, off_t byte, uint64_t deadline)
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
static long lock_holder(gl_shared *sh)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};

	if (fcntl(sh->lockfd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK)
		return 0;
	return (long)fl.l_pid;
}

/* lock_take - the inter-process lock, through the turnstile, by DEADLINE (0: no bound); 0 or -1 */
static int lock_take(gl_shared *sh, uint64_t deadline)
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
static void lock_drop(gl_shared *sh)
{
	lock_byte(sh, F_UNLCK, 0, 0);
	sh->held = 0;
}

/* lock_busy - a bounded wait failed: start an outage (logged once, with the holder) or count it */
static void lock_busy(gl_store *s, long waited_ms)
{
	gl_shared *sh = s->sh;
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
		SLOG(s, LOG_ERR_, "database %s: another process (held by pid %ld) has kept %s for more "
		     "than %ld ms: requests get on_error until it is free", sh->path, pid, sh->lockpath,
		     waited_ms);
	else
		SLOG(s, LOG_ERR_, "database %s: other processes have kept %s for more than %ld ms: "
		     "requests get on_error until it is free", sh->path, sh->lockpath, waited_ms);
}

/* lock_free_again - the lock was had again after an outage: log its end */
static void lock_free_again(gl_store *s)
{
	gl_shared *sh = s->sh;

	SLOG(s, LOG_NOTICE_, "database %s: %s free again after %.1f s (%ld requests failed meanwhile)",
	     sh->path, sh->lockpath, (double)(now_ms() - sh->busy_since) / 1000.0, sh->busy_failed);
	sh->busy = 0;
	sh->busy_failed = 0;
}

/* mutex_until - the thread mutex by DEADLINE (monotonic ms; 0: no bound); 0 or -1 */
static int mutex_until(gl_shared *sh, uint64_t deadline)
{
	struct timespec ts;
	uint64_t now = now_ms(), left;
	int r;

	if (!deadline) {
		pthread_mutex_lock(&sh->mu);
		return 0;
	}
	if (pthread_mutex_trylock(&sh->mu) == 0)
		return 0;
	/* pthread_mutex_timedlock takes CLOCK_REALTIME: convert the time left */
	left = deadline > now ? deadline - now : 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(left / 1000u);
	ts.tv_nsec += (long)(left % 1000u) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while ((r = pthread_mutex_timedlock(&sh->mu, &ts)) == EINTR)
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
static void note_write(gl_store *s)
{
	gl_shared *sh = s->sh;

	if (sh->bumped)
		return;
	if (write_gen(sh, sh->gen + 1) == 0)
		sh->gen++;
	else
		SLOG(s, LOG_WARN_, "cannot write %s: %s", sh->lockpath, strerror(errno));
	sh->bumped = 1;
}

/* releaser_main - give a leased lock back once it is LEASE_MS old and nobody is using it */
static void *releaser_main(void *arg)
{
	gl_shared *sh = arg;

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
		ts.tv_sec = (time_t)(due / 1000u);
		ts.tv_nsec = (long)(due % 1000u) * 1000000L;
		pthread_cond_timedwait(&sh->cond, &sh->mu, &ts);
	}
	pthread_mutex_unlock(&sh->mu);
	return NULL;
}

/* move_aside - rename a bad database to PATH.corrupt.TIMESTAMP; 0 or -1 */
static int move_aside(gl_store *s, const char *why)
{
	gl_shared *sh = s->sh;
	char dst[4096];
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
		SLOG(s, LOG_ERR_, "database %s is unusable (%s) and cannot be moved aside: %s",
		     sh->path, why, strerror(errno));
		return -1;
	}
	SLOG(s, LOG_ERR_, "database %s is unusable (%s): moved aside to %s, starting a fresh one; "
	     "greylisting starts over", sh->path, why, dst);
	return 0;
}

/* denied - is ERR a permission error (the file or state_dir belongs to someone else)? */
static int denied(int err)
{
	return err == EACCES || err == EPERM;
}

/* db_open - open (or create) the GDBM file; move a corrupt one aside. Inter-process lock held. */
static int db_open(gl_store *s)
{
	gl_shared *sh = s->sh;
	int create = !(sh->flags & GL_STORE_NOCREATE);
	int mode = create ? GDBM_WRCREAT : GDBM_WRITER;
	int e, err;

	if (sh->db) {
		gdbm_close(sh->db);
		sh->db = NULL;
	}
	sh->db = gdbm_open(sh->path, 0, mode | GDBM_NOLOCK | GDBM_CLOEXEC, 0600, NULL);
	if (sh->db)
		return 0;
	e = gdbm_errno;
	err = errno;
	/* only bad content is moved aside: a file that cannot be opened (a permission
	 * problem, EACCES after a restore as root) or read is an error and stays as it is */
	if (!create || !is_corruption(e)) {
		if (!err_due(s))
			return -1;
		if (gdbm_check_syserr(e) && denied(err))
			SLOG(s, LOG_ERR_, "cannot open database %s: %s (running as uid %ld: check the "
			     "owner and mode of the file and of state_dir; the file is left as it is)",
			     sh->path, strerror(err), (long)geteuid());
		else
			SLOG(s, LOG_ERR_, "cannot open database %s: %s%s%s", sh->path, gdbm_strerror(e),
			     gdbm_check_syserr(e) ? ": " : "", gdbm_check_syserr(e) ? strerror(err) : "");
		return -1;
	}
	if (move_aside(s, gdbm_strerror(e)) != 0)
		return -1;
	sh->db = gdbm_open(sh->path, 0, GDBM_NEWDB | GDBM_NOLOCK | GDBM_CLOEXEC, 0600, NULL);
	if (!sh->db) {
		SLOG(s, LOG_ERR_, "cannot create database %s: %s", sh->path, gdbm_strerror(gdbm_errno));
		return -1;
	}
	sh->dirty = 1; /* others must reopen */
	return 0;
}

/* op_error - handle a failed GDBM operation: corruption moves the file aside now */
static void op_error(gl_store *s, const char *what)
{
	gl_shared *sh = s->sh;
	int e = gdbm_last_errno(sh->db);
	int err = gdbm_last_syserr(sh->db);

	if (is_corruption(e) && !(sh->flags & GL_STORE_NOCREATE)) {
		if (move_aside(s, gdbm_strerror(e)) == 0 &&
		    (sh->db = gdbm_open(sh->path, 0, GDBM_NEWDB | GDBM_NOLOCK | GDBM_CLOEXEC, 0600,
					NULL)) != NULL) {
			sh->dirty = 1;
			return;
		}
		sh->broken = 1;
		return;
	}
	if (err_due(s))
		SLOG(s, LOG_ERR_, "database %s: %s: %s%s%s", sh->path, what, gdbm_strerror(e),
		     err ? ": " : "", err ? strerror(err) : "");
	sh->broken = 1; /* the handle may hold half-written state: reopen next time */
}

/* st_open - share the handle of PATH or open it */
static gl_store *st_open(const char *path, int flags, const gl_logger *log)
{
	gl_store *s = calloc(1, sizeof(*s));
	gl_shared *sh;

	if (!s) {
		log->fn(log->ctx, LOG_ERR_, "out of memory");
		return NULL;
	}
	s->log = *log;
	s->lock_ms = -1; /* until lock_timeout(): wait as long as it takes */
	pthread_mutex_lock(&registry_mu);
	for (sh = registry; sh; sh = sh->next)
		if (strcmp(sh->path, path) == 0 && sh->flags == flags)
			break;
	if (sh) {
		sh->refs++;
		s->sh = sh;
		pthread_mutex_unlock(&registry_mu);
		return s;
	}
	sh = calloc(1, sizeof(*sh));
	if (!sh || !(sh->path = strdup(path)) || !(sh->lockpath = malloc(strlen(path) + 6))) {
		log->fn(log->ctx, LOG_ERR_, "out of memory");
		goto fail;
	}
	sprintf(sh->lockpath, "%s.lock", path);
	sh->flags = flags;
	sh->refs = 1;
	{
		pthread_mutexattr_t ma; /* units are short: spin a little before sleeping */

		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
		pthread_mutex_init(&sh->mu, &ma);
		pthread_mutexattr_destroy(&ma);
	}
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&sh->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	s->sh = sh;
	sh->lockfd = open(sh->lockpath, O_RDWR | O_CLOEXEC | (flags & GL_STORE_NOCREATE ? 0 : O_CREAT),
			  0600);
	if (sh->lockfd < 0) {
		int err = errno;

		log->fn(log->ctx, LOG_ERR_, "cannot open %s: %s%s", sh->lockpath, strerror(err),
			denied(err) ? " (check the owner and mode of the file and of state_dir)" : "");
		goto fail;
	}
	if (lock_take(sh, 0) != 0) { /* at start: no request waits yet */
		log->fn(log->ctx, LOG_ERR_, "cannot lock %s: %s", sh->lockpath, strerror(errno));
		close(sh->lockfd);
		goto fail;
	}
	sh->gen = read_gen(sh);
	if (db_open(s) != 0) {
		lock_drop(sh);
		close(sh->lockfd);
		goto fail;
	}
	if (sh->dirty)
		note_write(s);
	sh->dirty = 0;
	lock_drop(sh);
	if ((flags & GL_STORE_LEASE) && pthread_create(&sh->releaser, NULL, releaser_main, sh) == 0)
		sh->lease = 1; /* else: a lock per unit of work, as without the flag */
	sh->next = registry;
	registry = sh;
	pthread_mutex_unlock(&registry_mu);
	return s;
fail:
	pthread_mutex_unlock(&registry_mu);
	if (sh) {
		free(sh->path);
		free(sh->lockpath);
		free(sh);
	}
	free(s);
	return NULL;
}

/* st_begin - lock (threads, then processes) within lock_ms and reopen if another process wrote */
static int st_begin(gl_store *s)
{
	gl_shared *sh = s->sh;
	uint64_t g, deadline = 0, start = 0;

	if (s->lock_ms >= 0) {
		if (__atomic_load_n(&sh->compacting, __ATOMIC_ACQUIRE)) {
			__atomic_add_fetch(&sh->compact_failed, 1, __ATOMIC_RELAXED);
			return -1; /* never wait behind a reorganisation */
		}
		start = now_ms();
		deadline = start + (uint64_t)s->lock_ms;
	}
	if (mutex_until(sh, deadline) != 0) {
		if (minute_due(&sh->mu_warn_at))
			SLOG(s, LOG_WARN_, "database %s: busy in this process for more than %ld ms: "
			     "the request gets on_error", sh->path, s->lock_ms);
		return -1;
	}
	sh->dirty = 0;
	if (!sh->held) {
		uint64_t until = deadline;

		if (deadline && sh->busy && until > now_ms() + BUSY_WAIT_MS)
			until = now_ms() + BUSY_WAIT_MS; /* an outage: do not queue up behind it */
		if (lock_take(sh, until) != 0) {
			if (errno == ETIMEDOUT)
				lock_busy(s, (long)(now_ms() - start));
			else if (err_due(s))
				SLOG(s, LOG_ERR_, "cannot lock %s: %s", sh->lockpath, strerror(errno));
			pthread_mutex_unlock(&sh->mu);
			return -1;
		}
		if (sh->busy)
			lock_free_again(s);
		g = read_gen(sh);
		if (g != sh->gen) {
			sh->gen = g;
			sh->broken = 1; /* someone else wrote: reopen */
		}
	}
	if (!sh->db || sh->broken) {
		if (db_open(s) != 0) {
			sh->broken = 1;
			lock_drop(sh);
			pthread_mutex_unlock(&sh->mu);
			return -1;
		}
		sh->broken = 0;
	}
	return 0;
}

/* st_end - publish writes (new generation) and unlock */
static void st_end(gl_store *s)
{
	gl_shared *sh = s->sh;

	if (sh->dirty)
		note_write(s);
	sh->dirty = 0;
	if (!sh->lease || sh->broken || now_ms() - sh->held_since >= LEASE_MS)
		lock_drop(sh);
	pthread_mutex_unlock(&sh->mu);
}

/* st_get - fetch and decode one record */
static int st_get(gl_store *s, const unsigned char *key, size_t klen, gl_rec *rec)
{
	gl_shared *sh = s->sh;
	datum k = {.dptr = (char *)key, .dsize = (int)klen}, d;
	int r;

	if (!sh->db)
		return -1;
	d = gdbm_fetch(sh->db, k);
	if (!d.dptr) {
		if (gdbm_last_errno(sh->db) == GDBM_ITEM_NOT_FOUND)
			return 0;
		op_error(s, "fetch");
		return -1;
	}
	r = gl_rec_decode(d.dptr, (size_t)d.dsize, rec);
	free(d.dptr);
	if (r != 0) {
		SLOG(s, LOG_WARN_, "database %s: ignoring a malformed record", sh->path);
		return 0;
	}
	return 1;
}

/* st_put - encode and store one record */
static int st_put(gl_store *s, const unsigned char *key, size_t klen, const gl_rec *rec)
{
	gl_shared *sh = s->sh;
	unsigned char buf[GL_REC_SIZE];
	datum k = {.dptr = (char *)key, .dsize = (int)klen};
	datum d = {.dptr = (char *)buf, .dsize = GL_REC_SIZE};

	if (!sh->db)
		return -1;
	gl_rec_encode(rec, buf);
	note_write(s);
	if (gdbm_store(sh->db, k, d, GDBM_REPLACE) != 0) {
		op_error(s, "store");
		return -1;
	}
	return 0;
}

/* st_del - delete one record; absent is fine */
static int st_del(gl_store *s, const unsigned char *key, size_t klen)
{
	gl_shared *sh = s->sh;
	datum k = {.dptr = (char *)key, .dsize = (int)klen};

	if (!sh->db)
		return -1;
	note_write(s);
	if (gdbm_delete(sh->db, k) != 0) {
		if (gdbm_last_errno(sh->db) == GDBM_ITEM_NOT_FOUND)
			return 0;
		op_error(s, "delete");
		return -1;
	}
	return 0;
}

/* One record copied out of the database by st_iterate. */
typedef struct it_item {
	datum key, val;
	int del;
} it_item;

/* st_iterate - visit all records, BATCH at a time; FN runs with no lock held */
static long st_iterate(gl_store *s, size_t batch, gl_iter_fn *fn, void *arg, long *deleted)
{
	gl_shared *sh = s->sh;
	it_item *items;
	datum next = {0};
	long visited = 0, ndel = 0;
	int first = 1, stop = 0, failed = 0;

	if (batch == 0)
		batch = 1;
	items = calloc(batch, sizeof(*items));
	if (!items)
		return -1;
	/* Each step copies up to BATCH records and the key after them under the
	 * lock, then calls FN on the copies without the lock (a slow consumer,
	 * such as "policyd-greylist list | less", never stalls the daemon).
	 * Deletions are applied under the lock, only to records that did not
	 * change meanwhile. Writes by others between steps may make a pass skip
	 * records; the next pass gets them. */
	while (!stop) {
		size_t n = 0;
		int any_del = 0;

		if (st_begin(s) != 0) {
			failed = 1;
			break;
		}
		if (first) {
			next = gdbm_firstkey(sh->db);
			first = 0;
		}
		while (next.dptr && n < batch) {
			datum v = gdbm_fetch(sh->db, next);

			if (!v.dptr) { /* deleted by someone else since the last step */
				free(next.dptr);
				next.dptr = NULL;
				break;
			}
			items[n].key = next;
			items[n].val = v;
			items[n].del = 0;
			n++;
			next = gdbm_nextkey(sh->db, next);
		}
		st_end(s);
		if (!next.dptr)
			stop = 1;
		for (size_t i = 0; i < n && !failed; i++) {
			gl_rec rec;
			int r = 1; /* malformed records are dropped ... */

			if (stop == 2) /* FN asked to stop */
				break;
			if (gl_rec_decode(items[i].val.dptr, (size_t)items[i].val.dsize, &rec) == 0)
				r = fn(arg, (unsigned char *)items[i].key.dptr, (size_t)items[i].key.dsize, &rec);
			else if (items[i].val.dsize >= GL_REC_SIZE &&
				 (unsigned char)items[i].val.dptr[0] > GL_REC_VERSION &&
				 (unsigned char)items[i].val.dptr[0] < 16)
				r = 0; /* ... but a newer version's records are kept (downgrade) */
			visited++;
			if (r < 0)
				stop = 2;
			else if (r == 1)
				items[i].del = any_del = 1;
		}
		if (any_del && st_begin(s) == 0) {
			for (size_t i = 0; i < n; i++) {
				datum cur;

				if (!items[i].del)
					continue;
				cur = gdbm_fetch(sh->db, items[i].key);
				if (cur.dptr && cur.dsize == items[i].val.dsize &&
				    memcmp(cur.dptr, items[i].val.dptr, (size_t)cur.dsize) == 0) {
					note_write(s);
					if (gdbm_delete(sh->db, items[i].key) == 0)
						ndel++;
				}
				free(cur.dptr);
			}
			st_end(s);
		} else if (any_del) {
			failed = 1;
			stop = 1;
		}
		for (size_t i = 0; i < n; i++) {
			free(items[i].key.dptr);
			free(items[i].val.dptr);
		}
	}
	free(next.dptr);
	free(items);
	if (deleted)
		*deleted = ndel;
	return failed ? -1 : visited;
}

/* st_sync - fsync the database file without holding the lock across the flush */
static int st_sync(gl_store *s)
{
	gl_shared *sh = s->sh;
	int fd = -1, r = 0;

	pthread_mutex_lock(&sh->mu);
	if (sh->db)
		fd = dup(gdbm_fdesc(sh->db));
	pthread_mutex_unlock(&sh->mu);
	if (fd < 0)
		return 0;
	if (fsync(fd) != 0) {
		SLOG(s, LOG_ERR_, "database %s: fsync: %s", sh->path, strerror(errno));
		r = -1;
	}
	close(fd);
	return r;
}

/* Tests: called while compact() holds the store (NULL otherwise). */
void (*gl_gdbm_compact_hook)(void);

/* st_compact - gdbm_reorganize: give freed space back. It holds the store while it runs;
 * bounded begin()s (the daemon's requests) fail at once meanwhile instead of waiting. */
static int st_compact(gl_store *s)
{
	gl_shared *sh = s->sh;
	uint64_t t0;
	long failed;
	int r;

	if (st_begin(s) != 0)
		return -1;
	__atomic_store_n(&sh->compact_failed, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&sh->compacting, 1, __ATOMIC_RELEASE);
	t0 = now_ms();
	note_write(s); /* the file is replaced: others reopen */
	if (gl_gdbm_compact_hook)
		gl_gdbm_compact_hook();
	r = gdbm_reorganize(sh->db);
	__atomic_store_n(&sh->compacting, 0, __ATOMIC_RELEASE);
	failed = __atomic_exchange_n(&sh->compact_failed, 0, __ATOMIC_RELAXED);
	if (r != 0)
		op_error(s, "reorganize");
	else
		SLOG(s, LOG_INFO_, "database %s reorganised in %.1f s (%ld requests got on_error "
		     "meanwhile rather than wait)", sh->path, (double)(now_ms() - t0) / 1000.0, failed);
	st_end(s);
	return r == 0 ? 0 : -1;
}

/* st_lock_timeout - bound every later begin() of this opener to MS milliseconds (-1: no bound) */
static void st_lock_timeout(gl_store *s, long ms)
{
	s->lock_ms = ms;
}

/* st_close - drop a reference; the last one closes (GDBM syncs on close) */
static void st_close(gl_store *s)
{
	gl_shared *sh;

	if (!s)
		return;
	sh = s->sh;
	pthread_mutex_lock(&registry_mu);
	if (--sh->refs == 0) {
		for (gl_shared **pp = &registry; *pp; pp = &(*pp)->next)
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
			    lock_take(sh, s->lock_ms >= 0 ? now_ms() + (uint64_t)s->lock_ms : 0) == 0) {
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
	free(s);
}

const gl_store_ops gl_store_gdbm = {
	.name = "gdbm",
	.open = st_open,
	.begin = st_begin,
	.end = st_end,
	.get = st_get,
	.put = st_put,
	.del = st_del,
	.iterate = st_iterate,
	.sync = st_sync,
	.compact = st_compact,
	.close = st_close,
	.lock_timeout = st_lock_timeout,
};
