/* reload.c - SIGHUP: a new configuration built beside the running one, swapped in only on success */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "reload.h"
#include "conf.h"
#include "generation.h"
#include "log.h"

#include <string.h>

/* same_listeners - reload cannot rebind after privileges are gone */
static int same_listeners(const pd_conf *a, const pd_conf *b)
{
	if (a->n_listen != b->n_listen)
		return 0;
	for (size_t i = 0; i < a->n_listen; i++)
		if (strcmp(a->listen[i].text, b->listen[i].text) || strcmp(a->listen[i].chain, b->listen[i].chain))
			return 0;
	return 1;
}

/* pd_reload - SIGHUP: new generation beside the old, swapped only on success */
void pd_reload(const char *file, int verbose)
{
	pd_conf *n;
	const pd_conf *old = pd_gen_current();
	size_t held = pd_gen_retired_full();

	if (held) {
		pd_log(PD_LOG_ERR,
		       "SIGHUP: reload refused: %zu earlier configurations are still held by requests that have "
		       "not finished (a plugin that hangs? see \"no answer within its time budget\" above); "
		       "the current configuration stays in use; reload again later, or restart",
		       held);
		return;
	}
	pd_log(PD_LOG_INFO, "SIGHUP: reloading %s", file);
	n = pd_conf_load(file, verbose);
	if (!n) {
		pd_log(PD_LOG_ERR, "reload failed; the previous configuration stays in use");
		return;
	}
	if (!same_listeners(old, n))
		pd_log(PD_LOG_WARNING, "listen addresses changed: that takes a restart; keeping the current ones");
	if (n->threads != old->threads || n->io_threads != old->io_threads)
		pd_log(PD_LOG_WARNING, "threads/io_threads changed: that takes a restart");
	if (pd_conf_start(n) < 0) {
		pd_log(PD_LOG_ERR, "reload failed; the previous configuration stays in use");
		pd_conf_free(n);
		return;
	}
	pd_log_set_facility(n->facility);
	pd_log_set_socket(n->syslog_socket);
	pd_gen_swap(n);
	pd_log(PD_LOG_INFO, "reloaded %s", file);
}
