/* serve.h - the serving process: privileges dropped, plugins started, the server run until a signal stops it */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_SERVE_H
#define PD_SERVE_H

#include <signal.h>
#include <sys/types.h>

#include "conf.h"

#define PD_WORKER_EXIT 2 /* a supervised serving process returning to main */

/* What the serving process needs to know. */
typedef struct pd_run_args {
	const char *conf_file;
	int verbose, foreground;
	pid_t master; /* the supervising process, or 0 */
	uid_t uid;
	gid_t gid;
	const sigset_t *sigs; /* taken synchronously: SIGHUP, SIGTERM, SIGINT, SIGUSR1 */
} pd_run_args;

/* Drop privileges, start C's plugins and the server, say READY_FD '0' (or
 * '1' on failure; -1: nobody waits), then take signals until SIGTERM:
 * SIGHUP reloads, SIGUSR1 logs the counters. Returns 0, or 1 (failed to
 * start, or a plugin still busy at the end). */
int pd_serve(pd_conf *c, const pd_run_args *a, int ready_fd);

#endif
