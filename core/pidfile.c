/* pidfile.c - the pidfile: refuse a second start, write it safely, remove it at the end */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pidfile.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pd_pidfile_running(const char *path)
{
	char buf[32];
	int fd;
	ssize_t n;
	long pid;

	if (!*path || (fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	pid = strtol(buf, NULL, 10);
	if (pid > 0 && pid != getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
		pd_log(PD_LOG_ERR, "pidfile %s: policyd already runs as pid %ld", path, pid);
		return -1;
	}
	return 0;
}

static int pidfile_dir(const char *path, uid_t uid, gid_t gid)
{
	char *dir = pd_xstrdup(path);
	char *slash = strrchr(dir, '/');
	struct stat st;
	int rc = 0;

	if (slash && slash != dir) {
		*slash = 0;
		if (lstat(dir, &st) < 0 && errno == ENOENT) {
			int fd;

			if (pd_mkdir_p(dir, 0755) < 0 ||
			    (fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
				pd_log(PD_LOG_ERR, "pidfile %s: cannot create its directory: %s", path, strerror(errno));
				rc = -1;
			} else {
				if (uid != (uid_t)-1 && fchown(fd, uid, gid) < 0)
					pd_log(PD_LOG_WARNING, "pidfile directory %s: cannot change owner: %s", dir,
					       strerror(errno));
				close(fd);
			}
		}
	}
	free(dir);
	return rc;
}

int pd_pidfile_write(const char *path, uid_t uid, gid_t gid)
{
	char buf[32];
	struct stat st;
	int fd, n;

	if (!*path)
		return 0;
	if (pd_pidfile_running(path) < 0 || pidfile_dir(path, uid, gid) < 0)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
	if (fd < 0) {
		pd_log(PD_LOG_ERR, "pidfile %s: %s%s", path, strerror(errno),
		       errno == ELOOP ? " (a symbolic link: refusing to follow it)" : "");
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		pd_log(PD_LOG_ERR, "pidfile %s: not a plain file with one name; refusing to write it", path);
		close(fd);
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t)n) != n) {
		pd_log(PD_LOG_ERR, "pidfile %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* pd_pidfile_remove - at exit; a failure is logged, never silent */
void pd_pidfile_remove(const char *path)
{
	if (*path && unlink(path) < 0 && errno != ENOENT)
		pd_log(PD_LOG_WARNING, "pidfile %s: cannot remove it: %s", path, strerror(errno));
}
