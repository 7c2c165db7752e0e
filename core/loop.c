/* loop.c - network threads: one epoll loop each, with its timers and the requests handed back to it */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * A few network threads (one per core by default) each run an epoll loop
 * over their own connections; every loop also watches all listening
 * sockets (EPOLLEXCLUSIVE), so accepts spread across them. Everything a
 * loop watches is a pd_io whose ready() it calls; its timers (idle, read,
 * budget, DNS deadlines, the resolver's own) are one heap (timer.c).
 * Workers hand finished requests back through the loop's done list and
 * eventfd. Spawn mode runs one loop on the main thread for stdin/stdout.
 */
#include "config.h"
#include "loop.h"
#include "conf.h"
#include "conn.h"
#include "dns.h"
#include "generation.h"
#include "listeners.h"
#include "log.h"
#include "pipeline.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define MAX_WAIT_MS 500 /* a loop looks at its generation at least this often */

static pd_loop loops[PD_LOOPS_MAX];
static size_t n_loops;
static atomic_int stopping; /* grace in ms once pd_loops_stop was called */
static __thread pd_loop *self;

/* pd_loop_self - the loop of this thread */
pd_loop *pd_loop_self(void)
{
	return self;
}

/* pd_loop_watch - add FD to LP's epoll */
int pd_loop_watch(pd_loop *lp, int fd, uint32_t events, pd_io *io)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};

	return epoll_ctl(lp->ep, EPOLL_CTL_ADD, fd, &ev);
}

/* pd_loop_rewatch - change what LP watches FD for */
int pd_loop_rewatch(pd_loop *lp, int fd, uint32_t events, pd_io *io)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};

	return epoll_ctl(lp->ep, EPOLL_CTL_MOD, fd, &ev);
}

/* pd_loop_unwatch - FD off LP's epoll */
void pd_loop_unwatch(pd_loop *lp, int fd)
{
	epoll_ctl(lp->ep, EPOLL_CTL_DEL, fd, NULL);
}

/* pd_loop_post - a worker is done with R: wake its loop */
void pd_loop_post(pd_loop *lp, pd_request *r)
{
	uint64_t one = 1;

	pthread_mutex_lock(&lp->done_lock);
	r->qnext = lp->done;
	lp->done = r;
	pthread_mutex_unlock(&lp->done_lock);
	(void)!write(lp->efd, &one, sizeof(one));
}

/* wake_ready - the eventfd: resume what the workers finished */
static void wake_ready(pd_loop *lp, pd_io *io, uint32_t events)
{
	uint64_t v;
	pd_request *list;

	(void)io;
	(void)events;
	(void)!read(lp->efd, &v, sizeof(v));
	pthread_mutex_lock(&lp->done_lock);
	list = lp->done;
	lp->done = NULL;
	pthread_mutex_unlock(&lp->done_lock);
	while (list) {
		pd_request *r = list;

		list = r->qnext;
		pd_pipeline_resume(r);
	}
}

/* pd_loop_gen - LP's own reference, renewed (under the lock) only after a
 * swap, so that a request costs no lock */
pd_conf *pd_loop_gen(pd_loop *lp)
{
	unsigned seq = pd_gen_seq();

	if (!lp->gen || seq != lp->gen_seq) {
		if (lp->gen)
			pd_gen_release(lp->gen);
		lp->gen = pd_gen_acquire(&lp->gen_seq);
	}
	return lp->gen;
}

/* loop_setup - epoll and eventfd of a loop */
static int loop_setup(pd_loop *lp)
{
	memset(lp, 0, sizeof(*lp));
	lp->ep = epoll_create1(EPOLL_CLOEXEC);
	lp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	lp->wake.ready = wake_ready;
	pthread_mutex_init(&lp->done_lock, NULL);
	pd_timers_init(&lp->timers);
	if (lp->ep < 0 || lp->efd < 0 || pd_loop_watch(lp, lp->efd, EPOLLIN, &lp->wake) < 0) {
		pd_log(PD_LOG_ERR, "epoll: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* wait_ms - how long epoll may sleep: until the next timer, at most MAX_WAIT_MS */
static int wait_ms(pd_loop *lp, int unpolled)
{
	uint64_t next = pd_timers_next(&lp->timers), now;

	if (unpolled)
		return 0;
	if (next == UINT64_MAX)
		return MAX_WAIT_MS;
	now = pd_now_us();
	if (next <= now)
		return 0;
	return next - now >= MAX_WAIT_MS * 1000u ? MAX_WAIT_MS : (int)((next - now + 999) / 1000);
}

/* begin_stop - stop accepting; connections go as they become idle */
static void begin_stop(pd_loop *lp)
{
	if (lp->stopping)
		return;
	lp->stopping = 1;
	if (lp->listening)
		pd_listeners_watch(lp, 0);
	lp->listening = 0;
	lp->stop_deadline = pd_now_us() + (uint64_t)atomic_load(&stopping) * 1000u;
}

/* stop_done - stopping: close the idle connections; 1 when none is left
 * (and no worker holds a timed-out request) or the grace is over */
static int stop_done(pd_loop *lp)
{
	pd_conn *c = lp->head;

	while (c) {
		pd_conn *next = c->next;

		if (!c->busy && !c->out_len)
			pd_conn_close(c, NULL);
		c = next;
	}
	return (!lp->head && !lp->n_orphans) || pd_now_us() > lp->stop_deadline;
}

/* unpolled_input - spawn mode with a regular file on stdin: no epoll for it */
static int unpolled_input(pd_loop *lp)
{
	int any = 0;

	for (pd_conn *c = lp->head; c; c = c->next)
		if (!c->polled && !c->dead && !c->busy) {
			any = 1;
			pd_pipeline_input(c);
		}
	return any;
}

/* run - the loop itself; ONE: spawn mode, ends with its connection */
static void run(pd_loop *lp, int one)
{
	struct epoll_event evs[MAX_EVENTS];

	for (;;) {
		int n, unpolled = one && unpolled_input(lp);

		pd_conn_bury_all(lp);
		pd_log_flush(); /* the lines of the last batch, in one system call */
		n = epoll_wait(lp->ep, evs, MAX_EVENTS, wait_ms(lp, unpolled));
		if (atomic_load(&stopping))
			begin_stop(lp);
		for (int i = 0; i < n; i++) {
			pd_io *io = evs[i].data.ptr;

			io->ready(lp, io, evs[i].events);
		}
		(void)pd_loop_gen(lp); /* renewed here at least every MAX_WAIT_MS after a swap */
		pd_timers_run(&lp->timers, pd_now_us());
		pd_dns_loop_idle(lp);
		if (one && !lp->head && !lp->n_orphans)
			break;
		if (lp->stopping && stop_done(lp))
			break;
	}
	pd_conn_bury_all(lp);
	pd_log_flush();
}

/* loop_main - one network thread */
static void *loop_main(void *arg)
{
	pd_loop *lp = arg;

	self = lp;
	pd_log_batch(1);
	run(lp, 0);
	pd_log_batch(0);
	return NULL;
}

/* pd_loops_start - the network threads */
int pd_loops_start(size_t n)
{
	n_loops = n > PD_LOOPS_MAX ? PD_LOOPS_MAX : n;
	for (size_t i = 0; i < n_loops; i++) {
		if (loop_setup(&loops[i]) < 0)
			return -1;
		if (pd_listeners_watch(&loops[i], 1) < 0) {
			pd_log(PD_LOG_ERR, "epoll: %s", strerror(errno));
			return -1;
		}
		loops[i].listening = 1;
	}
	for (size_t i = 0; i < n_loops; i++)
		if (pthread_create(&loops[i].tid, NULL, loop_main, &loops[i]) != 0) {
			pd_log(PD_LOG_ERR, "cannot start network thread");
			return -1;
		}
	return 0;
}

/* pd_loops_wake - every loop looks around now */
void pd_loops_wake(void)
{
	for (size_t i = 0; i < n_loops; i++) {
		uint64_t one = 1;

		(void)!write(loops[i].efd, &one, sizeof(one));
	}
}

/* pd_loops_stop - graceful stop of the network threads */
void pd_loops_stop(int grace_ms)
{
	atomic_store(&stopping, grace_ms > 0 ? grace_ms : 1);
	pd_loops_wake();
	for (size_t i = 0; i < n_loops; i++)
		pthread_join(loops[i].tid, NULL);
}

/* loop_free - what a stopped loop still holds */
static void loop_free(pd_loop *lp)
{
	/* requests finished after the loop stopped, orphans included */
	while (lp->done) {
		pd_request *r = lp->done;
		pd_conn *c = r->conn;

		lp->done = r->qnext;
		c->busy = 0;
		c->on_worker = 0;
		if (c->orphaned) {
			pd_gen_release(r->gen);
			r->gen = NULL;
			pd_conn_bury(c);
		}
	}
	while (lp->head)
		pd_conn_close(lp->head, NULL);
	pd_conn_bury_all(lp);
	pd_dns_loop_free(lp);
	if (lp->gen)
		pd_gen_release(lp->gen);
	lp->gen = NULL;
	pd_timers_free(&lp->timers);
	close(lp->ep);
	close(lp->efd);
	pthread_mutex_destroy(&lp->done_lock);
}

/* pd_loops_free - after the workers stopped */
void pd_loops_free(void)
{
	for (size_t i = 0; i < n_loops; i++)
		loop_free(&loops[i]);
	n_loops = 0;
}

/* pd_loop_run_one - spawn mode: one connection on IN/OUT, on this thread */
int pd_loop_run_one(int in, int out)
{
	pd_loop *lp = &loops[0];
	int fl = fcntl(in, F_GETFL);

	n_loops = 1; /* pd_loops_wake reaches it; no listeners, no thread */
	if (loop_setup(lp) < 0)
		return -1;
	if (fl >= 0)
		fcntl(in, F_SETFL, fl | O_NONBLOCK);
	self = lp;
	if (!pd_conn_new(lp, in, out, NULL))
		return -1;
	run(lp, 1);
	return lp->bad_closes ? -1 : 0; /* the session ended on a protocol violation */
}
