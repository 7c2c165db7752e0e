/* spawn.c - spawn mode: one connection on stdin/stdout, as master.cf's spawn(8) runs it */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * The same pipeline as a daemon's connection: a loop on the main thread
 * (loop.c) with one connection whose reads come from IN and whose replies
 * go to OUT, and one worker thread for instances that may block; DNS waits
 * go through the loop like anywhere else. Timeouts (idle, read, request)
 * hold as they do for sockets.
 */
#include "config.h"
#include "spawn.h"
#include "conf_store.h"
#include "generation.h"
#include "log.h"
#include "loop.h"
#include "workers.h"

#include <time.h>

/* pd_spawn_serve - one connection, then the end */
int pd_spawn_serve(pd_conf *c, int in, int out)
{
	int rc;

	pd_gen_init(c);
	if (pd_workers_start(1) < 0) {
		pd_gen_free_all();
		return -1;
	}
	rc = pd_loop_run_one(in, out);
	pd_conf_stores_step(c->stores, c->n_stores, (int64_t)time(NULL)); /* no daemon may be expiring */
	if (pd_workers_stop() > 0) {
		pd_log(PD_LOG_ERR, "a worker thread is still inside a plugin; exiting without running fini");
		return -1;
	}
	pd_loops_free();
	pd_gen_free_all();
	return rc;
}
