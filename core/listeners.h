/* listeners.h - the daemon's listening sockets: bound before privileges go, watched by every loop */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_LISTENERS_H
#define PD_LISTENERS_H

#include "loop.h"

struct pd_conf;

typedef struct pd_listener {
	pd_io io;              /* ready: accept (accept.c) */
	int fd;
	int close_after_reply; /* flag close_after_reply: one request per connection */
	char *text;            /* as configured, for log lines */
	char *chain;           /* the chain it selects */
	char *unix_path;       /* removed at stop; NULL for inet and systemd sockets */
} pd_listener;

/* Bind every listener of CONF, or take the sockets systemd passed; 0 or -1 (logged). */
int pd_listeners_bind(const struct pd_conf *conf);
/* Add (ON) or remove LP's interest in every listener (EPOLLEXCLUSIVE, so
 * that accepts spread over the loops); -1 when one cannot be added. */
int pd_listeners_watch(pd_loop *lp, int on);
/* Close them, removing the unix socket files. */
void pd_listeners_close(void);

#endif
