/* proxy.c - the proxy plugin: ask another policy server (inet or unix, Postfix protocol) and pass its answer on */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * proxy { server = "inet:127.0.0.1:10023" connections = 8 timeout = 5 }
 * Each check sends the request's attributes, as Postfix sent them, to the
 * server and waits for its "action=..." answer, which becomes the
 * plugin's reply (DUNNO lets the chain go on, anything else decides as
 * from any plugin). The connections are kept open in a small pool, one
 * request in flight on each, as Postfix does; a connection that failed,
 * timed out or that the server closed is dropped and the next request
 * opens a new one. One exchange (waiting for a free connection,
 * connecting, writing, reading the answer) is bounded by the section's
 * timeout (the core's filter of that name, seconds; 0: 5 s), less a
 * margin so that the plugin answers before the core's own cut. When the
 * server cannot be asked the check returns PD_CHECK_ERROR (the core's
 * on_error applies); the plugin logs when an outage begins and when the
 * server answers again, not every failed request. It waits on the
 * network, so it runs on the worker threads (inst->blocking = 1).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <policyd/plugin.h>

#define DEFAULT_TIMEOUT_MS 5000 /* when the section's timeout is 0 */
#define MARGIN_MS 200           /* answer this much before the core's cut at timeout */
#define ANSWER_MAX 4096         /* longest answer read (the action is at most PD_REPLY_MAX) */
#define REQ_STACK 8192          /* requests up to this size are built on the stack */
#define SERVER_MAX 300          /* longest server option */
#define CONNS_MAX 256

static cfg_opt_t options[] = {
    CFG_STR("server", "", CFGF_NONE),
    CFG_INT("connections", 8, CFGF_NONE),
    CFG_END(),
};

/* per instance */
struct proxy {
	char server[SERVER_MAX + 1]; /* as configured, for the logs */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned timeout_ms; /* one exchange */
	unsigned max;        /* connections at most */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a connection was given back */
	int *idle;         /* open connections nobody uses, a stack */
	unsigned n_idle;
	unsigned n_open;   /* idle + in use + being opened */
	atomic_int down;   /* the last exchange failed: an outage is under way */
	atomic_ulong failed; /* exchanges failed during this outage */
	atomic_ulong asked, connects;
};

/* now_ms - monotonic milliseconds */
static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* parse_server - "inet:HOST:PORT", "inet:[V6]:PORT" or "unix:/PATH" into its parts; NULL, or why not */
static const char *parse_server(const char *s, char *host, size_t hostcap, char *port, size_t portcap, int *is_unix)
{
	const char *hp, *colon;
	size_t hl;

	if (strncmp(s, "unix:", 5) == 0) {
		*is_unix = 1;
		if (s[5] != '/')
			return "a unix socket needs an absolute path: unix:/path";
		if (strlen(s + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return "the socket path is too long";
		snprintf(host, hostcap, "%s", s + 5);
		return NULL;
	}
	*is_unix = 0;
	if (strncmp(s, "inet:", 5) != 0)
		return "expected inet:HOST:PORT or unix:/PATH";
	hp = s + 5;
	if (*hp == '[') {
		const char *end = strchr(hp, ']');

		if (!end || end[1] != ':')
			return "expected inet:[IPv6]:PORT";
		hp++;
		hl = (size_t)(end - hp);
		colon = end + 1;
	} else {
		colon = strrchr(hp, ':');
		if (!colon || memchr(hp, ':', (size_t)(colon - hp)))
			return "expected inet:HOST:PORT (an IPv6 address in [])";
		hl = (size_t)(colon - hp);
	}
	if (hl == 0 || hl >= hostcap)
		return "no host, or a host name too long";
	memcpy(host, hp, hl);
	host[hl] = 0;
	colon++;
	if (!*colon || strlen(colon) >= portcap || strspn(colon, "0123456789") != strlen(colon) || atol(colon) < 1 ||
	    atol(colon) > 65535)
		return "the port must be a number from 1 to 65535";
	snprintf(port, portcap, "%s", colon);
	return NULL;
}

/* proxy_validate - server is a Postfix policy server address; connections within bounds */
static int proxy_validate(cfg_t *sec)
{
	const char *s = cfg_getstr(sec, "server"), *why;
	char host[256], port[8];
	long n = cfg_getint(sec, "connections");
	int is_unix;

	if (!*s) {
		cfg_error(sec, "proxy: server: give the policy server, e.g. \"inet:127.0.0.1:10023\" or "
			       "\"unix:/var/run/postgrey.sock\"");
		return -1;
	}
	if (strlen(s) > SERVER_MAX || (why = parse_server(s, host, sizeof(host), port, sizeof(port), &is_unix))) {
		cfg_error(sec, "proxy: server \"%.100s\": %s", s, strlen(s) > SERVER_MAX ? "too long" : why);
		return -1;
	}
	if (n < 1 || n > CONNS_MAX) {
		cfg_error(sec, "proxy: connections = %ld: must be between 1 and %d", n, CONNS_MAX);
		return -1;
	}
	return 0;
}

/* resolve - the server's socket address (a host name is resolved once, here); -1 after logging */
static int resolve(pd_instance *inst, struct proxy *p)
{
	char host[256], port[8];
	int is_unix, rc;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;

	if (parse_server(p->server, host, sizeof(host), port, sizeof(port), &is_unix)) {
		inst->host->log(inst, PD_LOG_ERR, "server \"%s\": not a policy server address", p->server);
		return -1;
	}
	if (is_unix) {
		struct sockaddr_un *un = (struct sockaddr_un *)&p->addr;

		un->sun_family = AF_UNIX;
		if (strlen(host) >= sizeof(un->sun_path)) { /* validate said so already */
			inst->host->log(inst, PD_LOG_ERR, "server \"%s\": the socket path is too long", p->server);
			return -1;
		}
		memcpy(un->sun_path, host, strlen(host) + 1);
		p->addrlen = sizeof(*un);
		return 0;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		inst->host->log(inst, PD_LOG_ERR, "server \"%s\": %s", p->server, gai_strerror(rc));
		return -1;
	}
	memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
	p->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* proxy_init - the server's address, the pool (empty: connections open on demand), the time bound */
static int proxy_init(pd_instance *inst)
{
	struct proxy *p = calloc(1, sizeof(*p));
	cfg_opt_t *t = cfg_getopt(inst->cfg, "timeout"); /* the core's filter (absent on a bare section) */
	long secs = t ? cfg_opt_getnint(t, 0) : 0;
	pthread_condattr_t ca;

	if (!p) {
		inst->host->log(inst, PD_LOG_ERR, "out of memory");
		return -1;
	}
	snprintf(p->server, sizeof(p->server), "%s", cfg_getstr(inst->cfg, "server"));
	p->max = (unsigned)cfg_getint(inst->cfg, "connections");
	p->timeout_ms = secs > 0 ? (unsigned)secs * 1000u - MARGIN_MS : DEFAULT_TIMEOUT_MS;
	p->idle = calloc(p->max ? p->max : 1, sizeof(*p->idle));
	if (!p->idle || !p->max || resolve(inst, p) < 0) {
		if (!p->idle || !p->max)
			inst->host->log(inst, PD_LOG_ERR, "out of memory, or no connections allowed");
		free(p->idle);
		free(p);
		return -1;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	inst->data = p;
	inst->blocking = 1; /* it waits on the network: the worker threads run it */
	inst->host->log(inst, PD_LOG_INFO, "asking %s, up to %u connection(s), %u ms per exchange", p->server, p->max,
			p->timeout_ms);
	return 0;
}

/* conn_get - an idle connection (*FD >= 0), or the right to open one (*FD = -1); -1 if none before DEADLINE */
static int conn_get(struct proxy *p, uint64_t deadline, int *fd)
{
	int rc = 0;

	pthread_mutex_lock(&p->mu);
	while (p->n_idle == 0 && p->n_open >= p->max) {
		uint64_t at = deadline;
		struct timespec ts = {.tv_sec = (time_t)(at / 1000u), .tv_nsec = (long)(at % 1000u) * 1000000L};

		if (now_ms() >= deadline || pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT) {
			if (p->n_idle == 0 && p->n_open >= p->max) {
				rc = -1;
				break;
			}
		}
	}
	if (rc == 0) {
		if (p->n_idle > 0) {
			*fd = p->idle[--p->n_idle];
		} else {
			*fd = -1;
			p->n_open++;
		}
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* conn_put - give FD back to the pool, or (FD < 0) the slot of a connection that was closed */
static void conn_put(struct proxy *p, int fd)
{
	pthread_mutex_lock(&p->mu);
	if (fd >= 0)
		p->idle[p->n_idle++] = fd;
	else
		p->n_open--;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* wait_fd - poll FD for EVENTS until DEADLINE; 1 ready, 0 timed out, -1 error */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ms();
		struct pollfd pfd = {.fd = fd, .events = events};
		int rc;

		if (now >= deadline)
			return 0;
		rc = poll(&pfd, 1, (int)(deadline - now > INT_MAX ? INT_MAX : deadline - now));
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

/* open_conn - a new non-blocking connection to the server by DEADLINE; the fd, or -1 with WHY */
static int open_conn(struct proxy *p, uint64_t deadline, char *why, size_t whylen)
{
	int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int err = 0, one = 1;
	socklen_t el = sizeof(err);

	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	if (p->addr.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&p->addr, p->addrlen) < 0) {
		if (errno != EINPROGRESS && errno != EAGAIN) {
			snprintf(why, whylen, "connect: %s", strerror(errno));
			close(fd);
			return -1;
		}
		switch (wait_fd(fd, POLLOUT, deadline)) {
		case 0:
			snprintf(why, whylen, "connect: no answer within %u ms", p->timeout_ms);
			close(fd);
			return -1;
		case -1:
			snprintf(why, whylen, "connect: poll: %s", strerror(errno));
			close(fd);
			return -1;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
			snprintf(why, whylen, "connect: %s", strerror(err ? err : errno));
			close(fd);
			return -1;
		}
	}
	atomic_fetch_add(&p->connects, 1);
	return fd;
}

/* stale - has the server closed (or written on) this idle connection? */
static int stale(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};

	return poll(&pfd, 1, 0) != 0;
}

/* send_all - write LEN bytes of BUF by DEADLINE; 0, or -1 with WHY */
static int send_all(int fd, const char *buf, size_t len, uint64_t deadline, unsigned ms, char *why, size_t whylen)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			snprintf(why, whylen, "write: %s", strerror(errno));
			return -1;
		}
		if (wait_fd(fd, POLLOUT, deadline) != 1) {
			snprintf(why, whylen, "write: not done within %u ms", ms);
			return -1;
		}
	}
	return 0;
}

/* read_answer - read up to the empty line into BUF (CAP) by DEADLINE; its length, 0 on EOF or reset before any byte, -1 with WHY */
static ssize_t read_answer(int fd, char *buf, size_t cap, uint64_t deadline, unsigned ms, char *why, size_t whylen)
{
	size_t len = 0;

	for (;;) {
		ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);

		if (n > 0) {
			len += (size_t)n;
			buf[len] = 0;
			if (len >= 2 && strstr(buf, "\n\n"))
				return (ssize_t)len;
			if (len >= cap - 1) {
				snprintf(why, whylen, "answer longer than %d bytes", ANSWER_MAX - 1);
				return -1;
			}
			continue;
		}
		if (n == 0) {
			if (len == 0)
				return 0;
			snprintf(why, whylen, "the server closed the connection in the middle of its answer");
			return -1;
		}
		if (errno == EINTR)
			continue;
		if ((errno == ECONNRESET || errno == EPIPE) && len == 0)
			return 0; /* closed before it answered, as with EOF (a server that had closed sends RST) */
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			snprintf(why, whylen, "read: %s", strerror(errno));
			return -1;
		}
		if (wait_fd(fd, POLLIN, deadline) != 1) {
			snprintf(why, whylen, "no answer within %u ms", ms);
			return -1;
		}
	}
}

/* parse_answer - the action of a complete answer BUF (LEN bytes) into ACTION; 0, or -1 with WHY */
static int parse_answer(char *buf, size_t len, char *action, size_t cap, char *why, size_t whylen)
{
	char *end = strstr(buf, "\n\n"), *line, *save = NULL;
	int found = 0;

	if ((size_t)(end + 2 - buf) != len) {
		snprintf(why, whylen, "the server sent more than one answer");
		return -1;
	}
	end[1] = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(line);

		if (n && line[n - 1] == '\r')
			line[--n] = 0;
		if (strncmp(line, "action=", 7) != 0 || found)
			continue; /* other attributes are not part of the protocol's answer: ignored */
		line += 7;
		n -= 7;
		if (!n || n >= cap || *line == ' ' || *line == '\t') {
			snprintf(why, whylen, "the server's action is %s", n ? "too long or starts with a space" : "empty");
			return -1;
		}
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) {
				snprintf(why, whylen, "the server's action holds a control character");
				return -1;
			}
		memcpy(action, line, n + 1);
		found = 1;
	}
	if (!found) {
		snprintf(why, whylen, "the server's answer has no action= line");
		return -1;
	}
	return 0;
}

/* build_request - the request's attributes as "name=value" lines and the empty line; the buffer (STACKBUF or malloc'd), NULL if out of memory */
static char *build_request(const pd_host *h, const pd_request *req, char *stackbuf, size_t *lenp)
{
	size_t n = h->attr_count(req), len = 1;
	const char *name, *value;
	char *buf, *o;
	int have_request = h->attr(req, "request") != NULL;

	if (!have_request)
		len += sizeof("request=smtpd_access_policy\n") - 1;
	for (size_t i = 0; i < n; i++)
		if (h->attr_at(req, i, &name, &value) == 0)
			len += strlen(name) + strlen(value) + 2;
	buf = len <= REQ_STACK ? stackbuf : malloc(len);
	if (!buf)
		return NULL;
	o = buf;
	if (!have_request)
		o += sprintf(o, "request=smtpd_access_policy\n");
	for (size_t i = 0; i < n; i++) {
		size_t nl, vl;

		if (h->attr_at(req, i, &name, &value) != 0)
			continue;
		nl = strlen(name);
		vl = strlen(value);
		memcpy(o, name, nl);
		o[nl] = '=';
		memcpy(o + nl + 1, value, vl);
		o[nl + 1 + vl] = '\n';
		o += nl + vl + 2;
	}
	*o++ = '\n';
	*lenp = (size_t)(o - buf);
	return buf;
}

/* exchange - one request and its answer on a connection from the pool by DEADLINE; 0 with ACTION, or -1 with WHY */
static int exchange(struct proxy *p, const char *msg, size_t len, uint64_t deadline, char *action, size_t cap,
		    char *why, size_t whylen)
{
	char buf[ANSWER_MAX];
	int fd, reused;
	ssize_t n;

	if (conn_get(p, deadline, &fd) < 0) {
		snprintf(why, whylen, "all %u connection(s) busy for %u ms", p->max, p->timeout_ms);
		return -1;
	}
	for (int attempt = 0;; attempt++) {
		reused = fd >= 0;
		if (reused && stale(fd)) { /* closed by the server while idle: a new one */
			close(fd);
			fd = -1;
			reused = 0;
		}
		if (fd < 0 && (fd = open_conn(p, deadline, why, whylen)) < 0)
			break;
		if (send_all(fd, msg, len, deadline, p->timeout_ms, why, whylen) < 0) {
			if (reused && attempt == 0) { /* closed under us: once more on a new one */
				close(fd);
				fd = -1;
				continue;
			}
			break;
		}
		n = read_answer(fd, buf, sizeof(buf), deadline, p->timeout_ms, why, whylen);
		if (n == 0 && reused && attempt == 0) { /* the server closed an idle connection just now: once more, as Postfix does */
			close(fd);
			fd = -1;
			continue;
		}
		if (n == 0)
			snprintf(why, whylen, "the server closed the connection without an answer");
		if (n <= 0 || parse_answer(buf, (size_t)n, action, cap, why, whylen) < 0)
			break;
		conn_put(p, fd);
		return 0;
	}
	if (fd >= 0)
		close(fd); /* a failed connection is never reused: its state is unknown */
	conn_put(p, -1);
	return -1;
}

/* proxy_check - ask the server; its action is our reply, a failure is PD_CHECK_ERROR */
static int proxy_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	struct proxy *p = inst->data;
	const pd_host *h = inst->host;
	char stackbuf[REQ_STACK], action[PD_REPLY_MAX + 1], why[256];
	size_t len = 0;
	uint64_t deadline = now_ms() + p->timeout_ms;
	char *msg = build_request(h, req, stackbuf, &len);
	int rc;

	if (!msg) {
		h->log(inst, PD_LOG_ERR, "out of memory");
		return PD_CHECK_ERROR;
	}
	atomic_fetch_add(&p->asked, 1);
	rc = exchange(p, msg, len, deadline, action, sizeof(action), why, sizeof(why));
	if (msg != stackbuf)
		free(msg);
	if (rc < 0) {
		unsigned long n = atomic_fetch_add(&p->failed, 1) + 1;

		if (!atomic_exchange(&p->down, 1))
			h->log(inst, PD_LOG_WARNING, "server %s: %s; on_error applies until it answers again", p->server,
			       why);
		else if (inst->verbose)
			h->log(inst, PD_LOG_DEBUG, "server %s: %s (%lu failed in this outage)", p->server, why, n);
		return PD_CHECK_ERROR;
	}
	if (atomic_exchange(&p->down, 0))
		h->log(inst, PD_LOG_NOTICE, "server %s answers again, after %lu failed request(s)", p->server,
		       atomic_exchange(&p->failed, 0));
	if (strncasecmp(action, "DUNNO", 5) == 0 && (!action[5] || action[5] == ' ')) {
		if (inst->verbose)
			h->log(inst, PD_LOG_DEBUG, "server %s answered: %s", p->server, action);
	} else {
		h->log(inst, PD_LOG_INFO, "server %s answered: %s", p->server, action);
	}
	h->reply(reply, "%s", action);
	return PD_CHECK_OK;
}

/* proxy_fini - close the pool's connections */
static void proxy_fini(pd_instance *inst)
{
	struct proxy *p = inst->data;

	if (!p)
		return;
	inst->host->log(inst, PD_LOG_INFO, "asked %s %lu time(s) over %lu connection(s)", p->server,
			(unsigned long)atomic_load(&p->asked), (unsigned long)atomic_load(&p->connects));
	for (unsigned i = 0; i < p->n_idle; i++)
		close(p->idle[i]);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->idle);
	free(p);
	inst->data = NULL;
}

const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "proxy",
    .version = "1.0",
    .description = "asks another policy server (inet or unix) and passes its answer on",
    .default_states = "RCPT",
    .options = options,
    .validate = proxy_validate,
    .init = proxy_init,
    .check = proxy_check,
    .fini = proxy_fini,
};
