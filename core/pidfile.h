/* pidfile.h - the pidfile: refuse a second start, write it safely, remove it at the end */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_PIDFILE_H
#define PD_PIDFILE_H

#include <sys/types.h>

/* 0, or -1 (logged) when the pidfile PATH ("" = none) names a live process:
 * run it before any listener is touched. */
int pd_pidfile_running(const char *path);
/* Write our pid into PATH, never through a symlink or a second name; a
 * directory created for it belongs to UID/GID. 0 or -1 (logged). */
int pd_pidfile_write(const char *path, uid_t uid, gid_t gid);
/* Remove it at the end; a failure is logged. */
void pd_pidfile_remove(const char *path);

#endif
