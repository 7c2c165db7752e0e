/* notify.h - tell systemd about readiness, and take sockets it passes (no libsystemd needed) */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_NOTIFY_H
#define PD_NOTIFY_H

/* Send STATE ("READY=1", "STOPPING=1", ...) to $NOTIFY_SOCKET if set.
 * Quietly does nothing outside systemd. */
void pd_notify(const char *state);

/* Sockets passed by systemd socket activation ($LISTEN_PID, $LISTEN_FDS,
 * $LISTEN_FDNAMES): returns how many, starting at fd 3, and unsets the
 * variables. NAMES[i] gets the i-th FileDescriptorName (or NULL). */
int pd_listen_fds(const char **names, int max);

#endif
