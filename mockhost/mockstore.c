/* mockstore.c - the mock host's state service: the daemon's own store code on a private GDBM file */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * The mock host runs a plugin's store calls through the same adapter and
 * library the daemon uses (core/store_host.c, core/store.c with its GDBM
 * backend), so that a unit test sees the
 * real windows, TTLs and record updates, judged by mock_clock. The file
 * lives in a directory of its own under $TMPDIR (or /tmp), made at the
 * first call and removed when the test program exits.
 */
#include "config.h"
#include "mockstore.h"
#include "store.h"
#include "store_host.h"

#include <policyd/mockhost.h>

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pd_store *st;
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER; /* checks on several threads open it once */
static char dir[PATH_MAX], path[PATH_MAX];
static int failing, remote;

/* store_log - the store's lines on stderr, like the mock's log */
static void store_log(void *ctx, int level, const char *fmt, ...)
{
	va_list ap;

	(void)ctx;
	fprintf(stderr, "mockhost store [%d]: ", level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* cleanup - at exit: the file, its lock, the directory */
static void cleanup(void)
{
	char lock[PATH_MAX + 8];

	pd_store_host_release();
	pd_store_close(st);
	st = NULL;
	if (!path[0])
		return;
	snprintf(lock, sizeof(lock), "%s.lock", path);
	unlink(path);
	unlink(lock);
	rmdir(dir);
	path[0] = 0;
}

/* pd_store_host_resolve - the store, opened at the first call, and mock_clock; NULL when the
 * test made it fail or the plugin did not declare PD_PLUGIN_STATE */
pd_store *pd_store_host_resolve(const pd_instance *inst, int64_t *now)
{
	char err[512];
	pd_store_conf c = {.backend = "gdbm", .lock_timeout_ms = 1000, .log = store_log};

	*now = mock_clock;

	if (!mockstore_allowed(inst)) {
		inst->host->log(inst, PD_LOG_ERR, "plugin %s uses the state service without PD_PLUGIN_STATE in its flags",
				inst->plugin);
		return NULL;
	}
	if (failing) {
		inst->host->log(inst, PD_LOG_ERR, "state service down (mock_store_fail)");
		return NULL;
	}
	pthread_mutex_lock(&open_mu);
	if (st) {
		pthread_mutex_unlock(&open_mu);
		return st;
	}
	if (!dir[0]) {
		const char *tmp = getenv("TMPDIR");

		snprintf(dir, sizeof(dir), "%s/mockhost-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir)) {
			perror("mockhost: mkdtemp");
			dir[0] = 0;
			pthread_mutex_unlock(&open_mu);
			return NULL;
		}
		atexit(cleanup);
	}
	snprintf(path, sizeof(path), "%s/state.db", dir);
	c.path = path;
	st = pd_store_open(&c, err, sizeof(err));
	if (!st)
		fprintf(stderr, "mockhost: cannot open the store %s: %s\n", path, err);
	pthread_mutex_unlock(&open_mu);
	return st;
}

/* mock_store_reset - forget every entry */
void mock_store_reset(void)
{
	char keep[PATH_MAX];

	snprintf(keep, sizeof(keep), "%s", dir);
	cleanup();
	if (keep[0] && mkdir(keep, 0700) == 0)
		snprintf(dir, sizeof(dir), "%s", keep);
	else
		dir[0] = 0;
}

/* mock_store_fail - every call fails from now on (ON), or works again */
void mock_store_fail(int on)
{
	failing = on;
}

/* mock_store_set_remote - what host->store_remote answers */
void mock_store_set_remote(int on)
{
	remote = on;
}

int mockstore_remote(const pd_instance *inst)
{
	(void)inst;
	return remote;
}
