/* loop.h - network threads: one epoll loop each, with its timers and the requests handed back to it */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_LOOP_H
#define PD_LOOP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "timer.h"

struct pd_conf;
struct pd_conn;
struct pd_dns_loop;
typedef struct pd_request pd_request;
typedef struct pd_loop pd_loop;
typedef struct pd_io pd_io;

/* Anything a loop's epoll watches: a listener, a connection, the wake-up
 * eventfd, a resolver socket. READY runs on the loop's thread. */
struct pd_io {
	void (*ready)(pd_loop *lp, pd_io *io, uint32_t events);
};

struct pd_loop {
	pthread_t tid;
	int ep;                  /* epoll */
	int efd;                 /* eventfd: workers and swaps wake the loop */
	pd_io wake;
	pthread_mutex_t done_lock;
	pd_request *done;        /* requests workers finished (under done_lock) */
	struct pd_conn *graveyard; /* closed during this batch of events: freed after it */
	struct pd_conn *head;    /* open connections */
	size_t n_conns;
	size_t n_orphans;        /* timed-out requests a worker still holds */
	unsigned long bad_closes; /* connections closed for a protocol violation (spawn mode's exit status) */
	pd_timers timers;
	pd_timer accept_timer;   /* out of descriptors: accepting paused until it fires */
	int accept_paused;
	int listening;           /* watches the listeners */
	int stopping;            /* pd_loops_stop was called: no new connections */
	uint64_t stop_deadline;
	struct pd_conf *gen;     /* the generation this loop reads with (one reference) */
	unsigned gen_seq;
	struct pd_dns_loop *dns; /* its resolvers (dns.c), created on first use */
};

/* The loop running on this thread, or NULL (a worker thread, the main thread). */
pd_loop *pd_loop_self(void);

/* Watch FD on LP's epoll for EVENTS (EPOLLIN ...) with IO; change; stop. 0 or -1 (errno). */
int pd_loop_watch(pd_loop *lp, int fd, uint32_t events, pd_io *io);
int pd_loop_rewatch(pd_loop *lp, int fd, uint32_t events, pd_io *io);
void pd_loop_unwatch(pd_loop *lp, int fd);

/* A request a worker finished (any thread): LP's thread resumes it. */
void pd_loop_post(pd_loop *lp, pd_request *r);

/* The current generation as LP sees it (renewed only after a swap). */
struct pd_conf *pd_loop_gen(pd_loop *lp);

/* Start N network threads (N <= PD_LOOPS_MAX) watching the listeners; 0 or -1. */
#define PD_LOOPS_MAX 64
int pd_loops_start(size_t n);
/* Wake every loop (a swap: they let go of the old generation). */
void pd_loops_wake(void);
/* Stop accepting, close idle connections, wait at most GRACE_MS for the
 * busy ones, then join the threads. */
void pd_loops_stop(int grace_ms);
/* After the workers stopped: free what the loops still hold. */
void pd_loops_free(void);

/* Spawn mode: a loop on the calling thread serving one connection on the
 * descriptors IN and OUT until it ends; no listeners. */
int pd_loop_run_one(int in, int out);

#endif
