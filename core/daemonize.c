/* daemonize.c - going to the background: fork, tell the parent how start-up went, descriptor limits */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "daemonize.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* pd_daemonize - fork; the parent exits with the child's start-up status */
int pd_daemonize(void)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0 || (pid = fork()) < 0) {
		pd_log(PD_LOG_ERR, "cannot go to the background: %s", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		char st = 1;

		close(p[1]);
		if (read(p[0], &st, 1) != 1)
			st = 1;
		_exit(st);
	}
	close(p[0]);
	setsid();
	if (chdir("/") < 0)
		pd_log(PD_LOG_WARNING, "chdir /: %s", strerror(errno));
	{
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, STDIN_FILENO);
			dup2(fd, STDOUT_FILENO);
			if (fd > 2)
				close(fd);
		}
	}
	return p[1];
}

/* pd_tell_parent - report start-up status and detach stderr */
void pd_tell_parent(int fd, char status, int foreground)
{
	if (fd < 0)
		return;
	(void)!write(fd, &status, 1);
	close(fd);
	if (!foreground) {
		int nul = open("/dev/null", O_WRONLY);

		pd_log_set_stderr(0);
		if (nul >= 0) {
			dup2(nul, STDERR_FILENO);
			close(nul);
		}
	}
}

/* pd_raise_nofile - many smtpd processes keep connections open */
void pd_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}
