/* workers.c - the worker pool: threads for the plugin instances that may block */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Only instances that said blocking = 1 at init run here (a third party's
 * plugin, a backend that waits on the network); everything that only waits
 * for DNS stays on the network threads (dns.c). A request whose time budget
 * ran out while it waited in the queue is dropped, not run late: it was
 * answered on_error already (issue 12.7).
 */
#include "config.h"
#include "workers.h"
#include "chain.h"
#include "conf.h"
#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static pthread_t *threads;
static size_t n_threads;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pd_request *head, *tail;
static int stop;
static unsigned long drops_unlogged; /* under lock */
static uint64_t drops_since;         /* when the first of them was dropped */

/* note_drops - log the dropped requests once the queue is empty, or once a
 * second under sustained overload (lock held) */
static void note_drops(int queue_empty)
{
	if (!drops_unlogged || (!queue_empty && pd_now_us() - drops_since < 1000000u))
		return;
	pd_log(PD_LOG_WARNING,
	       "dropped %lu request(s) whose time budget ran out while they waited for a worker "
	       "(all %zu worker threads busy: raise threads, or see which plugin is slow); on_error applied",
	       drops_unlogged, n_threads);
	drops_unlogged = 0;
}

/* expired - has R outlived request_timeout while it waited? */
static int expired(const pd_request *r)
{
	uint64_t now = pd_now_us();

	return now > r->t0 && now - r->t0 > (uint64_t)r->gen->request_timeout * 1000000u;
}

/* worker_main - run chains from where a blocking instance comes */
static void *worker_main(void *arg)
{
	(void)arg;
	for (;;) {
		pd_request *r;

		pthread_mutex_lock(&lock);
		note_drops(!head);
		while (!head && !stop)
			pthread_cond_wait(&cond, &lock);
		if (!head) {
			pthread_mutex_unlock(&lock);
			return NULL;
		}
		r = head;
		head = r->qnext;
		if (!head)
			tail = NULL;
		if (expired(r)) { /* answered on_error already, or about to be: never run it late */
			if (!drops_unlogged++)
				drops_since = pd_now_us();
			pthread_mutex_unlock(&lock);
			pd_metric_add(PD_M_DROPPED, 1);
			pd_reply_set(&r->res.reply, r->gen->on_error);
			r->res.plugin = "timeout";
			r->chain_rc = PD_CHAIN_DONE;
		} else {
			pthread_mutex_unlock(&lock);
			r->chain_rc = pd_chain_run(r->chain, r, r->gen->default_action, r->gen->on_error, 1);
		}
		pd_loop_post(r->conn->lp, r);
	}
}

/* pd_workers_start - the threads */
int pd_workers_start(size_t n)
{
	n_threads = n;
	threads = pd_xcalloc(n ? n : 1, sizeof(*threads));
	for (size_t i = 0; i < n; i++)
		if (pthread_create(&threads[i], NULL, worker_main, NULL) != 0) {
			pd_log(PD_LOG_ERR, "cannot start worker thread");
			n_threads = i;
			return -1;
		}
	return 0;
}

/* pd_workers_queue - hand R to the pool */
void pd_workers_queue(pd_request *r)
{
	r->qnext = NULL;
	pthread_mutex_lock(&lock);
	if (tail)
		tail->qnext = r;
	else
		head = r;
	tail = r;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

/* pd_workers_stop - finish and join */
int pd_workers_stop(void)
{
	struct timespec deadline;
	int stuck = 0;

	pthread_mutex_lock(&lock);
	stop = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	/* a worker stuck in a plugin is not waited for past a short delay (on the monotonic clock:
	 * a wall-clock step must not make it 0 or hours) */
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 2;
	for (size_t i = 0; i < n_threads; i++)
		if (pthread_clockjoin_np(threads[i], NULL, CLOCK_MONOTONIC, &deadline) != 0)
			stuck++;
	if (!stuck) {
		free(threads);
		threads = NULL;
		n_threads = 0;
	}
	return stuck;
}
