/* util.h - allocators that never return NULL, clocks and small string helpers */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_UTIL_H
#define PD_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Allocate or die: on failure these log and abort, so callers never see NULL. */
void *pd_xmalloc(size_t size);
void *pd_xcalloc(size_t n, size_t size);
void *pd_xrealloc(void *ptr, size_t size);
char *pd_xstrdup(const char *s);

/* Monotonic clock in microseconds. */
uint64_t pd_now_us(void);

/* A bounded line under construction: appends past the end are cut off. */
typedef struct pd_line {
	char *p;
	size_t len, cap; /* cap includes the terminating NUL */
} pd_line;
void pd_line_str(pd_line *l, const char *s);                /* as is */
void pd_line_esc(pd_line *l, const char *s, size_t max, unsigned flags); /* client data: pd_esc() of at most MAX bytes */
void pd_line_uint(pd_line *l, unsigned long long v);

/* Join DIR and a possibly relative PATH into a fresh string: absolute
 * paths are returned as they are. */
char *pd_path_resolve(const char *dir, const char *path);

/* 0 if PATH, and every directory above its real location, belongs to root
 * or to us and no other user may write to it (sticky directories such as
 * /tmp excepted); -2 with the reason in WHY if another user could change
 * it; -1 with WHY (a system error) if it cannot be examined. */
int pd_path_safe(const char *path, char *why, size_t whylen);

/* mkdir -p: create DIR and its parents with MODE; 0 or -1 (errno set). */
int pd_mkdir_p(const char *dir, unsigned mode);

#endif
