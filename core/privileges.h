/* privileges.h - who the daemon runs as: the user and group to drop to, dropping them for good */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_PRIVILEGES_H
#define PD_PRIVILEGES_H

#include <sys/types.h>

#include "conf.h"

/* The uid/gid of C's user and group; -1 each when the config names none. 0 or -1 (logged). */
int pd_priv_lookup(const pd_conf *c, uid_t *uid, gid_t *gid);
/* Warn when user UID/GID could not read FILE again (a reload after dropping privileges). */
void pd_priv_check_readable(const pd_conf *c, const char *file, uid_t uid, gid_t gid);
/* Become UID/GID for good (after binding); refuse to go on if root could be regained. 0 or -1. */
int pd_priv_drop(const pd_conf *c, uid_t uid, gid_t gid);

#endif
