/* util.c - allocators that never return NULL, clocks and small string helpers */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "util.h"
#include "log.h"
#include "escape.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* pd_oom - out of memory is not survivable: say so and abort */
static void pd_oom(size_t size)
{
	pd_log(PD_LOG_CRIT, "out of memory allocating %zu bytes", size);
	abort();
}

/* pd_xmalloc - malloc or die */
void *pd_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p)
		pd_oom(size);
	return p;
}

/* pd_xcalloc - calloc or die */
void *pd_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		pd_oom(n * size);
	return p;
}

/* pd_xrealloc - realloc or die */
void *pd_xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);

	if (!p)
		pd_oom(size);
	return p;
}

/* pd_xstrdup - strdup or die */
char *pd_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(pd_xmalloc(n), s, n);
}

/* pd_now_us - monotonic microseconds */
uint64_t pd_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* pd_line_str - append S, cut at the end of the buffer */
void pd_line_str(pd_line *l, const char *s)
{
	size_t n = strlen(s);

	if (n > l->cap - 1 - l->len)
		n = l->cap - 1 - l->len;
	memcpy(l->p + l->len, s, n);
	l->len += n;
	l->p[l->len] = 0;
}

/* pd_line_esc - append at most MAX bytes of client data S, escaped (escape.h), "..." when cut */
void pd_line_esc(pd_line *l, const char *s, size_t max, unsigned flags)
{
	l->len += pd_esc(l->p + l->len, l->cap - l->len, s, max, flags);
}

/* pd_line_uint - append a decimal number */
void pd_line_uint(pd_line *l, unsigned long long v)
{
	char tmp[24];
	size_t n = sizeof(tmp);

	tmp[--n] = 0;
	do
		tmp[--n] = (char)('0' + v % 10);
	while ((v /= 10) && n);
	pd_line_str(l, tmp + n);
}

/* pd_path_resolve - DIR/PATH unless PATH is absolute */
char *pd_path_resolve(const char *dir, const char *path)
{
	size_t dl, pl;
	char *out;

	if (path[0] == '/' || !dir || !*dir)
		return pd_xstrdup(path);
	dl = strlen(dir);
	pl = strlen(path);
	out = pd_xmalloc(dl + pl + 2);
	memcpy(out, dir, dl);
	out[dl] = '/';
	memcpy(out + dl + 1, path, pl + 1);
	return out;
}

/* pd_mkdir_p - create a directory and its parents */
int pd_mkdir_p(const char *dir, unsigned mode)
{
	char *p = pd_xstrdup(dir);
	int rc = 0;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			rc = -1;
			break;
		}
		*s = '/';
	}
	if (rc == 0 && mkdir(p, mode) < 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

/* unsafe_mode - may a user other than root and us change what ST describes?
 * A sticky directory (/tmp) is safe: its entries can only be renamed or
 * removed by their owners, and the entry under it is checked in turn. */
static const char *unsafe_mode(const struct stat *st)
{
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return "belongs to another user";
	if (S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX))
		return NULL;
	if (st->st_mode & S_IWOTH)
		return "writable by every user";
	if (st->st_mode & S_IWGRP)
		return "writable by its group";
	return NULL;
}

/* pd_path_safe - refuse files that a local user other than root (and the
 * user policyd runs as) could change: the file and every directory above
 * its real location, as OpenSSH's StrictModes does */
int pd_path_safe(const char *path, char *why, size_t whylen)
{
	char real[PATH_MAX], *slash;
	struct stat st;
	const char *bad;

	if (!realpath(path, real) || stat(real, &st) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if ((bad = unsafe_mode(&st))) {
		snprintf(why, whylen, "%s (uid %ld, mode %04o): refusing it (chown root, chmod go-w)", bad,
			 (long)st.st_uid, (unsigned)(st.st_mode & 07777));
		return -2;
	}
	while ((slash = strrchr(real, '/'))) {
		slash[slash == real ? 1 : 0] = 0;
		if (stat(real, &st) < 0) {
			snprintf(why, whylen, "%s: %s", real, strerror(errno));
			return -1;
		}
		if ((bad = unsafe_mode(&st))) {
			snprintf(why, whylen, "directory %s %s (uid %ld, mode %04o): refusing it", real, bad,
				 (long)st.st_uid, (unsigned)(st.st_mode & 07777));
			return -2;
		}
		if (slash == real)
			break;
	}
	return 0;
}
