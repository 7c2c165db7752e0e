/* dunno-server.c - minimal epoll policy server answering DUNNO: the hardware ceiling reference */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * usage: dunno-server [-p PIDFILE] [-S SINKPATH] LISTEN...
 * LISTEN: HOST:PORT, [IPV6]:PORT, inet:..., unix:PATH
 * -S binds a unix datagram socket at SINKPATH and discards what arrives
 * there: a stand-in for a syslog daemon's /dev/log on machines without one
 * (the socket is removed on exit).
 * One thread, one epoll set, level-triggered. Every request (attributes
 * up to an empty line) is answered "action=DUNNO\n\n"; pipelined requests
 * are answered in order. A client that shuts down its side (Exim style)
 * gets its answers, then the connection is closed. SIGTERM/SIGINT stop it.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define BUF 65536		/* per-connection input buffer */
#define MAXL 16			/* listeners */

static const char reply[] = "action=DUNNO\n\n";
static volatile sig_atomic_t stopping;

struct conn {
	int fd;
	int listener;		/* 1 listening socket, 2 datagram sink */
	size_t len;
	char *buf;		/* allocated on first read */
};

/* remember a termination signal */
static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* print an error and exit */
static void
fail(const char *what, const char *arg)
{
	fprintf(stderr, "dunno-server: %s %s: %s\n", what, arg, strerror(errno));
	exit(1);
}

/* create a listening socket for spec; returns the fd */
static int
listen_on(const char *spec)
{
	char host[256], *port;
	int fd, one = 1;

	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un su;

		memset(&su, 0, sizeof(su));
		su.sun_family = AF_UNIX;
		if (strlen(spec + 5) >= sizeof(su.sun_path))
			fail("path too long", spec);
		strcpy(su.sun_path, spec + 5);
		unlink(su.sun_path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&su, sizeof(su)) < 0)
			fail("bind", spec);
	} else {
		struct addrinfo hints, *res;

		if (strncmp(spec, "inet:", 5) == 0)
			spec += 5;
		if (strlen(spec) >= sizeof(host))
			fail("too long", spec);
		if (spec[0] == '[') {
			char *e;

			strcpy(host, spec + 1);
			if ((e = strchr(host, ']')) == NULL || e[1] != ':') {
				errno = EINVAL;
				fail("bad address", spec);
			}
			*e = 0;
			port = e + 2;
		} else {
			strcpy(host, spec);
			if ((port = strrchr(host, ':')) == NULL) {
				errno = EINVAL;
				fail("bad address", spec);
			}
			*port++ = 0;
		}
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE;
		if (getaddrinfo(host, port, &hints, &res) != 0) {
			errno = EINVAL;
			fail("cannot resolve", spec);
		}
		fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd < 0)
			fail("socket", spec);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (res->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
			fail("bind", spec);
		freeaddrinfo(res);
	}
	if (listen(fd, 4096) < 0)
		fail("listen", spec);
	return fd;
}

/* answer every complete request in c's buffer; -1 to close */
static int
serve(struct conn *c)
{
	char out[4096];
	size_t outlen = 0, start = 0, i;

	for (i = 0; i + 1 < c->len; i++) {
		if (c->buf[i] == '\n' && c->buf[i + 1] == '\n') {
			if (outlen + sizeof(reply) > sizeof(out)) {
				if (write(c->fd, out, outlen) != (ssize_t)outlen)
					return -1;
				outlen = 0;
			}
			memcpy(out + outlen, reply, sizeof(reply) - 1);
			outlen += sizeof(reply) - 1;
			start = i + 2;
			i++;
		}
	}
	/* a short write is an error for this minimal server */
	if (outlen && write(c->fd, out, outlen) != (ssize_t)outlen)
		return -1;
	if (start) {
		memmove(c->buf, c->buf + start, c->len - start);
		c->len -= start;
	}
	return c->len == BUF ? -1 : 0;
}

int
main(int argc, char **argv)
{
	struct epoll_event ev[256], e;
	struct conn lst[MAXL];
	int ep, i, nl = 0, one = 1;
	const char *pidfile = NULL, *sink = NULL;
	struct rlimit rl;

	while (argc > 2 && argv[1][0] == '-') {
		if (strcmp(argv[1], "-p") == 0)
			pidfile = argv[2];
		else if (strcmp(argv[1], "-S") == 0)
			sink = argv[2];
		else
			break;
		argv += 2;
		argc -= 2;
	}
	if ((argc < 2 && sink == NULL) || argc - 1 > MAXL - 1) {
		fprintf(stderr, "usage: dunno-server [-p PIDFILE] [-S SINKPATH] "
		    "LISTEN...\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		fail("epoll", "");
	for (i = 1; i < argc; i++) {
		lst[nl].fd = listen_on(argv[i]);
		lst[nl].listener = 1;
		e.events = EPOLLIN;
		e.data.ptr = &lst[nl];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, lst[nl].fd, &e) < 0)
			fail("epoll_ctl", argv[i]);
		nl++;
	}
	if (sink) {
		struct sockaddr_un su;

		memset(&su, 0, sizeof(su));
		su.sun_family = AF_UNIX;
		if (strlen(sink) >= sizeof(su.sun_path))
			fail("path too long", sink);
		strcpy(su.sun_path, sink);
		lst[nl].fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (lst[nl].fd < 0 || bind(lst[nl].fd, (struct sockaddr *)&su,
		    sizeof(su)) < 0)
			fail("bind", sink);
		chmod(sink, 0666);
		lst[nl].listener = 2;
		e.events = EPOLLIN;
		e.data.ptr = &lst[nl];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, lst[nl].fd, &e) < 0)
			fail("epoll_ctl", sink);
		nl++;
	}
	if (pidfile) {
		FILE *f = fopen(pidfile, "w");

		if (f == NULL)
			fail("pidfile", pidfile);
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	while (!stopping) {
		int n = epoll_wait(ep, ev, 256, 500);

		for (i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;

			if (c->listener == 2) {
				char junk[8192];

				while (recv(c->fd, junk, sizeof(junk), 0) >= 0)
					;
				continue;
			}
			if (c->listener) {
				int fd;

				while ((fd = accept4(c->fd, NULL, NULL,
				    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct conn *nc = calloc(1, sizeof(*nc));

					if (nc == NULL) {
						close(fd);
						continue;
					}
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY,
					    &one, sizeof(one));
					nc->fd = fd;
					e.events = EPOLLIN;
					e.data.ptr = nc;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) {
						close(fd);
						free(nc);
					}
				}
				continue;
			}
			if (c->buf == NULL && (c->buf = malloc(BUF)) == NULL)
				goto drop;
			{
				ssize_t r = read(c->fd, c->buf + c->len,
				    BUF - c->len);

				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				if (r <= 0)
					goto drop;
				c->len += (size_t)r;
				if (serve(c) < 0)
					goto drop;
			}
			continue;
drop:
			close(c->fd);
			free(c->buf);
			free(c);
		}
	}
	if (pidfile)
		unlink(pidfile);
	if (sink)
		unlink(sink);
	return 0;
}
