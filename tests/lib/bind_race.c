/* bind_race.c - LD_PRELOAD shim for tests: right after a unix socket is bound, swap it for a symlink */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Plays the local user who may write the directory of policyd's socket
 * (Postfix's private/ belongs to user postfix) and wins the race between
 * bind() and whatever policyd does next by path: the new socket file is
 * renamed away and a symlink to $PD_RACE_VICTIM put in its place. A daemon
 * that then changes the socket's mode or owner by path changes the
 * victim's instead.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* bind - the real bind(), then the swap for AF_UNIX paths */
int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	static int (*real)(int, const struct sockaddr *, socklen_t);
	const char *victim = getenv("PD_RACE_VICTIM");
	int rc;

	if (!real)
		real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
	rc = real(fd, sa, len);
	if (rc == 0 && victim && sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
		char moved[sizeof(sun->sun_path) + 8];

		snprintf(moved, sizeof(moved), "%s.moved", sun->sun_path);
		if (rename(sun->sun_path, moved) == 0 && symlink(victim, sun->sun_path) == 0)
			fprintf(stderr, "bind_race: %s is now a symlink to %s\n", sun->sun_path, victim);
	}
	return rc;
}
