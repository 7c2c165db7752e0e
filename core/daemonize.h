/* daemonize.h - going to the background: fork, tell the parent how start-up went, descriptor limits */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_DAEMONIZE_H
#define PD_DAEMONIZE_H

/* Fork; the parent waits for the child's start-up status and exits with it.
 * Returns, in the child, the descriptor to report that status on. */
int pd_daemonize(void);
/* Report STATUS (0 ready, 1 failed) on FD (-1: nobody waits) and, unless
 * FOREGROUND, stop copying the log to stderr. */
void pd_tell_parent(int fd, char status, int foreground);
/* Raise the soft descriptor limit to the hard one (many smtpd connections). */
void pd_raise_nofile(void);

#endif
