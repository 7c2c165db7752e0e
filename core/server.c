/* server.c - start and stop the serving machinery: generations, network threads, workers, metrics */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "server.h"
#include "dns.h"
#include "generation.h"
#include "listeners.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "workers.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t n_loops, n_workers;

/* pd_server_start - loops, workers, metrics */
int pd_server_start(pd_conf *c)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	pd_gen_init(c);
	n_loops = c->io_threads > 0 ? (size_t)c->io_threads : (size_t)(ncpu > 0 ? ncpu : 1);
	if (n_loops > PD_LOOPS_MAX)
		n_loops = PD_LOOPS_MAX;
	n_workers = (size_t)c->threads;
	if (pd_workers_start(n_workers) < 0 || pd_loops_start(n_loops) < 0)
		return -1;
	if (*c->metrics_listen && pd_metrics_start(c->metrics_listen) < 0)
		return -1;
	pd_log(PD_LOG_INFO, "serving with %zu network threads and %zu worker threads", n_loops, n_workers);
	return 0;
}

/* pd_server_stop - graceful stop */
int pd_server_stop(int grace_ms)
{
	int stuck;

	pd_loops_stop(grace_ms);
	stuck = pd_workers_stop();
	if (stuck) {
		pd_log(PD_LOG_ERR, "%d worker thread(s) still inside a plugin; exiting without running fini", stuck);
		return -1;
	}
	pd_loops_free();
	pd_listeners_close();
	pd_metrics_stop();
	pd_gen_free_all();
	return 0;
}

/* pd_server_stats - SIGUSR1: every metric to the log, one per line */
void pd_server_stats(void)
{
	size_t len;
	char *text = pd_metrics_render(&len), *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (line[0] != '#')
			pd_log(PD_LOG_INFO, "stats: %s", line);
	free(text);
}
