/* server.h - serve the policy protocol: event loops, worker pool, spawn mode */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_SERVER_H
#define PD_SERVER_H

#include <stddef.h>

#include "conf.h"

/* Bind every listener of CONF (before privileges are dropped). 0 or -1. */
int pd_server_bind(const pd_conf *conf);

/* Start the event loops and workers serving CONF, which the server now
 * owns. 0 or -1 (logged). */
int pd_server_start(pd_conf *conf);

/* Serve NEWC from now on; the old generation is freed (its plugins'
 * fini run) once its in-flight requests are done. Call only when
 * pd_server_retired_full() is 0. */
void pd_server_swap(pd_conf *newc);

/* How many retired generations requests still hold, when that leaves no
 * room to retire another (a reload must be refused), else 0. */
size_t pd_server_retired_full(void);

/* The generation in use (for reload comparisons; main thread only). */
const pd_conf *pd_server_conf(void);

/* Free retired generations whose requests are done (main thread). */
void pd_server_reap(void);

/* Stop accepting, finish in-flight requests (at most GRACE_MS), close
 * everything, stop the threads and free every generation (plugins' fini).
 * Returns -1 if a worker is stuck in a plugin: then nothing is freed and
 * the caller should exit at once. */
int pd_server_stop(int grace_ms);

/* Log counters (SIGUSR1). */
void pd_server_stats(void);

/* Spawn mode: serve one connection on IN/OUT until EOF, idle timeout or
 * a protocol error. Returns 0 (normal end) or -1. */
int pd_spawn_serve(pd_conf *conf, int in, int out);

#endif
