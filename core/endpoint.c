/* endpoint.c - listening endpoints in Postfix notation: parse one, bind it */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "endpoint.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
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

/* socket_in_use - does a server accept connections on the unix socket PATH? */
static int socket_in_use(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		return 0;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	/* accepted, or its backlog is full: somebody listens; refused: a stale file */
	rc = rc == 0 || errno == EAGAIN || errno == EINPROGRESS;
	close(fd);
	return rc;
}

/* bind_private - bind FD inside the private directory TDFD as "s": through
 * /proc/self/fd, so that no path a local user can change is followed; 0 or -1 */
static int bind_private(int fd, int tdfd, const char *tdpath)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	snprintf(sun.sun_path, sizeof(sun.sun_path), "/proc/self/fd/%d/s", tdfd);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return 0;
	if (errno != ENOENT || strlen(tdpath) + 3 > sizeof(sun.sun_path))
		return -1;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/s", tdpath); /* no /proc (a chroot) */
	return bind(fd, (struct sockaddr *)&sun, sizeof(sun));
}

/* listen_unix - bind a unix socket with mode and owner. The socket is bound
 * in a fresh directory only we can enter, given its mode and owner there
 * (never following a symlink), and renamed into place: a user who may write
 * the socket's directory (Postfix's private/) cannot make us chmod or chown
 * another file. A socket file that still accepts connections is never
 * replaced (a second policyd on the same config must not take the running
 * one's socket away); a stale one is. */
static int listen_unix(const pd_endpoint *ep, const char *text, unsigned mode, uid_t uid, gid_t gid)
{
	char dir[sizeof(ep->path)], tdname[32], tdpath[sizeof(ep->path) + 32];
	const char *base, *step = "socket";
	struct stat st;
	int fd = -1, dfd = -1, tdfd = -1, made = 0, renamed = 0;

	/* replace a stale socket, but never another kind of file, nor a live one */
	if (lstat(ep->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			pd_log(PD_LOG_ERR, "listen %s: %s exists and is not a socket", text, ep->path);
			return -1;
		}
		if (socket_in_use(ep->path)) {
			pd_log(PD_LOG_ERR,
			       "listen %s: %s is in use by a running server (another policyd with this config?); "
			       "not replacing it",
			       text, ep->path);
			return -1;
		}
	}
	snprintf(dir, sizeof(dir), "%s", ep->path);
	base = strrchr(ep->path, '/');
	if (base) {
		dir[base - ep->path] = 0;
		base++;
		if (!dir[0])
			strcpy(dir, "/");
	} else {
		strcpy(dir, ".");
		base = ep->path;
	}
	if (!*base) {
		pd_log(PD_LOG_ERR, "listen %s: the socket path names a directory", text);
		return -1;
	}
	step = "open directory";
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto fail;
	step = "private directory";
	for (int i = 0; i < 100 && !made; i++) {
		unsigned r;

		if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
			r = (unsigned)getpid() * 2654435761u + (unsigned)i;
		snprintf(tdname, sizeof(tdname), ".policyd.%08x", r);
		if (mkdirat(dfd, tdname, 0700) == 0)
			made = 1;
		else if (errno != EEXIST)
			goto fail;
	}
	if (!made)
		goto fail;
	snprintf(tdpath, sizeof(tdpath), "%s/%s", dir, tdname);
	if ((tdfd = openat(dfd, tdname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		goto fail;
	if (fstat(tdfd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 0077)) {
		errno = EPERM; /* somebody swapped our fresh directory for theirs */
		goto fail;
	}
	step = "socket";
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	step = "bind";
	if (bind_private(fd, tdfd, tdpath) < 0)
		goto fail;
	step = "mode";
	if (fchmodat(tdfd, "s", mode, AT_SYMLINK_NOFOLLOW) < 0)
		goto fail;
	step = "owner";
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchownat(tdfd, "s", uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		goto fail;
	step = "listen";
	if (listen(fd, 1024) < 0)
		goto fail;
	step = "rename into place";
	if (renameat(tdfd, "s", dfd, base) < 0)
		goto fail;
	renamed = 1;
	unlinkat(dfd, tdname, AT_REMOVEDIR);
	close(tdfd);
	close(dfd);
	return fd;
fail:
	pd_log(PD_LOG_ERR, "listen %s: %s: %s", text, step, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (tdfd >= 0) {
		if (!renamed)
			unlinkat(tdfd, "s", 0);
		close(tdfd);
	}
	if (made)
		unlinkat(dfd, tdname, AT_REMOVEDIR);
	if (dfd >= 0)
		close(dfd);
	return -1;
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
