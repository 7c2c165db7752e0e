/* server.h - start and stop the serving machinery: generations, network threads, workers, metrics */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_SERVER_H
#define PD_SERVER_H

#include "conf.h"

/* Serve CONF (its plugins started) on the bound listeners: network threads,
 * worker threads, the metrics listener. The server owns CONF now. 0 or -1. */
int pd_server_start(pd_conf *conf);

/* Stop accepting, finish in-flight requests (at most GRACE_MS), close
 * everything, stop the threads and free every generation (plugins' fini).
 * Returns -1 if a worker is stuck in a plugin: then nothing is freed and the
 * caller should exit at once. */
int pd_server_stop(int grace_ms);

/* Log every counter (SIGUSR1). */
void pd_server_stats(void);

#endif
