/* notify.c - tell systemd about readiness, and take sockets it passes (no libsystemd needed) */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "notify.h"
#include "log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* pd_notify - one datagram to the service manager */
void pd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = 0; /* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0)
		pd_log(PD_LOG_WARNING, "cannot notify systemd (%s)", path);
	close(fd);
}

/* pd_listen_fds - adopt the sockets of systemd socket activation */
int pd_listen_fds(const char **names, int max)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	static char namebuf[1024];
	int n;

	if (!pid || !fds || atol(pid) != (long)getpid())
		return 0;
	n = atoi(fds);
	if (n < 0)
		n = 0;
	if (n > max)
		n = max;
	for (int i = 0; i < n; i++) {
		names[i] = NULL;
		fcntl(3 + i, F_SETFD, FD_CLOEXEC);
		fcntl(3 + i, F_SETFL, fcntl(3 + i, F_GETFL) | O_NONBLOCK);
	}
	if (getenv("LISTEN_FDNAMES")) {
		char *save = NULL, *tok;
		int i = 0;

		strncpy(namebuf, getenv("LISTEN_FDNAMES"), sizeof(namebuf) - 1);
		for (tok = strtok_r(namebuf, ":", &save); tok && i < n; tok = strtok_r(NULL, ":", &save))
			names[i++] = tok;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return n;
}
