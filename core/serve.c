/* serve.c - the serving process: privileges dropped, plugins started, the server run until a signal stops it */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "serve.h"
#include "daemonize.h"
#include "conf_store.h"
#include "generation.h"
#include "log.h"
#include "notify.h"
#include "privileges.h"
#include "reload.h"
#include "server.h"

#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define GRACE_MS 10000

/* housekeeping - the state service's expiry and sync, on the generation in use */
static void housekeeping(void)
{
	unsigned seq;
	pd_conf *g = pd_gen_acquire(&seq);

	if (g) {
		pd_conf_stores_tick(g->stores, g->n_stores, (int64_t)time(NULL));
		pd_gen_release(g);
	}
}

/* signals - the signal loop; returns 0, or 1 when a plugin was still busy at the end */
static int signals(const pd_run_args *a)
{
	for (;;) {
		struct timespec tick = {0, 200 * 1000 * 1000};
		int sig = sigtimedwait(a->sigs, NULL, &tick);

		if (a->master && getppid() != a->master) {
			pd_log(PD_LOG_ERR, "the master process is gone; stopping");
			break;
		}
		if (sig == SIGHUP) {
			pd_reload(a->conf_file, a->verbose);
		} else if (sig == SIGUSR1) {
			pd_server_stats();
		} else if (sig == SIGTERM || sig == SIGINT) {
			pd_log(PD_LOG_INFO, "%s: finishing in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
		pd_gen_reap();
		housekeeping();
	}
	if (pd_server_stop(GRACE_MS) < 0) {
		pd_log(PD_LOG_ERR, "stopped with a plugin still busy");
		return 1;
	}
	return 0;
}

/* pd_serve - the serving process's life */
int pd_serve(pd_conf *c, const pd_run_args *a, int ready_fd)
{
	if (pd_priv_drop(c, a->uid, a->gid) < 0) {
		pd_tell_parent(ready_fd, 1, 1);
		return 1;
	}
	/* changing credentials cleared the parent-death signal: arm it again */
	if (a->master && (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != a->master)) {
		pd_tell_parent(ready_fd, 1, 1);
		return 1;
	}
	if (pd_conf_start(c) < 0 || pd_server_start(c) < 0) {
		pd_tell_parent(ready_fd, 1, 1);
		return 1;
	}
	pd_log(PD_LOG_INFO, "policyd %s ready (%s)", PACKAGE_VERSION, a->conf_file);
	pd_tell_parent(ready_fd, 0, a->foreground);
	if (!c->supervise) /* else the master tells systemd */
		pd_notify("READY=1");
	return signals(a);
}
