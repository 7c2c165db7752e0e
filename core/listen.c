/* listen.c - listening endpoints in Postfix notation: parse, bind */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "listen.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* parse_flags - words after the address */
static int parse_flags(const char *flags, pd_endpoint *ep, const char **why)
{
	char buf[128], *save = NULL;

	if (strlen(flags) >= sizeof(buf)) {
		*why = "too many flags";
		return -1;
	}
	strcpy(buf, flags);
	for (char *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (strcmp(w, "close_after_reply") == 0) {
			ep->close_after_reply = 1;
		} else {
			*why = "unknown flag (known: close_after_reply)";
			return -1;
		}
	}
	return 0;
}

/* pd_endpoint_parse - Postfix-style endpoint text, then flags */
int pd_endpoint_parse(const char *full, pd_endpoint *ep, const char **why)
{
	char text[512];
	const char *rest = text;
	const char *colon;
	size_t hl, al = strcspn(full, " \t");

	memset(ep, 0, sizeof(*ep));
	if (al >= sizeof(text)) {
		*why = "address too long";
		return -1;
	}
	memcpy(text, full, al);
	text[al] = 0;
	if (full[al] && parse_flags(full + al, ep, why) < 0)
		return -1;
	if (strncmp(text, "unix:", 5) == 0 || text[0] == '/') {
		rest = text[0] == '/' ? text : text + 5;
		if (!*rest) {
			*why = "unix socket path is empty";
			return -1;
		}
		if (strlen(rest) >= sizeof(ep->path)) {
			*why = "unix socket path too long (107 bytes at most)";
			return -1;
		}
		ep->is_unix = 1;
		strcpy(ep->path, rest);
		return 0;
	}
	if (strncmp(text, "inet:", 5) == 0)
		rest = text + 5;
	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');

		if (!close || close[1] != ':') {
			*why = "expected inet:[IPv6]:port";
			return -1;
		}
		hl = (size_t)(close - rest - 1);
		if (hl >= sizeof(ep->host)) {
			*why = "host too long";
			return -1;
		}
		memcpy(ep->host, rest + 1, hl);
		colon = close + 1;
	} else {
		colon = strrchr(rest, ':');
		if (!colon) {
			*why = "expected inet:host:port or unix:/path";
			return -1;
		}
		hl = (size_t)(colon - rest);
		if (hl >= sizeof(ep->host) || memchr(rest, ':', hl)) {
			*why = "IPv6 addresses go in brackets: inet:[::1]:port";
			return -1;
		}
		memcpy(ep->host, rest, hl);
	}
	if (!colon[1] || strlen(colon + 1) >= sizeof(ep->port)) {
		*why = "missing or bad port";
		return -1;
	}
	strcpy(ep->port, colon + 1);
	return 0;
}

/* listen_unix - bind a unix socket with mode and owner */
static int listen_unix(const pd_endpoint *ep, const char *text, unsigned mode, uid_t uid, gid_t gid)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		pd_log(PD_LOG_ERR, "listen %s: socket: %s", text, strerror(errno));
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, ep->path);
	/* replace a stale socket, but never another kind of file */
	if (lstat(ep->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			pd_log(PD_LOG_ERR, "listen %s: %s exists and is not a socket", text, ep->path);
			close(fd);
			return -1;
		}
		unlink(ep->path);
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(ep->path, mode) < 0 ||
	    ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(ep->path, uid, gid) < 0) || listen(fd, 1024) < 0) {
		pd_log(PD_LOG_ERR, "listen %s: %s", text, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* listen_inet - bind a TCP socket (IPv4 or IPv6) */
static int listen_inet(const pd_endpoint *ep, const char *text)
{
	struct addrinfo hints, *res, *ai;
	int rc, fd = -1, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(ep->host[0] ? ep->host : NULL, ep->port, &hints, &res);
	if (rc != 0) {
		pd_log(PD_LOG_ERR, "listen %s: %s", text, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
			break;
		rc = errno;
		close(fd);
		fd = -1;
		errno = rc;
	}
	if (fd < 0)
		pd_log(PD_LOG_ERR, "listen %s: %s", text, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

/* pd_endpoint_listen - bind an endpoint */
int pd_endpoint_listen(const pd_endpoint *ep, const char *text, unsigned mode, uid_t uid, gid_t gid)
{
	return ep->is_unix ? listen_unix(ep, text, mode, uid, gid) : listen_inet(ep, text);
}
