/* workers.h - the worker pool: threads for the plugin instances that may block */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_WORKERS_H
#define PD_WORKERS_H

#include <stddef.h>

#include "request.h"

/* Start N worker threads; 0 or -1 (logged). */
int pd_workers_start(size_t n);
/* Hand R to the pool (its connection's loop gets it back with pd_loop_post). */
void pd_workers_queue(pd_request *r);
/* Let the workers finish and join them, waiting at most about 2 s for one
 * stuck in a plugin; returns how many are still stuck (then nothing may be
 * freed: the caller exits at once). */
int pd_workers_stop(void);

#endif
