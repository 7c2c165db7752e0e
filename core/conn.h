/* conn.h - connections: their life on a loop, their buffers and timers, socket I/O */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_CONN_H
#define PD_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "proto.h"
#include "request.h"
#include "route.h"
#include "timer.h"

struct pd_listener;

typedef struct pd_conn {
	pd_io io;
	int fd;                 /* the socket; stdin in spawn mode */
	int wfd;                /* where replies go: fd, or stdout in spawn mode */
	int polled;             /* fd is on the loop's epoll (a regular file cannot be) */
	pd_loop *lp;
	const struct pd_listener *ls; /* NULL in spawn mode */
	const char *listener_chain;   /* the listener's chain ("default") */
	int close_after_reply;  /* one request per connection */
	char *in;               /* bytes read, not parsed yet */
	size_t in_len, in_cap;
	char out[PD_REPLY_MAX + 16]; /* the reply being sent */
	size_t out_len, out_off;
	unsigned busy : 1;      /* its request is with a worker or waits for DNS */
	unsigned on_worker : 1; /* ... with a worker: only the worker may touch it */
	unsigned orphaned : 1;  /* answered on timeout and closed; freed when the worker is done */
	unsigned closing : 1;   /* close as soon as the pending reply is out */
	unsigned dead : 1;      /* closed: freed after the current batch of events */
	unsigned eof : 1;       /* the client sent everything it will send */
	unsigned drained : 1;   /* a short read emptied the socket: no recv until the next event */
	unsigned rdhup : 1;     /* the peer half-closed: read on to the end of input */
	unsigned want_out : 1;  /* EPOLLOUT armed */
	uint64_t last_us;       /* last activity (the idle timer compares with it) */
	uint64_t rq_start;      /* when the request being read began to arrive; 0: none */
	pd_timer idle_timer, read_timer, budget_timer;
	pd_request req;         /* the request in flight */
	pd_route_memo memo;     /* the chain of the current message's first recipient */
	struct pd_conn *prev, *next; /* the loop's open connections */
	struct pd_conn *gnext;       /* the loop's graveyard */
} pd_conn;

/* A new connection on LP for descriptors FD (read) and WFD (write), from
 * listener LS (NULL: spawn mode), watched by LP's epoll. NULL (logged) if it
 * cannot be watched. */
pd_conn *pd_conn_new(pd_loop *lp, int fd, int wfd, const struct pd_listener *ls);

/* Close a connection no worker holds (WHY: a debug line, or NULL); its
 * memory goes after the current batch of events. */
void pd_conn_close(pd_conn *c, const char *why);
/* Take C off its loop and close its socket, keeping the memory (a worker
 * still holds its request); pd_conn_bury frees it after the batch. */
void pd_conn_detach(pd_conn *c);
void pd_conn_bury(pd_conn *c);
/* Free the connections buried during the batch. */
void pd_conn_bury_all(pd_loop *lp);

/* Activity: the idle timer starts again. */
void pd_conn_touch(pd_conn *c);

/* Read what the socket has into C's buffer (at least LIM's line length):
 * 1 the buffer filled up (more may wait, and with EPOLLET no new event
 * comes for it), 0 read out for now, -1 a hard error. */
int pd_conn_read(pd_conn *c, const pd_limits *lim);
/* Send what is pending: 1 all out, 0 it would block (EPOLLOUT armed), -1 an error. */
int pd_conn_flush(pd_conn *c);

#endif
