/* log.c - the logging ladder: syslog, and stderr in the foreground */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Syslog is spoken directly (RFC 3164 datagrams to /dev/log), not through
 * glibc's syslog(3): that one takes a process-wide lock, calls getpid()
 * twice and formats the time with localtime() on every line, and blocks
 * the caller when the syslog daemon falls behind. Here every thread
 * formats its own line (the time stamp cached per thread and second, the
 * pid cached and renewed after fork) and sends it with MSG_DONTWAIT on one
 * shared datagram socket: no lock, one system call per line. A line the
 * syslog daemon cannot take right now is dropped and counted, never
 * waited for; the count is reported in the next line that gets through.
 * A network thread batches its lines (pd_log_batch) and sends them with
 * one sendmmsg() per batch of events (pd_log_flush), so the syslog daemon
 * is woken once per batch rather than once per request.
 * A vanished syslog daemon (restart) is reconnected at most once a second.
 */
#include "config.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SL_DGRAM_MAX 2300 /* a formatted line: header + up to 2047 bytes of text */
#define SL_BATCH_MAX 32

#ifndef PD_SYSLOG_PATH
#define PD_SYSLOG_PATH "/dev/log"
#endif

static int log_stderr = 1;
static int log_verbose;
static int log_facility = LOG_MAIL;
static int log_syslog;
static char log_ident[32] = "policyd";
static char sl_path[108] = PD_SYSLOG_PATH; /* "" = no syslog */
static pid_t log_pid;                /* renewed in the child after fork */
static int sl_fd = -1;               /* datagram socket towards /dev/log */
static int sl_stream;                /* /dev/log is a stream socket */
static atomic_int sl_ok;             /* connected */
static atomic_llong sl_retry_at;     /* next reconnect attempt, monotonic s */
static atomic_ulong sl_dropped;      /* lines syslog could not take */
static pthread_mutex_t sl_mu = PTHREAD_MUTEX_INITIALIZER; /* (re)connecting only */

/* after_fork - the child logs with its own pid */
static void after_fork(void)
{
	log_pid = getpid();
}

/* mono_s - monotonic seconds */
static long long mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (long long)ts.tv_sec;
}

/* sl_connect - (re)connect the syslog socket; 0 when connected */
static int sl_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int rc = -1;

	pthread_mutex_lock(&sl_mu);
	if (atomic_load(&sl_ok)) {
		pthread_mutex_unlock(&sl_mu);
		return 0;
	}
	if (!*sl_path) { /* syslog turned off */
		atomic_store(&sl_retry_at, mono_s() + 1);
		pthread_mutex_unlock(&sl_mu);
		return -1;
	}
	memcpy(sa.sun_path, sl_path, sizeof(sl_path));
	if (sl_fd < 0)
		sl_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sl_fd >= 0 && connect(sl_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		rc = 0;
	} else if (sl_fd >= 0 && errno == EPROTOTYPE && !sl_stream) {
		/* a syslog daemon listening on a stream socket: frames end with NUL */
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			dup2(fd, sl_fd); /* keep the number other threads may be using */
			sl_stream = 1;
			rc = 0;
		}
		if (fd >= 0)
			close(fd);
	}
	atomic_store(&sl_ok, rc == 0);
	atomic_store(&sl_retry_at, mono_s() + 1);
	pthread_mutex_unlock(&sl_mu);
	return rc;
}

/* stamp - "Mmm dd hh:mm:ss" of NOW (local time) */
static const char *stamp(time_t now)
{
	static __thread char text[24];
	struct tm tm;

	if (!localtime_r(&now, &tm) || !strftime(text, sizeof(text), "%b %e %H:%M:%S", &tm))
		snprintf(text, sizeof(text), "Jan  1 00:00:00");
	return text;
}

/* sl_retry - reconnect now unless the last attempt was less than a second ago; 0 when connected */
static int sl_retry(void)
{
	return mono_s() >= atomic_load(&sl_retry_at) && sl_connect() == 0 ? 0 : -1;
}

/* sl_ready - is the socket connected (or reconnected now); counts a drop if not */
static int sl_ready(unsigned n)
{
	if (atomic_load_explicit(&sl_ok, memory_order_relaxed) || sl_retry() == 0)
		return 1;
	atomic_fetch_add_explicit(&sl_dropped, n, memory_order_relaxed);
	return 0;
}

/* sl_format - the datagram "<PRI>Mmm dd hh:mm:ss ident[pid]: line" into BUF; its length */
static size_t sl_format(char *buf, size_t size, int level, const char *line)
{
	static __thread char head[96]; /* "Mmm dd hh:mm:ss ident[pid]: ", per second */
	static __thread size_t head_len;
	static __thread time_t head_sec = -1;
	static __thread pid_t head_pid;
	time_t now = time(NULL);
	size_t n, len;

	if (now != head_sec || head_pid != log_pid) { /* a new second (or process): a new header */
		int k = snprintf(head, sizeof(head), "%s %s[%ld]: ", stamp(now), log_ident, (long)log_pid);

		head_len = k > 0 ? ((size_t)k < sizeof(head) ? (size_t)k : sizeof(head) - 1) : 0;
		head_sec = now;
		head_pid = log_pid;
	}
	n = (size_t)snprintf(buf, size, "<%d>", log_facility | level); /* at most 5 bytes */
	memcpy(buf + n, head, head_len);
	n += head_len;
	len = strnlen(line, size - 1 - n);
	memcpy(buf + n, line, len);
	n += len;
	buf[n] = 0;
	return n + (sl_stream ? 1 : 0); /* a stream frame ends with its NUL */
}

/* sl_failed - a send failed with errno: 1 if the socket was reconnected, so try again */
static int sl_failed(void)
{
	if (errno == EINTR)
		return 1;
	if (errno == EAGAIN || errno == ENOBUFS)
		return 0; /* the syslog daemon is behind: drop, never wait */
	/* the syslog daemon went away (restart): reconnect, at most once a second */
	atomic_store(&sl_ok, 0);
	return sl_retry() == 0;
}

static int sl_send(int level, const char *line);

/* sl_report_drops - say how many lines were lost, in the first line that gets through */
static void sl_report_drops(void)
{
	unsigned long dropped = atomic_load_explicit(&sl_dropped, memory_order_relaxed);

	if (dropped && atomic_compare_exchange_strong(&sl_dropped, &dropped, 0)) {
		char note[96];

		snprintf(note, sizeof(note), "%lu earlier log line(s) dropped: syslog could not take them", dropped);
		if (sl_send(LOG_WARNING, note) != 0) /* still full: keep the count for the next try */
			atomic_fetch_add_explicit(&sl_dropped, dropped, memory_order_relaxed);
	}
}

/* sl_send - one line to syslog now; dropped (and counted, -1) if it cannot go now */
static int sl_send(int level, const char *line)
{
	char buf[SL_DGRAM_MAX];
	size_t n;

	if (!sl_ready(1))
		return -1;
	sl_report_drops();
	n = sl_format(buf, sizeof(buf), level, line);
	for (int attempt = 0; attempt < 3; attempt++) {
		if (send(sl_fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return 0;
		if (!sl_failed())
			break;
	}
	atomic_fetch_add_explicit(&sl_dropped, 1, memory_order_relaxed);
	return -1;
}

/* A network thread's lines, sent together with one sendmmsg() when its
 * batch of events is done: the syslog daemon wakes once per batch, not
 * once per line. */
typedef struct log_batch {
	unsigned n;
	struct mmsghdr mm[SL_BATCH_MAX];
	struct iovec iov[SL_BATCH_MAX];
	char buf[SL_BATCH_MAX][SL_DGRAM_MAX];
} log_batch;

static __thread log_batch *tl_batch;

/* pd_log_flush - send this thread's batched lines */
void pd_log_flush(void)
{
	log_batch *b = tl_batch;
	unsigned off = 0;

	if (!b || !b->n)
		return;
	if (sl_ready(b->n)) {
		sl_report_drops();
		for (int attempt = 0; attempt < 3 && off < b->n;) {
			int k = sendmmsg(sl_fd, b->mm + off, b->n - off, MSG_DONTWAIT | MSG_NOSIGNAL);

			if (k > 0) {
				off += (unsigned)k;
				continue;
			}
			attempt++;
			if (!sl_failed())
				break;
		}
		if (off < b->n)
			atomic_fetch_add_explicit(&sl_dropped, b->n - off, memory_order_relaxed);
	}
	b->n = 0;
}

/* pd_log_batch - ON: this thread batches its syslog lines until pd_log_flush; OFF: flush and stop */
void pd_log_batch(int on)
{
	if (on && !tl_batch) {
		tl_batch = calloc(1, sizeof(*tl_batch));
		if (!tl_batch)
			return; /* unbatched, then */
		for (unsigned i = 0; i < SL_BATCH_MAX; i++) {
			tl_batch->iov[i].iov_base = tl_batch->buf[i];
			tl_batch->mm[i].msg_hdr.msg_iov = &tl_batch->iov[i];
			tl_batch->mm[i].msg_hdr.msg_iovlen = 1;
		}
	} else if (!on && tl_batch) {
		pd_log_flush();
		free(tl_batch);
		tl_batch = NULL;
	}
}

/* sl_line - a line to syslog: into this thread's batch, or sent now */
static void sl_line(int level, const char *line)
{
	log_batch *b = tl_batch;

	if (!b) {
		(void)sl_send(level, line);
		return;
	}
	if (b->n == SL_BATCH_MAX)
		pd_log_flush();
	b->iov[b->n].iov_len = sl_format(b->buf[b->n], SL_DGRAM_MAX, level, line);
	b->n++;
}

/* is_dev_null - is FD the null device (nobody reads what goes there) */
static int is_dev_null(int fd)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat("/dev/null", &b) == 0 && S_ISCHR(a.st_mode) && a.st_rdev == b.st_rdev;
}

/* register_fork - renew the cached pid in every child */
static void register_fork(void)
{
	pthread_atfork(NULL, NULL, after_fork);
}

/* pd_log_open - start logging to syslog (and stderr if asked) */
void pd_log_open(const char *ident, int facility, int to_stderr, int verbose)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	log_facility = facility;
	log_verbose = verbose;
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
	log_pid = getpid();
	pthread_once(&once, register_fork);
	pd_log_set_stderr(to_stderr);
	sl_connect();
	log_syslog = 1;
}

/* pd_log_set_stderr - turn the stderr copy on or off */
void pd_log_set_stderr(int on)
{
	log_stderr = on && !is_dev_null(STDERR_FILENO);
}

/* pd_log_set_facility - change the syslog facility (config reload) */
void pd_log_set_facility(int facility)
{
	log_facility = facility;
}

/* pd_log_set_socket - where syslog lines go; reconnects on the next line */
void pd_log_set_socket(const char *path)
{
	pthread_mutex_lock(&sl_mu);
	if (strcmp(path, sl_path) != 0) {
		snprintf(sl_path, sizeof(sl_path), "%s", path);
		if (sl_stream && sl_fd >= 0) { /* back to a datagram socket, same number */
			int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

			if (fd >= 0) {
				dup2(fd, sl_fd);
				close(fd);
			}
			sl_stream = 0;
		}
		atomic_store(&sl_ok, 0);
		atomic_store(&sl_retry_at, 0);
	}
	pthread_mutex_unlock(&sl_mu);
	if (*path)
		sl_connect();
}

/* pd_log_verbose - the -v count */
int pd_log_verbose(void)
{
	return log_verbose;
}

/* pd_log_facility - facility code by name, -1 if unknown */
int pd_log_facility(const char *name)
{
	static const struct {
		const char *name;
		int code;
	} tab[] = {
	    {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},     {"local0", LOG_LOCAL0},
	    {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},
	    {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcasecmp(tab[i].name, name) == 0)
			return tab[i].code;
	return -1;
}

/* level_name - short word for stderr lines */
static const char *level_name(int level)
{
	switch (level) {
	case LOG_CRIT:
		return "fatal: ";
	case LOG_ERR:
		return "error: ";
	case LOG_WARNING:
		return "warning: ";
	case LOG_DEBUG:
		return "debug: ";
	default:
		return "";
	}
}

/* pd_vlog - format once, send to syslog and (maybe) stderr in one write */
void pd_vlog(int level, const char *prefix, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	if (level == LOG_DEBUG && log_verbose < 1)
		return;
	n = snprintf(line, sizeof(line), "%s", prefix ? prefix : "");
	if (n < 0)
		n = 0;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* client data is escaped where it is logged (escape.h); whatever a
	 * format still let through, no raw control character reaches the log */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	pd_log_text(level, line);
}

/* pd_log_text - log a line that is already formatted (and made loggable) */
void pd_log_text(int level, const char *line)
{
	if (level == LOG_DEBUG && log_verbose < 1)
		return;
	if (log_syslog)
		sl_line(level, line);
	if (log_stderr) {
		char out[2200];
		int m = snprintf(out, sizeof(out), "%s[%ld]: %s%s\n", log_ident, (long)(log_pid ? log_pid : getpid()), level_name(level), line);

		if (m > 0)
			(void)!write(STDERR_FILENO, out, (size_t)m < sizeof(out) ? (size_t)m : sizeof(out) - 1);
	}
}

/* pd_log - log one line */
void pd_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pd_vlog(level, NULL, fmt, ap);
	va_end(ap);
}

/* pd_fatal - log and exit(1) */
void pd_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pd_vlog(LOG_CRIT, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
