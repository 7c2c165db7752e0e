/* test_store.c - the state service: one table of operations on GDBM and a private Redis, concurrency, failures, cost per key */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The table runs against GDBM always and against a real redis-server when
 * one is installed (a private one on a free loopback port, no persistence,
 * its own directory, stopped by its PID); both must give the answers the
 * table expects, so they give identical answers, and their listings
 * (pd_store_scan) must be identical too. Every time is the table's fake
 * clock; the only real-time checks are generous bounds that catch a hang.
 *
 *   test_store              the whole suite (make check)
 *   test_store --cost N [KINDS]  bytes per key on each backend for N keys of each kind
 *                                (KINDS: letters of c C v m M, see fill())
 */
#include "store.h"

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gdbm.h>
#include <glob.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#ifdef HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif

#include "tap.h"

#define T0 1700000000LL /* the table's clock starts here (a multiple of 10: bucket edges) */

static char tmpdir[] = "/tmp/pdstore.XXXXXX";
static volatile pid_t started[16]; /* servers and lock holders running, for the watchdog */
static char *self_path;
static int verbose;

/* ---- a logger that keeps what it was told ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char *log_buf;
static size_t log_len, log_cap;

/* test_log - the stores' logger: keep the line (and print it with -v) */
static void test_log(void *ctx, int level, const char *fmt, ...) PD_STORE_PRINTF(3, 4);
static void test_log(void *ctx, int level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (verbose)
		fprintf(stderr, "log %d: %s\n", level, line);
	n = strlen(line);
	pthread_mutex_lock(&log_mu);
	if (log_len + n + 2 > log_cap) {
		size_t cap = (log_len + n + 2) * 2;
		char *b = realloc(log_buf, cap);

		if (!b)
			abort();
		log_buf = b;
		log_cap = cap;
	}
	memcpy(log_buf + log_len, line, n);
	log_len += n;
	log_buf[log_len++] = '\n';
	log_buf[log_len] = 0;
	pthread_mutex_unlock(&log_mu);
}

/* log_clear - forget what was logged */
static void log_clear(void)
{
	pthread_mutex_lock(&log_mu);
	log_len = 0;
	if (log_buf)
		log_buf[0] = 0;
	pthread_mutex_unlock(&log_mu);
}

/* log_count - how many logged lines contain NEEDLE */
static int log_count(const char *needle)
{
	int n = 0;

	pthread_mutex_lock(&log_mu);
	for (const char *p = log_buf ? log_buf : ""; (p = strstr(p, needle)) != NULL; p++)
		n++;
	pthread_mutex_unlock(&log_mu);
	return n;
}

/* mono_ms - monotonic milliseconds */
static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* rm_tree - remove DIR with its files and subdirectories (the test's temp dir only) */
static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[1024];

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* count_corrupt - files named NAME.corrupt.* in DIR */
static int count_corrupt(const char *dir, const char *name)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char pre[300];
	int n = 0;

	snprintf(pre, sizeof(pre), "%s.corrupt.", name);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, pre, strlen(pre));
	closedir(d);
	return n;
}

/* ---- backends under test ---- */

/* One backend: how to open a fresh store on it. */
typedef struct backend {
	const char *name;
	int redis;
	char path[600]; /* gdbm */
	int port;       /* redis */
} backend;

static int gdbm_files;

/* gdbm_fresh - a new database path under the temp dir */
static void gdbm_fresh(backend *b)
{
	snprintf(b->path, sizeof(b->path), "%s/db%d/state.db", tmpdir, ++gdbm_files);
	*strrchr(b->path, '/') = 0;
	if (mkdir(b->path, 0755) != 0)
		abort();
	strcat(b->path, "/state.db");
}

/* conf_of - a configuration for B: GDBM with a 1 s lock wait, Redis with 1 s timeouts */
static pd_store_conf conf_of(const backend *b)
{
	static char server[64];
	pd_store_conf c = {.log = test_log};

	if (b->redis) {
		snprintf(server, sizeof(server), "127.0.0.1:%d", b->port);
		c.backend = "redis";
		c.server = server;
		c.prefix = "t:";
		c.timeout_ms = 1000;
		c.connect_timeout_ms = 1000;
	} else {
		c.backend = "gdbm";
		c.path = b->path;
		c.lock_timeout_ms = 1000;
	}
	return c;
}

/* open_b - open B (CHECKed); NULL on failure */
static pd_store *open_b(const backend *b)
{
	pd_store_conf c = conf_of(b);
	char err[512];
	pd_store *s = pd_store_open(&c, err, sizeof(err));

	if (!s)
		printf("cannot open %s: %s\n", b->name, err);
	CHECK(s != NULL);
	return s;
}

/* ---- a private redis-server ---- */

#ifdef HAVE_HIREDIS
static const char *redis_bin;

/* find_redis - redis-server on PATH, or NULL */
static const char *find_redis(void)
{
	static char p[1024];
	const char *path = getenv("PATH");

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");

		snprintf(p, sizeof(p), "%.*s/redis-server", (int)n, path);
		if (n && access(p, X_OK) == 0)
			return p;
		path += n + (path[n] == ':');
	}
	return NULL;
}

/* free_port - a loopback TCP port nobody listens on now */
static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* redis_cmd - one command on a fresh connection to the private server; the reply or NULL */
static redisReply *redis_cmd(int port, const char *fmt, ...)
{
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	redisReply *r = NULL;
	va_list ap;

	if (!c || c->err) {
		if (c)
			redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	redisFree(c);
	return r;
}

/* redis_int - an integer field ("used_memory") of INFO, or -1 */
static long long redis_info(int port, const char *field)
{
	redisReply *r = redis_cmd(port, "INFO memory");
	long long v = -1;
	char *p;

	if (r && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, field)) && p[strlen(field)] == ':')
		v = strtoll(p + strlen(field) + 1, NULL, 10);
	if (r)
		freeReplyObject(r);
	return v;
}

/* A private redis-server (or sentinel) started by the test, stopped by its PID. */
typedef struct rsrv {
	pid_t pid;
	int port;
	char dir[700];
} rsrv;

static rsrv srv; /* the one the table and most tests use */
static int n_dirs;

/* rs_exec - start redis-server with ARGV (NULL-terminated, after the program name) for R, in a
 * new directory of its own, and wait until it answers PING; 0 or -1 */
static int rs_exec(rsrv *r, const char *const *argv)
{
	const char *av[40];
	long long deadline = mono_ms() + 20000;
	int n = 0;

	av[n++] = redis_bin;
	while (*argv && n < 38)
		av[n++] = *argv++;
	av[n] = NULL;
	fflush(NULL);
	r->pid = fork();
	if (r->pid < 0)
		return -1;
	if (r->pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(redis_bin, (char *const *)av);
		_exit(127);
	}
	for (int i = 0; i < 15; i++)
		if (!started[i]) {
			started[i] = r->pid;
			break;
		}
	while (mono_ms() < deadline) {
		redisReply *rep = redis_cmd(r->port, "PING");
		int status;

		if (rep) {
			int ok = rep->type == REDIS_REPLY_STATUS && !strcmp(rep->str, "PONG");

			freeReplyObject(rep);
			if (ok)
				return 0;
		}
		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			r->pid = 0;
			return -1;
		}
		usleep(20000);
	}
	return -1;
}

/* rs_dir - a new directory for a server under the test's temp dir, into R */
static void rs_dir(rsrv *r)
{
	if (!r->dir[0]) {
		snprintf(r->dir, sizeof(r->dir), "%s/redis%d", tmpdir, ++n_dirs);
		mkdir(r->dir, 0700);
	}
}

/* rs_start - redis-server on R->port (a free one if 0): 127.0.0.1, no persistence, its own
 * directory, EXTRA arguments (NULL-terminated, or NULL); 0 or -1 */
static int rs_start(rsrv *r, const char *const *extra)
{
	char ps[16], logf[800];
	const char *av[40] = {"--port", ps, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			      "--dir", r->dir, "--daemonize", "no", "--logfile", logf};
	int n = 14;

	if (!r->port)
		r->port = free_port();
	rs_dir(r);
	snprintf(ps, sizeof(ps), "%d", r->port);
	snprintf(logf, sizeof(logf), "%s/redis.log", r->dir);
	while (extra && *extra && n < 38)
		av[n++] = *extra++;
	av[n] = NULL;
	return rs_exec(r, av);
}

/* rs_stop - SIGTERM the server R (by its PID) and wait for it */
static void rs_stop(rsrv *r)
{
	if (r->pid > 0) {
		kill(r->pid, SIGCONT);
		kill(r->pid, SIGTERM);
		waitpid(r->pid, NULL, 0);
		for (int i = 0; i < 16; i++)
			if (started[i] == r->pid)
				started[i] = 0;
	}
	r->pid = 0;
}
#endif

/* ---- the table ---- */

enum { CLOCK, COUNT, SET, GET, DEL, MEM, UPD, DELETE };
enum { U_INCR, U_KEEP, U_DEL, U_TTL, U_BAD, U_BIG, U_TTL0 };

/* One operation and what it must answer. */
typedef struct step {
	int op;
	const char *ns, *key;
	long long a;     /* CLOCK: seconds after T0; COUNT: amount; SET, MEM: TTL; UPD: U_*;
			  * DELETE: the kind */
	unsigned w;      /* COUNT: window */
	const char *val; /* SET: the value; MEM: the member (NULL: count only) */
	size_t vlen;     /* SET: its length when not strlen(val) */
	const char *want; /* "RET [total|count|result|value ttl]" */
	const char *what;
} step;

static char key512[513], key513[514], ns65[66], member256[257], big_value[PD_STORE_VALUE_MAX + 1];

/* upd_fn - the update functions of the table (ARG: the U_* number) */
static int upd_fn(void *arg, const void *old, size_t oldlen, void *new, size_t *newlen, unsigned *ttl)
{
	int kind = *(const int *)arg;
	long long n = 0;

	switch (kind) {
	case U_INCR: /* a decimal counter in the record */
		for (size_t i = 0; i < oldlen; i++)
			n = n * 10 + (((const char *)old)[i] - '0');
		*newlen = (size_t)snprintf(new, PD_STORE_UPDATE_MAX, "%lld", n + 1);
		*ttl = 100;
		return PD_STORE_UPD_WRITE;
	case U_KEEP:
		return PD_STORE_UPD_KEEP;
	case U_DEL:
		return PD_STORE_UPD_DELETE;
	case U_TTL: /* the seconds the old record had left */
		*newlen = (size_t)snprintf(new, PD_STORE_UPDATE_MAX, "%u", *ttl);
		*ttl = 100;
		return PD_STORE_UPD_WRITE;
	case U_BAD:
		return 7;
	case U_BIG:
		memset(new, 'x', PD_STORE_UPDATE_MAX);
		*newlen = PD_STORE_UPDATE_MAX + 44;
		return PD_STORE_UPD_WRITE;
	default: /* U_TTL0 */
		*newlen = 1;
		memcpy(new, "z", 1);
		*ttl = 0;
		return PD_STORE_UPD_WRITE;
	}
}

static const step table[] = {
	/* counter, window 160 s: 16 buckets of 10 s */
	{CLOCK, .a = 0},
	{COUNT, "a", "rate", 1, 160, .want = "0 1", .what = "first count"},
	{CLOCK, .a = 5},
	{COUNT, "a", "rate", 2, 160, .want = "0 3", .what = "second count, same bucket"},
	{COUNT, "a", "rate", 0, 160, .want = "0 3", .what = "amount 0 only reads"},
	{CLOCK, .a = 159},
	{COUNT, "a", "rate", 0, 160, .want = "0 3", .what = "159 s later: in the window"},
	{CLOCK, .a = 160},
	{COUNT, "a", "rate", 0, 160, .want = "0 3", .what = "at T + window: still counted (never early)"},
	{CLOCK, .a = 169},
	{COUNT, "a", "rate", 0, 160, .want = "0 3", .what = "less than one bucket past the window"},
	{CLOCK, .a = 170},
	{COUNT, "a", "rate", 0, 160, .want = "0 0", .what = "window + one bucket: gone"},
	{COUNT, "a", "rate", 4, 160, .want = "0 4", .what = "counts again from zero"},
	{COUNT, "a", "rate", 1, 60, .want = "0 1", .what = "another window starts over"},
	{COUNT, "a", "rate", 0, 160, .want = "0 0", .what = "... and the first window is gone"},
	/* the edge: the limit (10) reached at the end of a bucket, no second 10 in 160 s */
	{CLOCK, .a = 1009},
	{COUNT, "a", "burst", 10, 160, .want = "0 10", .what = "10 at the end of a bucket"},
	{CLOCK, .a = 1010},
	{COUNT, "a", "burst", 0, 160, .want = "0 10", .what = "next bucket (a fixed window resets here)"},
	{CLOCK, .a = 1169},
	{COUNT, "a", "burst", 0, 160, .want = "0 10", .what = "160 s later: still 10, an 11th is refused"},
	{CLOCK, .a = 1170},
	{COUNT, "a", "burst", 0, 160, .want = "0 0", .what = "161 s later: the window is free"},
	/* events in several buckets leave one by one */
	{CLOCK, .a = 2000},
	{COUNT, "a", "spread", 1, 160, .want = "0 1", .what = "spread 1"},
	{CLOCK, .a = 2050},
	{COUNT, "a", "spread", 1, 160, .want = "0 2", .what = "spread 2"},
	{CLOCK, .a = 2100},
	{COUNT, "a", "spread", 1, 160, .want = "0 3", .what = "spread 3"},
	{CLOCK, .a = 2165},
	{COUNT, "a", "spread", 0, 160, .want = "0 3", .what = "the first 165 s old, in its last bucket"},
	{CLOCK, .a = 2170},
	{COUNT, "a", "spread", 0, 160, .want = "0 2", .what = "the first left"},
	{CLOCK, .a = 2220},
	{COUNT, "a", "spread", 0, 160, .want = "0 1", .what = "the second left"},
	{CLOCK, .a = 2290},
	{COUNT, "a", "spread", 0, 160, .want = "0 0", .what = "all left"},
	{CLOCK, .a = 3000},
	{COUNT, "a", "spread", 1, 160, .want = "0 1", .what = "a write long after: a fresh ring"},
	/* a clock behind the latest bucket (another host, a step back) */
	{COUNT, "a", "back", 5, 160, .want = "0 5", .what = "back 5"},
	{CLOCK, .a = 2990},
	{COUNT, "a", "back", 1, 160, .want = "0 6", .what = "one bucket behind"},
	{CLOCK, .a = 2000},
	{COUNT, "a", "back", 1, 160, .want = "0 7", .what = "far behind: counted in the oldest bucket"},
	{CLOCK, .a = 3169},
	{COUNT, "a", "back", 0, 160, .want = "0 5", .what = "the late ones left with the oldest buckets"},
	{CLOCK, .a = 3170},
	{COUNT, "a", "back", 0, 160, .want = "0 0", .what = "all left"},
	/* 64-bit totals (byte counts) */
	{COUNT, "a", "bytes", 1LL << 40, 86400, .want = "0 1099511627776", .what = "2^40"},
	{COUNT, "a", "bytes", 1LL << 40, 86400, .want = "0 2199023255552", .what = "2^41"},
	{COUNT, "a", "bytes", (1LL << 53) + 1, 86400, .want = "-1", .what = "amount over 2^53"},
	{COUNT, "a", "bytes", -1, 86400, .want = "-1", .what = "negative amount"},
	{COUNT, "a", "bytes", 1, 0, .want = "-1", .what = "window 0"},
	/* values with a TTL */
	{CLOCK, .a = 10000},
	{SET, "a", "k", 100, .val = "hello", .want = "0", .what = "set"},
	{GET, "a", "k", .want = "1 hello 100", .what = "get"},
	{CLOCK, .a = 10099},
	{GET, "a", "k", .want = "1 hello 1", .what = "one second left"},
	{CLOCK, .a = 10100},
	{GET, "a", "k", .want = "0", .what = "expired"},
	{SET, "a", "k", 100, .val = "first", .want = "0", .what = "set again"},
	{SET, "a", "k", 20, .val = "sec:ond", .want = "0", .what = "replace (value and TTL)"},
	{GET, "a", "k", .want = "1 sec:ond 20", .what = "the replacement"},
	{DEL, "a", "k", .want = "0", .what = "del"},
	{GET, "a", "k", .want = "0", .what = "deleted"},
	{DEL, "a", "k", .want = "0", .what = "del of an absent key"},
	{SET, "a", "empty", 10, .val = "", .want = "0", .what = "an empty value"},
	{GET, "a", "empty", .want = "1  10", .what = "is found"},
	{SET, "a", "bin", 10, .val = "a\0b", .vlen = 3, .want = "0", .what = "a NUL in a value"},
	{GET, "a", "bin", .want = "1 a\\x00b 10", .what = "is kept"},
	{SET, "a", "big", 10, .val = big_value, .vlen = PD_STORE_VALUE_MAX, .want = "0", .what = "4096 bytes"},
	{SET, "a", "big", 10, .val = big_value, .vlen = PD_STORE_VALUE_MAX + 1, .want = "-1", .what = "4097 bytes"},
	{SET, "a", "k", 0, .val = "x", .want = "-1", .what = "TTL 0"},
	/* distinct members */
	{CLOCK, .a = 20000},
	{MEM, "a", "helo", 604800, .val = "mx1.example", .want = "0 1", .what = "first member"},
	{MEM, "a", "helo", 604800, .val = "mx1.example", .want = "0 1", .what = "the same again"},
	{MEM, "a", "helo", 604800, .val = "mx2.example", .want = "0 2", .what = "a second one"},
	{MEM, "a", "helo", 0, .val = NULL, .want = "0 2", .what = "count only"},
	{CLOCK, .a = 20000 + 604799},
	{MEM, "a", "helo", 0, .want = "0 2", .what = "one second before they expire"},
	{MEM, "a", "helo", 604800, .val = "mx1.example", .want = "0 2", .what = "refresh the first"},
	{CLOCK, .a = 20000 + 604800},
	{MEM, "a", "helo", 0, .want = "0 1", .what = "the second expired"},
	{MEM, "a", "helo", 10, .val = "mx3.example", .want = "0 2", .what = "a short-lived one"},
	{CLOCK, .a = 20000 + 604810},
	{MEM, "a", "helo", 0, .want = "0 1", .what = "it expired"},
	{CLOCK, .a = 20000 + 604799 + 604800},
	{MEM, "a", "helo", 0, .want = "0 0", .what = "all expired"},
	{MEM, "a", "helo", 10, .val = member256, .want = "-1", .what = "a member of 256 bytes"},
	{MEM, "a", "helo", 10, .val = "", .want = "-1", .what = "an empty member"},
	{MEM, "a", "helo", 0, .val = "x", .want = "-1", .what = "TTL 0"},
	/* records: read-modify-write */
	{CLOCK, .a = 30000},
	{UPD, "a", "rec", U_INCR, .want = "0 1", .what = "update of an absent record: WRITE"},
	{UPD, "a", "rec", U_INCR, .want = "0 1", .what = "again"},
	{GET, "a", "rec", .want = "1 2 100", .what = "two increments"},
	{UPD, "a", "rec", U_KEEP, .want = "0 0", .what = "KEEP"},
	{GET, "a", "rec", .want = "1 2 100", .what = "unchanged"},
	{CLOCK, .a = 30050},
	{UPD, "a", "rec", U_TTL, .want = "0 1", .what = "the function sees the seconds left"},
	{GET, "a", "rec", .want = "1 50 100", .what = "50 s were left"},
	{UPD, "a", "rec", U_DEL, .want = "0 2", .what = "DELETE"},
	{GET, "a", "rec", .want = "0", .what = "deleted"},
	{UPD, "a", "rec", U_DEL, .want = "0 2", .what = "DELETE of an absent record"},
	{UPD, "a", "rec", U_BAD, .want = "-1", .what = "a function returning 7"},
	{UPD, "a", "rec", U_BIG, .want = "-1", .what = "a record over 256 bytes"},
	{UPD, "a", "rec", U_TTL0, .want = "-1", .what = "WRITE with TTL 0"},
	{GET, "a", "rec", .want = "0", .what = "nothing written by the failures"},
	{SET, "a", "rec", 5, .val = "9", .want = "0", .what = "a short-lived record"},
	{CLOCK, .a = 30055},
	{UPD, "a", "rec", U_INCR, .want = "0 1", .what = "an expired record is absent to update"},
	{GET, "a", "rec", .want = "1 1 100", .what = "started from nothing"},
	{SET, "a", "rec2", 100, .val = "41", .want = "0", .what = "a value set() wrote"},
	{UPD, "a", "rec2", U_INCR, .want = "0 1", .what = "is a record for update()"},
	{GET, "a", "rec2", .want = "1 42 100", .what = "41 + 1"},
	/* namespaces and kinds are kept apart */
	{COUNT, "a", "same", 5, 160, .want = "0 5", .what = "a's counter"},
	{COUNT, "b", "same", 1, 160, .want = "0 1", .what = "b's counter of the same name"},
	{COUNT, "a", "same", 0, 160, .want = "0 5", .what = "a's is untouched"},
	{SET, "a", "same", 100, .val = "A", .want = "0", .what = "a's value"},
	{SET, "b", "same", 100, .val = "B", .want = "0", .what = "b's value"},
	{GET, "a", "same", .want = "1 A 100", .what = "a's value"},
	{GET, "b", "same", .want = "1 B 100", .what = "b's value"},
	{MEM, "a", "same", 100, .val = "m", .want = "0 1", .what = "a's member set of that name"},
	{DEL, "a", "same", .want = "0", .what = "del of a's value"},
	{COUNT, "a", "same", 0, 160, .want = "0 5", .what = "leaves a's counter"},
	{MEM, "a", "same", 0, .want = "0 1", .what = "and a's member set"},
	{GET, "b", "same", .want = "1 B 100", .what = "and b's value"},
	{SET, "a.b-c_D9", "x:y:z", 100, .val = "colon", .want = "0", .what = "':' in keys, '.-_' in namespaces"},
	{GET, "a.b-c_D9", "x:y:z", .want = "1 colon 100", .what = "found"},
	{GET, "a.b-c_D9", "x", .want = "0", .what = "a prefix of it is another key"},
	{SET, "a", "sp \xc3\xbc \"q\"", 100, .val = "utf8", .want = "0", .what = "spaces, UTF-8, quotes in a key"},
	{GET, "a", "sp \xc3\xbc \"q\"", .want = "1 utf8 100", .what = "found"},
	/* bounds */
	{COUNT, "a", key512, 1, 160, .want = "0 1", .what = "a key of 512 bytes"},
	{COUNT, "a", key513, 1, 160, .want = "-1", .what = "a key of 513 bytes is refused"},
	{SET, "a", key513, 10, .val = "x", .want = "-1", .what = "by every operation"},
	{GET, "a", key513, .want = "-1", .what = "get"},
	{MEM, "a", key513, 0, .want = "-1", .what = "members"},
	{UPD, "a", key513, U_INCR, .want = "-1", .what = "update"},
	{SET, "a:b", "k", 10, .val = "x", .want = "-1", .what = "':' in a namespace"},
	{SET, "", "k", 10, .val = "x", .want = "-1", .what = "an empty namespace"},
	{SET, ns65, "k", 10, .val = "x", .want = "-1", .what = "a namespace of 65 bytes"},
	/* the admin command's delete, of any kind */
	{DELETE, "a", "same", PD_STORE_COUNTER, .want = "1", .what = "delete a counter"},
	{DELETE, "a", "same", PD_STORE_COUNTER, .want = "0", .what = "delete it again"},
	{COUNT, "a", "same", 0, 160, .want = "0 0", .what = "gone"},
	{DELETE, "a", "same", PD_STORE_MEMBERS, .want = "1", .what = "delete a member set"},
	{MEM, "a", "same", 0, .want = "0 0", .what = "gone"},
	{DELETE, "a", "same", 'x', .want = "-1", .what = "an unknown kind"},
	{CLOCK, .a = -T0 - 1},
	{GET, "a", "same", .want = "-1", .what = "a clock before 1970"},
	{CLOCK, .a = 253402300800LL - T0},
	{SET, "a", "same", 10, .val = "x", .want = "-1", .what = "a clock after 9999"},
	{CLOCK, .a = 30060},
};

/* run_step - one step on S at *NOW; its answer as the table writes it, in OUT */
static void run_step(pd_store *s, const step *t, long long *now, char *out, size_t outsz)
{
	long long n = 0;
	pd_store_val v;
	int r, res, kind;
	char e[4 * PD_STORE_VALUE_MAX + 8];

	switch (t->op) {
	case CLOCK:
		*now = T0 + t->a;
		snprintf(out, outsz, "%s", "");
		return;
	case COUNT:
		r = pd_store_count(s, t->ns, t->key, t->w, t->a, *now, &n);
		break;
	case SET:
		r = pd_store_set(s, t->ns, t->key, t->val, t->vlen ? t->vlen : strlen(t->val),
				 (unsigned)t->a, *now);
		snprintf(out, outsz, "%d", r);
		return;
	case GET:
		r = pd_store_get(s, t->ns, t->key, *now, &v);
		if (r == 1) {
			size_t o = 0;

			for (size_t i = 0; i < v.len && o + 5 < sizeof(e); i++) {
				unsigned char c = ((unsigned char *)v.data)[i];

				o += (size_t)(c ? snprintf(e + o, 2, "%c", c) : snprintf(e + o, 5, "\\x00"));
			}
			e[o] = 0;
			CHECK(((char *)v.data)[v.len] == 0);
			snprintf(out, outsz, "1 %.200s %u", e, v.ttl);
			free(v.data);
		} else {
			snprintf(out, outsz, "%d", r);
		}
		return;
	case DEL:
		r = pd_store_del(s, t->ns, t->key);
		snprintf(out, outsz, "%d", r);
		return;
	case MEM:
		r = pd_store_members(s, t->ns, t->key, t->val, (unsigned)t->a, *now, &n);
		break;
	case UPD:
		kind = (int)t->a;
		r = pd_store_update(s, t->ns, t->key, upd_fn, &kind, *now, &res);
		n = res;
		break;
	default: /* DELETE */
		r = pd_store_delete(s, t->ns, (int)t->a, t->key);
		snprintf(out, outsz, "%d", r);
		return;
	}
	if (r == 0)
		snprintf(out, outsz, "0 %lld", n);
	else
		snprintf(out, outsz, "%d", r);
}

/* The listing of a store, one line per entry, sorted. */
typedef struct listing {
	char **lines;
	size_t n, cap;
} listing;

/* list_cb - pd_store_scan callback: keep "ns kind key ttl text" */
static int list_cb(void *arg, const pd_store_entry *e)
{
	listing *l = arg;
	char line[1200];

	snprintf(line, sizeof(line), "%s %c %.600s ttl=%lld %s", e->ns, e->kind, e->key, e->ttl, e->text);
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->lines = realloc(l->lines, l->cap * sizeof(*l->lines));
		if (!l->lines)
			abort();
	}
	l->lines[l->n++] = strdup(line);
	return 0;
}

/* cmp_line - qsort of strings */
static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* listing_of - scan S (namespace NS, NULL: all) at NOW into L, sorted; the scan's return */
static long listing_of(pd_store *s, const char *ns, long long now, listing *l)
{
	long r = pd_store_scan(s, ns, now, list_cb, l);

	qsort(l->lines, l->n, sizeof(*l->lines), cmp_line);
	return r;
}

/* listing_free - free L's lines */
static void listing_free(listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->lines[i]);
	free(l->lines);
	memset(l, 0, sizeof(*l));
}

/* listing_has - does a line of L start with PREFIX? */
static int listing_has(const listing *l, const char *prefix)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strncmp(l->lines[i], prefix, strlen(prefix)))
			return 1;
	return 0;
}

static listing listings[2]; /* of the table's end, per backend (gdbm, redis) */

/* test_table - the table on B; its listing kept in listings[B->redis] */
static void test_table(const backend *b)
{
	pd_store *s = open_b(b);
	long long now = T0;
	char got[600];
	int bad = 0;

	if (!s)
		return;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		run_step(s, &table[i], &now, got, sizeof(got));
		if (table[i].op == CLOCK)
			continue;
		if (strcmp(got, table[i].want) != 0) {
			printf("FAIL %s step %zu (%s): got \"%s\", want \"%s\"\n", b->name, i,
			       table[i].what, got, table[i].want);
			bad++;
		}
		CHECK(strcmp(got, table[i].want) == 0);
	}
	/* the listing at the end: what is live, as the admin command shows it */
	listing_of(s, NULL, now, &listings[b->redis]);
	CHECK(listing_has(&listings[b->redis], "a v rec ttl=95 len=1 \"1\""));
	CHECK(listing_has(&listings[b->redis], "a v sp \xc3\xbc \"q\" ttl=95 len=4 \"utf8\""));
	CHECK(listing_has(&listings[b->redis], "a c bytes ttl="));
	CHECK(listing_has(&listings[b->redis], "a.b-c_D9 v x:y:z ttl=95 len=5 \"colon\""));
	CHECK(listing_has(&listings[b->redis], "a m helo ttl=1199539 members=2 \"mx3.example\" \"mx1.example\""));
	CHECK(!listing_has(&listings[b->redis], "a v k ")); /* deleted */
	{
		listing only = {0};

		CHECK(listing_of(s, "b", now, &only) == 2);
		CHECK(only.n == 2 && listing_has(&only, "b c same ") && listing_has(&only, "b v same "));
		listing_free(&only);
	}
	if (verbose)
		for (size_t i = 0; i < listings[b->redis].n; i++)
			printf("  %s\n", listings[b->redis].lines[i]);
	printf("%s: table of %zu steps, %d wrong; %zu entries listed\n", b->name,
	       sizeof(table) / sizeof(table[0]), bad, listings[b->redis].n);
	pd_store_close(s);
}

/* ---- properties beyond the table ---- */

/* test_no_burst - a limit of 10 per 160 s checked against count() on random arrival times: in no
 * window of 160 s are more than 10 accepted, and the counter never refuses one it must accept */
static void test_no_burst(const backend *b)
{
	enum { W = 160, LIMIT = 10, N = 400 };
	pd_store *s = open_b(b);
	long long t = T0 + 7, acc[N];
	unsigned seed = 12345;
	int na = 0, over = 0, spurious = 0;

	if (!s)
		return;
	for (int i = 0; i < N; i++) {
		long long total, in_window = 0;

		seed = seed * 1103515245u + 12345u;
		t += (seed >> 16) % 23; /* 0..22 s apart: bursts and pauses */
		if (pd_store_count(s, "lim", "k", W, 0, t, &total) != 0) {
			CHECK(0);
			break;
		}
		for (int j = 0; j < na; j++)
			in_window += acc[j] > t - W;
		if (total < in_window)
			over++; /* undercount: a burst could pass */
		if (total < LIMIT) {
			pd_store_count(s, "lim", "k", W, 1, t, &total);
			acc[na++] = t;
		} else if (in_window < LIMIT) {
			/* refused: only because events within one bucket past the window still count */
			long long stale = 0;

			for (int j = 0; j < na; j++)
				stale += acc[j] > t - W - W / 16 - 1 && acc[j] <= t - W;
			spurious += stale == 0;
		}
	}
	for (int i = 0; i < na; i++) { /* any window of W seconds holds at most LIMIT */
		int k = 0;

		for (int j = 0; j < na; j++)
			k += acc[j] >= acc[i] && acc[j] < acc[i] + W;
		CHECK(k <= LIMIT);
	}
	CHECK(over == 0 && spurious == 0);
	CHECK(na > 3 * LIMIT); /* the test saw several windows */
	printf("%s: no burst: %d of %d accepted under %d per %d s\n", b->name, na, N, LIMIT, W);
	pd_store_close(s);
}

/* test_members_bound - at most 1000 members: adding more drops the first to expire */
static void test_members_bound(const backend *b)
{
	pd_store *s = open_b(b);
	long long n = 0;
	char m[32];
	int ok = 1;

	if (!s)
		return;
	for (int i = 0; i < PD_STORE_MEMBERS_MAX + 5; i++) {
		snprintf(m, sizeof(m), "m%04d", i);
		/* member i expires at T0 + 1000 + i: m0000 first */
		ok &= pd_store_members(s, "a", "big", m, 1000 + (unsigned)i, T0, &n) == 0;
	}
	CHECK(ok);
	CHECK(n == PD_STORE_MEMBERS_MAX);
	/* m0000..m0004 were dropped: m0005 expires first now, at T0 + 1005 */
	CHECK(pd_store_members(s, "a", "big", NULL, 0, T0 + 1005, &n) == 0 && n == PD_STORE_MEMBERS_MAX - 1);
	/* m0002 again, to outlive the others: m0005 is dropped, m0006 expires first, at T0 + 1006 */
	CHECK(pd_store_members(s, "a", "big", "m0002", 5000, T0, &n) == 0 && n == PD_STORE_MEMBERS_MAX);
	CHECK(pd_store_members(s, "a", "big", NULL, 0, T0 + 1005, &n) == 0 && n == PD_STORE_MEMBERS_MAX);
	CHECK(pd_store_members(s, "a", "big", NULL, 0, T0 + 1006, &n) == 0 && n == PD_STORE_MEMBERS_MAX - 1);
	CHECK(pd_store_members(s, "a", "big", NULL, 0, T0 + 2004, &n) == 0 && n == 1);
	pd_store_close(s);
}

/* ---- concurrency ---- */

typedef struct thr {
	pd_store *s;
	int n, bad, lost;
} thr;

/* incr_fn - update function: an 8-byte counter record + 1 */
static int incr_fn(void *arg, const void *old, size_t oldlen, void *new, size_t *newlen, unsigned *ttl)
{
	uint64_t v = 0;

	if (old && oldlen == 8)
		memcpy(&v, old, 8);
	v++;
	memcpy(new, &v, 8);
	*newlen = 8;
	*ttl = 3600;
	return PD_STORE_UPD_WRITE;
}

/* incr_main - N counts and N updates of one counter and one record */
static void *incr_main(void *p)
{
	thr *t = p;
	long long total;
	int res;

	for (int i = 0; i < t->n; i++) {
		if (pd_store_count(t->s, "con", "ctr", 3600, 1, T0, &total) != 0)
			t->bad++;
		if (pd_store_update(t->s, "con", "rec", incr_fn, NULL, T0, &res) != 0)
			t->lost++; /* failed, so not counted: not a lost update */
	}
	return NULL;
}

/* child_incr - a separate process (a fresh exec) doing N counts and updates on the file PATH */
static int child_incr(const char *path, int n)
{
	pd_store_conf c = {.backend = "gdbm", .path = path, .lock_timeout_ms = 10000, .log = test_log};
	char err[300];
	pd_store *s = pd_store_open(&c, err, sizeof(err));
	thr t = {.s = s, .n = n};

	if (!s) {
		fprintf(stderr, "child: %s\n", err);
		return 3;
	}
	incr_main(&t);
	pd_store_close(s);
	return t.bad || t.lost ? 1 : 0;
}

/* record_value - the 8-byte counter record "rec" of NS, or -1 */
static long long record_value(pd_store *s, const char *ns)
{
	pd_store_val v;
	long long n = -1;

	if (pd_store_get(s, ns, "rec", T0, &v) == 1) {
		uint64_t x = 0;

		if (v.len == 8)
			memcpy(&x, v.data, 8);
		n = (long long)x;
		free(v.data);
	}
	return n;
}

/* test_concurrency - threads (two stores of one backend: two pools on Redis) and, on GDBM, two more
 * processes increment one counter and one record: no increment is lost */
static void test_concurrency(const backend *b)
{
	enum { THREADS = 4, N = 300, CHILDREN = 2 };
	pd_store_conf c = conf_of(b);
	pd_store *s[2];
	pthread_t th[THREADS];
	thr t[THREADS];
	pid_t pid[CHILDREN] = {0};
	char err[300];
	long long total = -1, rec, want;
	int children = 0, failed = 0;

	c.lock_timeout_ms = 10000; /* a loaded machine must not fail this test */
	c.flags = PD_STORE_LEASE;  /* the daemon's way: the lock kept across operations for 5 ms */
	s[0] = pd_store_open(&c, err, sizeof(err));
	s[1] = pd_store_open(&c, err, sizeof(err));
	CHECK(s[0] && s[1]);
	if (!s[0] || !s[1])
		return;
	fflush(NULL);
	if (!b->redis)
		for (int i = 0; i < CHILDREN; i++) {
			char n[16];

			snprintf(n, sizeof(n), "%d", N);
			pid[i] = fork();
			if (pid[i] == 0) {
				execl(self_path, self_path, "--child-incr", b->path, n, (char *)NULL);
				_exit(4);
			}
		}
	for (int i = 0; i < THREADS; i++) {
		t[i] = (thr){.s = s[i % 2], .n = N};
		CHECK(pthread_create(&th[i], NULL, incr_main, &t[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		CHECK(t[i].bad == 0);
		failed += t[i].lost;
	}
	for (int i = 0; i < CHILDREN; i++) {
		int status;

		if (pid[i] > 0 && waitpid(pid[i], &status, 0) == pid[i] && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)
			children++;
	}
	CHECK(b->redis || children == CHILDREN);
	want = (long long)THREADS * N + (b->redis ? 0 : (long long)CHILDREN * N);
	CHECK(pd_store_count(s[1], "con", "ctr", 3600, 0, T0, &total) == 0);
	CHECK(total == want);
	rec = record_value(s[0], "con");
	/* every update that returned 0 is in the record: none lost; on GDBM none may fail */
	CHECK(rec == want - failed);
	CHECK(b->redis ? failed < THREADS * N / 10 : failed == 0);
	printf("%s: concurrency: %d threads%s: count %lld of %lld, update %lld (%d gave up after "
	       "5 tries)\n", b->name, THREADS, b->redis ? " on two pools" : " and 2 processes", total,
	       want, rec, failed);
	pd_store_close(s[0]);
	pd_store_close(s[1]);
}

/* ---- GDBM failures ---- */

/* hold_lock - a child process holding byte 0 of LOCKPATH until killed; its pid (0 on failure) */
static pid_t hold_lock(const char *lockpath)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe(p) != 0)
		return 0;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
		int fd = open(lockpath, O_RDWR);

		close(p[0]);
		if (fd < 0 || fcntl(fd, F_SETLKW, &fl) != 0)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (pid > 0)
		started[15] = pid;
	if (pid < 0 || read(p[0], &c, 1) != 1) {
		close(p[0]);
		return 0;
	}
	close(p[0]);
	return pid;
}

/* ---- a wall clock far from the monotonic one ---- */

static volatile int sleepy_inside;

/* sleepy_update - an update that holds the store 300 ms */
static int sleepy_update(void *arg, const void *old, size_t oldlen, void *new, size_t *newlen, unsigned *ttl)
{
	struct timespec ts = {0, 300 * 1000000L};

	(void)arg, (void)old, (void)oldlen;
	__atomic_store_n(&sleepy_inside, 1, __ATOMIC_RELEASE);
	nanosleep(&ts, NULL);
	memcpy(new, "1", 1);
	*newlen = 1;
	*ttl = 60;
	return PD_STORE_UPD_WRITE;
}

static void *sleepy_thread(void *arg)
{
	int result;

	return (void *)(intptr_t)pd_store_update(arg, "a", "slow", sleepy_update, NULL, T0, &result);
}

/* child_clock - (a fresh exec, under libfaketime with the wall clock a day behind) while a
 * thread holds the store 300 ms, a get with a 2 s bound waits for it and succeeds; 0 if so */
static int child_clock(const char *path, long long parent_time)
{
	pd_store_conf c = {.backend = "gdbm", .path = path, .lock_timeout_ms = 2000, .log = test_log};
	char err[300];
	pd_store *s;
	pd_store_val v;
	pthread_t t;
	void *held;
	long long t0, took;
	int r;

	if ((long long)time(NULL) > parent_time - 3600) {
		fprintf(stderr, "child: the wall clock is not a day behind: libfaketime did not apply\n");
		return 2;
	}
	if (!(s = pd_store_open(&c, err, sizeof(err)))) {
		fprintf(stderr, "child: %s\n", err);
		return 3;
	}
	pthread_create(&t, NULL, sleepy_thread, s);
	while (!__atomic_load_n(&sleepy_inside, __ATOMIC_ACQUIRE))
		sched_yield();
	t0 = mono_ms();
	r = pd_store_get(s, "a", "slow", T0, &v);
	took = mono_ms() - t0;
	pthread_join(t, &held);
	if (r == 1)
		free(v.data);
	pd_store_close(s);
	fprintf(stderr, "child: get %d after %lld ms behind a 300 ms update (%ld), wall clock a day behind\n",
		r, took, (long)(intptr_t)held);
	return r == 1 && took >= 150 && took < 2000 && (intptr_t)held == 0 ? 0 : 1;
}

/* test_clock_step - the waits of an operation are on the monotonic clock: with the wall clock
 * a day behind it (an NTP step, an admin's date; here libfaketime), an operation behind another
 * thread's waits for it within lock_timeout and succeeds (it failed at once when the wait was a
 * CLOCK_REALTIME deadline: greylist answers on_error under valgrind in the postgrey comparison) */
static void test_clock_step(void)
{
	backend b = {.name = "gdbm"};
	glob_t gl;
	const char *lib = NULL;
	char when[32];
	pid_t pid;
	int status = -1;

	if (glob("/usr/lib/*/faketime/libfaketimeMT.so.1", 0, NULL, &gl) == 0 && gl.gl_pathc)
		lib = gl.gl_pathv[0];
	else if (access("/usr/lib/faketime/libfaketimeMT.so.1", R_OK) == 0)
		lib = "/usr/lib/faketime/libfaketimeMT.so.1";
	if (!lib) {
		printf("gdbm: wall clock step: skipped (needs libfaketime, Debian package libfaketime)\n");
		globfree(&gl);
		return;
	}
	gdbm_fresh(&b);
	snprintf(when, sizeof(when), "%lld", (long long)time(NULL));
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		char asan[512];
		const char *was = getenv("ASAN_OPTIONS");

		snprintf(asan, sizeof(asan), "verify_asan_link_order=0:%s", was ? was : "");
		setenv("ASAN_OPTIONS", asan, 1);
		setenv("LD_PRELOAD", lib, 1);
		setenv("FAKETIME", "-1d", 1);
		setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
		setenv("FAKETIME_NO_CACHE", "1", 1);
		execl(self_path, self_path, "--child-clock", b.path, when, (char *)NULL);
		_exit(4);
	}
	globfree(&gl);
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	printf("gdbm: wall clock a day behind: an operation waits out another thread's on the monotonic clock (status %d)\n",
	       status);
}

/* test_lock_held - another process keeps the lock: -1 within the bound, logged once with its
 * pid; when it lets go, operations work again and the end is logged */
static void test_lock_held(void)
{
	backend b = {.name = "gdbm"};
	pd_store_conf c;
	pd_store *s;
	char err[300], lockpath[700], pidtxt[64];
	long long total, t0, took;
	pid_t holder;

	gdbm_fresh(&b);
	c = conf_of(&b);
	c.lock_timeout_ms = 200;
	s = pd_store_open(&c, err, sizeof(err));
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(pd_store_count(s, "a", "x", 60, 1, T0, &total) == 0 && total == 1);
	snprintf(lockpath, sizeof(lockpath), "%s.lock", b.path);
	holder = hold_lock(lockpath);
	CHECK(holder > 0);
	if (holder <= 0) {
		pd_store_close(s);
		return;
	}
	log_clear();
	t0 = mono_ms();
	CHECK(pd_store_count(s, "a", "x", 60, 1, T0, &total) == -1);
	took = mono_ms() - t0;
	CHECK(took >= 150 && took < 5000); /* waited about its 200 ms, then gave up */
	snprintf(pidtxt, sizeof(pidtxt), "(pid %ld)", (long)holder);
	CHECK(log_count(pidtxt) == 1);
	for (int i = 0; i < 5; i++) /* during the outage: fail too, not logged again */
		CHECK(pd_store_set(s, "a", "v", "1", 1, 60, T0) == -1);
	CHECK(log_count("has kept") == 1);
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	started[15] = 0;
	CHECK(pd_store_count(s, "a", "x", 60, 1, T0, &total) == 0 && total == 2);
	CHECK(log_count("free again") == 1 && log_count("(6 operations failed") == 1);
	pd_store_close(s);
	printf("gdbm: a lock held by pid %ld: -1 after %lld ms (bound 200 ms), logged once\n",
	       (long)holder, took);
}

/* snapshot - the bytes of PATH (malloc'd, *LEN), or NULL */
static char *snapshot(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(1 << 20);

	*len = 0;
	if (f && buf)
		*len = fread(buf, 1, 1 << 20, f);
	if (f)
		fclose(f);
	return buf;
}

/* open_as - in a child process, as UID/GID (root only; -1: as we are), open PATH: 0 if opening
 * failed with an error naming FILE_IN_ERROR and "Permission denied", 1 if it opened, 2 otherwise */
static int open_as(uid_t uid, gid_t gid, const char *path, const char *file_in_error)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		pd_store_conf c = {.backend = "gdbm", .path = path, .log = test_log};
		char err[600], want[700];
		pd_store *s;

		if (uid != (uid_t)-1 && (setgid(gid) != 0 || setuid(uid) != 0))
			_exit(3);
		log_clear();
		s = pd_store_open(&c, err, sizeof(err));
		if (s)
			_exit(1);
		snprintf(want, sizeof(want), "%s: Permission denied", file_in_error);
		_exit(strstr(err, file_in_error) && log_count(want) == 1 && log_count("moved aside") == 0
		      ? 0 : 2);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 2;
	return WEXITSTATUS(status);
}

/* test_permission - a file the process may not open is an error naming it; nothing moved aside
 * or changed (as root: opened as nobody; else: mode 0) */
static void test_permission(void)
{
	backend b = {.name = "gdbm"};
	pd_store *s;
	long long total;
	char lockpath[700], dir[700], *before, *after;
	size_t bl, al;
	struct passwd *pw = getpwnam("nobody");
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;

	gdbm_fresh(&b);
	s = open_b(&b);
	if (!s)
		return;
	CHECK(pd_store_count(s, "a", "x", 60, 1, T0, &total) == 0);
	pd_store_close(s);
	snprintf(lockpath, sizeof(lockpath), "%s.lock", b.path);
	snprintf(dir, sizeof(dir), "%s", b.path);
	*strrchr(dir, '/') = 0;
	if (geteuid() == 0) {
		if (!pw) {
			printf("gdbm: permission test skipped: no user nobody\n");
			return;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		chmod(tmpdir, 0755); /* nobody may reach the directory, not the files */
		chmod(b.path, 0600);
		chmod(lockpath, 0600);
	} else {
		chmod(b.path, 0);
		chmod(lockpath, 0);
	}
	before = snapshot(b.path, &bl);
	/* the lock file first: the error names it */
	CHECK(open_as(uid, gid, b.path, lockpath) == 0);
	/* a lock file it may use, the database not: the error names the database */
	chmod(lockpath, 0666);
	CHECK(open_as(uid, gid, b.path, b.path) == 0);
	after = snapshot(b.path, &al);
	CHECK(before && after && bl == al && bl > 0 && memcmp(before, after, bl) == 0);
	CHECK(count_corrupt(dir, "state.db") == 0);
	free(before);
	free(after);
	chmod(b.path, 0600);
	chmod(lockpath, 0600);
	chmod(tmpdir, 0700);
	/* and the owner can still use it, with its data */
	s = open_b(&b);
	CHECK(s && pd_store_count(s, "a", "x", 60, 0, T0, &total) == 0 && total == 1);
	pd_store_close(s);
	printf("gdbm: permission denied (%s): an error naming the file, file untouched\n",
	       geteuid() == 0 ? "as nobody" : "mode 0");
}

/* test_corrupt - garbage instead of a database: moved aside loudly, a fresh file, it works */
static void test_corrupt(void)
{
	backend b = {.name = "gdbm"};
	char dir[700], buf[4096];
	pd_store *s;
	long long total;
	int fd;

	gdbm_fresh(&b);
	snprintf(dir, sizeof(dir), "%s", b.path);
	*strrchr(dir, '/') = 0;
	memset(buf, 'x', sizeof(buf));
	fd = open(b.path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	close(fd);
	log_clear();
	s = open_b(&b);
	CHECK(count_corrupt(dir, "state.db") == 1);
	CHECK(log_count("moved aside to ") == 1);
	CHECK(s && pd_store_count(s, "a", "x", 60, 1, T0, &total) == 0 && total == 1);
	pd_store_close(s);
}

/* expire_pass - one whole expiry pass of S at NOW in steps of BATCH; deleted, or -1 (*STEPS) */
static long expire_pass(pd_store *s, long long now, size_t batch, int *steps)
{
	long deleted = 0, r;
	int done = 0;

	*steps = 0;
	while (!done && *steps < 10000) {
		r = pd_store_expire(s, now, batch, &done);
		if (r < 0)
			return -1;
		deleted += r;
		(*steps)++;
	}
	return done ? deleted : -1;
}

/* test_expire - the expiry pass in small steps deletes what expired at NOW and keeps the rest (a
 * pass may miss an entry whose place in the file moved while it deleted others: the next one gets
 * it); no pass starts within expire_interval of the last one, by any process */
static void test_expire(void)
{
	backend b = {.name = "gdbm"};
	pd_store_conf c;
	pd_store *s, *other;
	char err[300], k[32];
	long long n;
	long first, deleted = 0, r = 1;
	int steps, first_steps, passes = 0, ok = 1, done = 0;
	listing l = {0};
	GDBM_FILE db;

	gdbm_fresh(&b);
	c = conf_of(&b);
	s = pd_store_open(&c, err, sizeof(err));
	CHECK(s != NULL);
	if (!s)
		return;
	for (int i = 0; i < 100; i++) {
		unsigned ttl = i < 10 ? 1000 : 100; /* 10 of each kind outlive the clock below */

		snprintf(k, sizeof(k), "k%d", i);
		ok &= pd_store_set(s, "e", k, "v", 1, ttl, T0) == 0;
		ok &= pd_store_members(s, "e", k, "m", ttl, T0, &n) == 0;
		ok &= pd_store_count(s, "e", k, i < 10 ? 960 : 96, 1, T0, &n) == 0;
	}
	CHECK(ok);
	first = expire_pass(s, T0 + 500, 37, &first_steps);
	CHECK(first > 200 && first_steps >= 300 / 37);
	for (deleted = first; r > 0 && passes < 10; passes++)
		deleted += r = expire_pass(s, T0 + 500, 37, &steps);
	CHECK(r == 0 && deleted == 270);
	CHECK(listing_of(s, NULL, T0 + 500, &l) == 30);
	listing_free(&l);
	/* the file holds the 30 and the pass's bookkeeping, nothing else */
	db = gdbm_open(b.path, 0, GDBM_READER | GDBM_NOLOCK, 0600, NULL);
	CHECK(db != NULL);
	if (db) {
		gdbm_count_t cnt = 0;

		CHECK(gdbm_count(db, &cnt) == 0 && cnt == 31);
		gdbm_close(db);
	}
	pd_store_close(s);
	/* expire_interval: the file says when the last pass began; another opener (in a real setup
	 * another process: a pass is claimed in the file) does not start one within it */
	c.expire_interval = 3600;
	s = pd_store_open(&c, err, sizeof(err));
	CHECK(s && pd_store_expire(s, T0 + 600, 37, &done) == 0 && done == 1);
	other = pd_store_open(&c, err, sizeof(err));
	CHECK(other && pd_store_expire(other, T0 + 500 + 3599, 37, &done) == 0 && done == 1);
	CHECK(other && expire_pass(other, T0 + 500 + 3600, 37, &steps) == 30);
	pd_store_close(other);
	pd_store_close(s);
	printf("gdbm: expiry: %ld of 300 deleted by the first pass (%d steps of 37), 270 after %d "
	       "more\n", first, first_steps, passes);
}

/* Compaction test state. */
static pd_store *compact_s;
static int compact_done, compact_ret = 99, compact_waited_out;

/* compact_op - an operation from another thread while the file is being reorganised */
static void *compact_op(void *arg)
{
	long long n;

	compact_ret = pd_store_count(compact_s, "a", "during", 60, 1, T0, &n);
	__atomic_store_n(&compact_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* compact_hook - inside the reorganisation: an operation must come back without waiting for it */
static void compact_hook(void)
{
	pthread_t th;

	if (pthread_create(&th, NULL, compact_op, NULL) != 0)
		return;
	/* the lock timeout is 10 s: an operation that waits is still waiting after 5 s */
	for (int i = 0; i < 500 && !__atomic_load_n(&compact_done, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	compact_waited_out = !__atomic_load_n(&compact_done, __ATOMIC_ACQUIRE);
	pthread_join(th, NULL);
}

/* test_compact - operations fail at once while gdbm_reorganize holds the file, and work after */
static void test_compact(void)
{
	backend b = {.name = "gdbm"};
	pd_store_conf c;
	char err[300];
	long long n;

	gdbm_fresh(&b);
	c = conf_of(&b);
	c.lock_timeout_ms = 10000;
	compact_s = pd_store_open(&c, err, sizeof(err));
	CHECK(compact_s != NULL);
	if (!compact_s)
		return;
	CHECK(pd_store_count(compact_s, "a", "x", 60, 1, T0, &n) == 0);
	pd_store_compact_hook = compact_hook;
	CHECK(pd_store_compact(compact_s) == 0);
	pd_store_compact_hook = NULL;
	CHECK(!compact_waited_out && compact_ret == -1);
	CHECK(pd_store_count(compact_s, "a", "x", 60, 1, T0, &n) == 0 && n == 2);
	pd_store_close(compact_s);
}

/* rss_anon_kb - this process's anonymous resident memory (RssAnon), kB */
static long rss_anon_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "RssAnon:", 8))
			kb = atol(line + 8);
	if (f)
		fclose(f);
	return kb;
}

/* test_memory_flat - memory does not grow with the number of keys: GDBM's bucket cache is
 * bounded (gdbm 1.23 sized it to the file: 300,000 keys took some 10 MB more, 10M keys 266 MB) */
static void test_memory_flat(void)
{
	backend b = {.name = "gdbm"};
	pd_store_conf c;
	pd_store *s;
	char err[300], k[48];
	long before, after;
	int ok = 1;

	gdbm_fresh(&b);
	c = conf_of(&b);
	s = pd_store_open(&c, err, sizeof(err));
	CHECK(s != NULL);
	if (!s)
		return;
	for (int i = 0; i < 20000 && ok; i++) { /* the first buckets, allocator pools */
		snprintf(k, sizeof(k), "warm-%d", i);
		ok = pd_store_set(s, "m", k, "0123456789abcdef", 16, 86400, T0) == 0;
	}
	before = rss_anon_kb();
	for (int i = 0; i < 300000 && ok; i++) {
		snprintf(k, sizeof(k), "key-%d", i);
		ok = pd_store_set(s, "m", k, "0123456789abcdef", 16, 86400, T0) == 0;
	}
	after = rss_anon_kb();
	CHECK(ok);
#if defined(__SANITIZE_ADDRESS__)
	/* ASan's quarantine keeps freed memory resident: the bound says nothing there */
	printf("# memory: not judged under AddressSanitizer (%ld kB grown)\n", after - before);
#else
	if (after - before >= 6000)
		printf("FAIL: 300,000 keys grew anonymous memory by %ld kB\n", after - before);
	CHECK(before > 0 && after - before < 6000);
#endif
	pd_store_close(s);
}

/* test_conf - configurations refused before anything is opened */
static void test_conf(void)
{
#ifdef HAVE_HIREDIS
	static const char *const bad_sentinel[] = {"unix:/x"};
	static const char *const sentinels[] = {"127.0.0.1", "[::1]:26380"};
#endif
	struct {
		pd_store_conf c;
		const char *want; /* in the error; NULL: accepted */
	} cases[] = {
		{{.backend = "mysql"}, "must be \"gdbm\" or \"redis\""},
		{{.backend = "gdbm"}, "no database file"},
		{{.path = "/x", .lock_timeout_ms = 60001}, "lock timeout"},
		{{.path = "/x", .lock_timeout_ms = -1}, NULL},
		{{.path = "/x", .flags = 8}, "unknown flags"},
#ifdef HAVE_HIREDIS
		{{.backend = "redis"}, NULL},
		{{.backend = "redis", .server = "a:b:c"}, "must be HOST:PORT"},
		{{.backend = "redis", .server = "[::1]:6380"}, NULL},
		{{.backend = "redis", .server = "unix:/run/redis.sock"}, NULL},
		{{.backend = "redis", .username = "u"}, "needs a password"},
		{{.backend = "redis", .password = "a b"}, "space or control"},
		{{.backend = "redis", .prefix = ""}, "prefix"},
		{{.backend = "redis", .db = 65536}, "db"},
		{{.backend = "redis", .timeout_ms = 600001}, "timeouts"},
		{{.backend = "redis", .sentinels = sentinels, .n_sentinels = 2}, "master's name"},
		{{.backend = "redis", .sentinels = sentinels, .n_sentinels = 2, .master_name = "m"}, NULL},
		{{.backend = "redis", .sentinels = bad_sentinel, .n_sentinels = 1, .master_name = "m"}, "sentinel"},
		{{.backend = "redis", .sentinels = sentinels, .n_sentinels = 9, .master_name = "m"}, "at most 8"},
		{{.backend = "redis", .sentinel_username = "u", .sentinels = sentinels, .n_sentinels = 1,
		  .master_name = "m"}, "sentinel password"},
#else
		{{.backend = "redis"}, "built without hiredis"},
#endif
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[400] = "";
		int r = pd_store_conf_check(&cases[i].c, err, sizeof(err));

		if (cases[i].want ? r != -1 || !strstr(err, cases[i].want) : r != 0)
			printf("FAIL conf case %zu: %d \"%s\"\n", i, r, err);
		CHECK(cases[i].want ? r == -1 && strstr(err, cases[i].want) : r == 0);
	}
}

/* ---- Redis failures ---- */

#ifdef HAVE_HIREDIS
/* test_redis_down - a stopped server gives -1 within the command timeout; logged once; it works
 * again without reopening once the server answers (SIGCONT) and after a restart on its port;
 * a script flushed from the server (NOSCRIPT) is sent again */
static void test_redis_down(backend *b)
{
	pd_store_conf c = conf_of(b);
	pd_store *s;
	char err[300];
	long long n = 0, t0, took, deadline;
	int r;
	redisReply *rep;

	c.timeout_ms = 300;
	c.connect_timeout_ms = 300;
	s = pd_store_open(&c, err, sizeof(err));
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(pd_store_remote(s) == 1);
	CHECK(pd_store_count(s, "d", "x", 60, 1, T0, &n) == 0 && n == 1);
	/* a server that stops answering (SIGSTOP): the command timeout */
	log_clear();
	kill(srv.pid, SIGSTOP);
	t0 = mono_ms();
	r = pd_store_count(s, "d", "x", 60, 0, T0, &n); /* a read: a command that timed out may
							    * still run when the server wakes up */
	took = mono_ms() - t0;
	CHECK(r == -1);
	CHECK(took >= 250 && took < 300 + 3000);
	for (int i = 0; i < 5; i++)
		CHECK(pd_store_set(s, "d", "v", "1", 1, 60, T0) == -1);
	CHECK(log_count("redis down") == 1);
	kill(srv.pid, SIGCONT);
	deadline = mono_ms() + 20000;
	while ((r = pd_store_count(s, "d", "x", 60, 1, T0, &n)) != 0 && mono_ms() < deadline)
		usleep(50000);
	CHECK(r == 0 && n == 2);
	CHECK(log_count("redis up again") == 1);
	printf("redis: stopped server: -1 after %lld ms (timeout 300 ms), logged once, recovered\n", took);
	/* a server that is gone: refused at once; a restart on the same port is found again */
	log_clear();
	rs_stop(&srv);
	t0 = mono_ms();
	CHECK(pd_store_count(s, "d", "x", 60, 1, T0, &n) == -1);
	CHECK(mono_ms() - t0 < 3000);
	CHECK(rs_start(&srv, NULL) == 0);
	deadline = mono_ms() + 20000;
	while ((r = pd_store_count(s, "d", "x", 60, 1, T0, &n)) != 0 && mono_ms() < deadline)
		usleep(50000);
	CHECK(r == 0 && n == 1); /* a new, empty server */
	CHECK(log_count("redis down") == 1 && log_count("redis up again") == 1);
	/* its scripts forgotten (SCRIPT FLUSH): NOSCRIPT, then EVAL */
	rep = redis_cmd(b->port, "SCRIPT FLUSH");
	CHECK(rep && rep->type == REDIS_REPLY_STATUS);
	if (rep)
		freeReplyObject(rep);
	CHECK(pd_store_count(s, "d", "x", 60, 1, T0, &n) == 0 && n == 2);
	CHECK(pd_store_members(s, "d", "m", "x", 60, T0, &n) == 0 && n == 1);
	pd_store_close(s);
	printf("redis: restarted server found again without reopening; NOSCRIPT handled\n");
}

/* test_redis_keys - keys are PREFIX NS:KIND:KEY with a TTL past their data's end (garbage
 * collection only) */
static void test_redis_keys(backend *b)
{
	pd_store *s = open_b(b);
	long long n;
	redisReply *rep;

	if (!s)
		return;
	rep = redis_cmd(b->port, "FLUSHALL");
	if (rep)
		freeReplyObject(rep);
	CHECK(pd_store_count(s, "ns1", "a:b", 160, 1, T0, &n) == 0);
	CHECK(pd_store_set(s, "ns1", "v", "x", 1, 100, T0) == 0);
	CHECK(pd_store_members(s, "ns1", "m", "x", 100, T0, &n) == 0);
	rep = redis_cmd(b->port, "TTL t:ns1:c:a:b");
	/* data end: bucket h + 17 begins (T0 + 170), then the slack; a Redis clock ahead of T0 */
	CHECK(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 3600 && rep->integer <= 3600 + 170);
	if (rep)
		freeReplyObject(rep);
	rep = redis_cmd(b->port, "GET t:ns1:v:v");
	CHECK(rep && rep->type == REDIS_REPLY_STRING && !strcmp(rep->str, "1700000100:x"));
	if (rep)
		freeReplyObject(rep);
	rep = redis_cmd(b->port, "ZSCORE t:ns1:m:m x");
	CHECK(rep && rep->type == REDIS_REPLY_STRING && !strcmp(rep->str, "1700000100"));
	if (rep)
		freeReplyObject(rep);
	rep = redis_cmd(b->port, "DBSIZE");
	CHECK(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 3);
	if (rep)
		freeReplyObject(rep);
	pd_store_close(s);
}

#define MASTER_NAME "pdmaster"

/* is_master - does the server on PORT say ROLE master (WANT 1) or slave (WANT 0)? */
static int is_master(int port, int want)
{
	redisReply *r = redis_cmd(port, "ROLE");
	int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
		 r->element[0]->type == REDIS_REPLY_STRING &&
		 !strcmp(r->element[0]->str, want ? "master" : "slave");

	if (r)
		freeReplyObject(r);
	return ok;
}

/* replica_synced - the replica on PORT is connected to its master (ROLE's 4th element) */
static int replica_synced(int port, int unused)
{
	redisReply *r = redis_cmd(port, "ROLE");
	int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 4 &&
		 r->element[3]->type == REDIS_REPLY_STRING && !strcmp(r->element[3]->str, "connected");

	if (r)
		freeReplyObject(r);
	return ok;
}

/* dbsize_is - the server on PORT holds N keys */
static int dbsize_is(int port, int n)
{
	redisReply *r = redis_cmd(port, "DBSIZE");
	int ok = r && r->type == REDIS_REPLY_INTEGER && r->integer == n;

	if (r)
		freeReplyObject(r);
	return ok;
}

/* failover_started - SENTINEL FAILOVER accepted by the sentinel on PORT */
static int failover_started(int port, int unused)
{
	redisReply *r = redis_cmd(port, "SENTINEL failover %s", MASTER_NAME);
	int ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "OK");

	if (r)
		freeReplyObject(r);
	return ok;
}

/* sentinel_names - the sentinel on PORT names MASTER (a port) as the master */
static int sentinel_names(int port, int master)
{
	redisReply *r = redis_cmd(port, "SENTINEL get-master-addr-by-name %s", MASTER_NAME);
	int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
		 r->element[1]->type == REDIS_REPLY_STRING && atoi(r->element[1]->str) == master;

	if (r)
		freeReplyObject(r);
	return ok;
}

/* wait_for - poll COND(A, B) every 50 ms for up to 30 s; 1 once it holds */
static int wait_for(int (*cond)(int, int), int a, int b)
{
	long long deadline = mono_ms() + 30000;

	while (mono_ms() < deadline) {
		if (cond(a, b))
			return 1;
		usleep(50000);
	}
	return 0;
}

/* test_sentinel - the master found through the sentinels (a dead one asked first), and followed
 * through a failover without reopening: the pooled connection to the demoted master answers
 * READONLY, the sentinels are asked again, the operation goes to the new master at once */
static void test_sentinel(void)
{
	static const char *const fast[] = {"--repl-diskless-sync-delay", "0", NULL};
	rsrv m = {0}, rep = {0}, sn = {0};
	char mp[16], conf[900], line[200], dead[40], live[40];
	const char *replica[] = {"--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1", mp, NULL};
	const char *const sentinels[] = {dead, live};
	pd_store_conf c = {.backend = "redis", .sentinels = sentinels, .n_sentinels = 2,
			   .master_name = MASTER_NAME, .prefix = "t:", .timeout_ms = 1000,
			   .connect_timeout_ms = 1000, .log = test_log};
	pd_store *s = NULL;
	long long n = 0;
	int res = 0;
	FILE *f;
	char err[300];
	redisReply *r;

	if (rs_start(&m, fast) != 0) {
		CHECK(0);
		return;
	}
	snprintf(mp, sizeof(mp), "%d", m.port);
	CHECK(rs_start(&rep, replica) == 0);
	CHECK(wait_for(replica_synced, rep.port, 0));
	sn.port = free_port();
	rs_dir(&sn);
	snprintf(conf, sizeof(conf), "%s/sentinel.conf", sn.dir);
	f = fopen(conf, "w");
	CHECK(f != NULL);
	if (!f)
		goto out;
	fprintf(f, "port %d\nbind 127.0.0.1\ndir %s\ndaemonize no\nlogfile %s/sentinel.log\n"
		"sentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 1000\n"
		"sentinel failover-timeout %s 2000\nsentinel parallel-syncs %s 1\n", sn.port, sn.dir, sn.dir,
		MASTER_NAME, m.port, MASTER_NAME, MASTER_NAME, MASTER_NAME);
	fclose(f);
	if (rs_exec(&sn, (const char *const[]){conf, "--sentinel", NULL}) != 0) {
		CHECK(0);
		goto out;
	}
	snprintf(dead, sizeof(dead), "127.0.0.1:%d", free_port());
	snprintf(live, sizeof(live), "127.0.0.1:%d", sn.port);
	log_clear();
	s = pd_store_open(&c, err, sizeof(err));
	CHECK(s != NULL);
	if (!s)
		goto out;
	CHECK(pd_store_count(s, "sn", "x", 60, 1, T0, &n) == 0 && n == 1);
	CHECK(pd_store_update(s, "sn", "rec", incr_fn, NULL, T0, &res) == 0 && record_value(s, "sn") == 1);
	snprintf(line, sizeof(line), "redis master %s at 127.0.0.1:%d (from sentinel 127.0.0.1:%d)",
		 MASTER_NAME, m.port, sn.port);
	CHECK(log_count(line) == 1);
	/* the replica has both writes (replication is asynchronous: a failover before it has them
	 * would lose them; WAIT works only on the connection that wrote) */
	CHECK(wait_for(dbsize_is, rep.port, 2));
	/* a forced failover; the old master demoted at once, as the sentinel would do later */
	CHECK(wait_for(failover_started, sn.port, 0));
	CHECK(wait_for(sentinel_names, sn.port, rep.port));
	CHECK(wait_for(is_master, rep.port, 1));
	r = redis_cmd(m.port, "REPLICAOF 127.0.0.1 %d", rep.port);
	if (r)
		freeReplyObject(r);
	CHECK(wait_for(is_master, m.port, 0));
	/* the same store: the next operations go to the new master, none fails */
	CHECK(pd_store_count(s, "sn", "x", 60, 1, T0, &n) == 0 && n == 2);
	CHECK(pd_store_update(s, "sn", "rec", incr_fn, NULL, T0, &res) == 0 && record_value(s, "sn") == 2);
	snprintf(line, sizeof(line), "redis master %s at 127.0.0.1:%d (from sentinel 127.0.0.1:%d)",
		 MASTER_NAME, rep.port, sn.port);
	CHECK(log_count(line) == 1);
	CHECK(log_count("redis down") == 0);
	printf("redis: sentinel: master found (a dead sentinel first), failover followed without "
	       "reopening\n");
out:
	pd_store_close(s);
	rs_stop(&sn);
	rs_stop(&rep);
	rs_stop(&m);
}
#endif

/* ---- cost per key ---- */

/* file_size - bytes of PATH, or -1 */
static long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* fill - N keys of kind KIND (c counters in one bucket, C in all 17, v 32-byte values, m one
 * member, M ten members); 0 or -1 */
static int fill(pd_store *s, int kind, int n)
{
	char k[64], m[64];
	long long x;

	for (int i = 0; i < n; i++) {
		int r = 0;

		snprintf(k, sizeof(k), "client:192.0.%d.%d", i / 256, i % 256);
		if (kind == 'c')
			r = pd_store_count(s, "cost", k, 3600, 1, T0 + i % 3600, &x);
		else if (kind == 'C')
			for (int j = 0; j <= PD_STORE_BUCKETS && !r; j++)
				r = pd_store_count(s, "cost", k, 3600, 1000, T0 + j * 225, &x);
		else if (kind == 'v')
			r = pd_store_set(s, "cost", k, "0123456789abcdef0123456789abcdef", 32, 86400, T0);
		else
			for (int j = 0; j < (kind == 'm' ? 1 : 10) && !r; j++) {
				snprintf(m, sizeof(m), "helo%d.mail.example.net", j);
				r = pd_store_members(s, "cost", k, m, 604800, T0, &x);
			}
		if (r)
			return -1;
	}
	return 0;
}

/* cost - bytes per key on each backend for N keys of each kind (ONLY: those letters, or NULL) */
static int cost(int n, const char *only)
{
	static const struct {
		int kind;
		const char *what;
	} kinds[] = {
		{'c', "counter (window 1 h, 1 bucket used)"},
		{'C', "counter (window 1 h, all 17 buckets)"},
		{'v', "value (32 bytes, TTL 1 d)"},
		{'m', "member set (1 member of 22 bytes)"},
		{'M', "member set (10 members of 22 bytes)"},
	};
	backend b = {.name = "gdbm"};

	printf("cost per key, %d keys of each kind (key \"client:192.0.X.Y\" in namespace \"cost\"):\n", n);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		pd_store *s;
		long long before;

		if (only && !strchr(only, kinds[i].kind))
			continue;
		gdbm_fresh(&b);
		s = open_b(&b);
		if (!s)
			return 1;
		before = file_size(b.path);
		if (fill(s, kinds[i].kind, n) != 0) {
			printf("gdbm: fill failed\n");
			pd_store_close(s);
			return 1;
		}
		pd_store_close(s);
		printf("  gdbm   %-38s %6.0f bytes/key (file %lld bytes, empty %lld)\n", kinds[i].what,
		       (double)(file_size(b.path) - before) / n, file_size(b.path), before);
	}
#ifdef HAVE_HIREDIS
	if ((redis_bin = find_redis()) != NULL) {
		backend r = {.name = "redis", .redis = 1};

		if (rs_start(&srv, NULL) != 0) {
			printf("cannot start redis-server\n");
			return 1;
		}
		r.port = srv.port;
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			pd_store *s;
			redisReply *rep;
			long long before, after;

			if (only && !strchr(only, kinds[i].kind))
				continue;
			s = open_b(&r);
			rep = redis_cmd(r.port, "FLUSHALL");
			if (rep)
				freeReplyObject(rep);
			if (!s)
				break;
			before = redis_info(r.port, "used_memory");
			if (fill(s, kinds[i].kind, n) != 0) {
				printf("redis: fill failed\n");
				pd_store_close(s);
				break;
			}
			after = redis_info(r.port, "used_memory");
			printf("  redis  %-38s %6.0f bytes/key (used_memory +%lld bytes)\n", kinds[i].what,
			       (double)(after - before) / n, after - before);
			pd_store_close(s);
		}
		rs_stop(&srv);
	} else {
		printf("  redis  (redis-server is not installed)\n");
	}
#endif
	return 0;
}

/* watchdog - SIGALRM: the suite hangs; kill the servers it started (by PID) and fail */
static void watchdog(int sig)
{
	static const char msg[] = "FAIL: the test did not finish in 600 s (a hang)\n";

	(void)sig;
	for (int i = 0; i < 16; i++)
		if (started[i] > 0) {
			kill(started[i], SIGCONT);
			kill(started[i], SIGKILL);
		}
	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

/* setup - the table's long strings */
static void setup(void)
{
	memset(key512, 'k', 512);
	memset(key513, 'k', 513);
	memset(ns65, 'n', 65);
	memset(member256, 'm', 256);
	for (int i = 0; i < PD_STORE_VALUE_MAX + 1; i++)
		big_value[i] = (char)('a' + i % 26);
}

/* cleanup - stop the private server, remove the temp dir */
static void cleanup(void)
{
#ifdef HAVE_HIREDIS
	rs_stop(&srv);
#endif
	rm_tree(tmpdir);
}

int main(int argc, char **argv)
{
	backend g = {.name = "gdbm"};
	const char *ran = "gdbm";

	self_path = argv[0];
	if (argc == 4 && !strcmp(argv[1], "--child-incr"))
		return child_incr(argv[2], atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "--child-clock"))
		return child_clock(argv[2], atoll(argv[3]));
	if (argc > 1 && !strcmp(argv[1], "-v"))
		verbose = 1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, watchdog);
	alarm(600); /* normally done in seconds; a hang must fail, not block make check */
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 99;
	}
	setup();
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "--cost")) {
		int r = cost(atoi(argv[2]) > 0 ? atoi(argv[2]) : 100000, argc == 4 ? argv[3] : NULL);

		cleanup();
		return r;
	}
	test_conf();
	gdbm_fresh(&g);
	test_table(&g);
	gdbm_fresh(&g);
	test_no_burst(&g);
	gdbm_fresh(&g);
	test_members_bound(&g);
	gdbm_fresh(&g);
	test_concurrency(&g);
	test_lock_held();
	test_clock_step();
	test_permission();
	test_corrupt();
	test_expire();
	test_compact();
	test_memory_flat();
#ifdef HAVE_HIREDIS
	if ((redis_bin = find_redis()) != NULL) {
		backend r = {.name = "redis", .redis = 1};

		if (rs_start(&srv, NULL) != 0) {
			printf("FAIL: cannot start %s\n", redis_bin);
			CHECK(0);
		} else {
			r.port = srv.port;
			ran = "gdbm and redis";
			test_table(&r);
			/* the same answers, so the same listing */
			CHECK(listings[0].n == listings[1].n && listings[0].n == 9);
			for (size_t i = 0; i < listings[0].n && i < listings[1].n; i++) {
				if (strcmp(listings[0].lines[i], listings[1].lines[i]))
					printf("FAIL listing line %zu: gdbm \"%s\", redis \"%s\"\n", i,
					       listings[0].lines[i], listings[1].lines[i]);
				CHECK(!strcmp(listings[0].lines[i], listings[1].lines[i]));
			}
			test_no_burst(&r);
			test_members_bound(&r);
			test_concurrency(&r);
			test_redis_keys(&r);
			test_redis_down(&r);
			rs_stop(&srv);
			test_sentinel();
		}
	} else {
		printf("redis: skipped (redis-server is not installed)\n");
	}
#else
	printf("redis: skipped (built without hiredis)\n");
#endif
	listing_free(&listings[0]);
	listing_free(&listings[1]);
	/* the cost measurement runs too, small: a full one is test_store --cost 100000 */
	cost(500, NULL);
	cleanup();
	printf("backends: %s\n", ran);
	return tap_done();
}
