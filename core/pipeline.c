/* pipeline.c - the request pipeline of a connection: read, parse, route, check, answer */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * A request travels one way: the connection's bytes are read (conn.c) and
 * parsed here into attributes (proto.c); a complete request is routed to a
 * chain (route.c) and checked by its plugins (chain.c) on the network
 * thread, on a worker thread where an instance may block (workers.c), or,
 * when a plugin waits for DNS (dns.c), again once its answers are in; the
 * one finish path (finish.c) sends the reply, counts and logs it. A
 * connection has at most one request in flight, as Postfix sends them.
 */
#include "config.h"
#include "pipeline.h"
#include "conf.h"
#include "escape.h"
#include "finish.h"
#include "log.h"
#include "metrics.h"
#include "route.h"
#include "util.h"
#include "workers.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>

#define CONN_OF(t, field) ((pd_conn *)((char *)(t) - offsetof(pd_conn, field)))
#define BUDGET_STEP_US 100000u /* a plugin's own timeout is looked at this often */

/* request_ok - only smtpd_access_policy requests are served */
static int request_ok(const pd_attrs *a)
{
	const char *r = pd_attrs_get(a, "request");
	char buf[80];

	if (r && strcmp(r, "smtpd_access_policy") == 0)
		return 1;
	pd_esc(buf, sizeof(buf), r ? r : "(none)", 64, PD_ESC_TOKEN);
	pd_log(PD_LOG_WARNING, "unknown request type \"%s\"; closing the connection", buf);
	return 0;
}

/* pd_over_budget - the request's time budget, or its plugin's, ran out */
int pd_over_budget(uint64_t now, uint64_t t0, int request_timeout, int running, uint64_t since, int pt)
{
	if (now > t0 && now - t0 > (uint64_t)request_timeout * 1000000u)
		return 1;
	return running && pt > 0 && now > since && now - since > (uint64_t)pt * 1000000u;
}

/* arm_budget - the budget timer: at request_timeout, sooner where a plugin
 * has a timeout of its own */
static void arm_budget(pd_conn *c, uint64_t now)
{
	pd_request *r = &c->req;
	uint64_t at = r->t0 + (uint64_t)r->gen->request_timeout * 1000000u;

	if (r->gen->min_timeout < r->gen->request_timeout && now + BUDGET_STEP_US < at)
		at = now + BUDGET_STEP_US;
	pd_timer_arm(&c->lp->timers, &c->budget_timer, at);
}

static void run(pd_conn *c);

/* done - the request is answered: the connection is ready for the next one
 * (its caller goes on reading what is buffered) */
static void done(pd_conn *c)
{
	pd_timer_cancel(&c->lp->timers, &c->budget_timer);
	if (pd_finish(&c->req) < 0) {
		pd_conn_close(c, "write error");
		return;
	}
	if (c->close_after_reply)
		c->closing = 1; /* one request per connection: close once the reply is out */
}

/* run - ask the chain; inline, or hand the request on (then C is busy) */
static void run(pd_conn *c)
{
	pd_request *r = &c->req;

	for (;;) {
		int rc = pd_chain_run(r->chain, r, r->gen->default_action, r->gen->on_error, 0);

		if (rc == PD_CHAIN_DONE) {
			done(c);
			return;
		}
		c->busy = 1;
		if (rc == PD_CHAIN_WORKER) { /* this instance may block: a worker goes on from here */
			c->on_worker = 1;
			pd_metric_add(PD_M_HANDOFFS, 1);
			pd_workers_queue(r);
			return;
		}
		/* PD_CHAIN_WAIT: the plugin asked for DNS answers */
		if (pd_dns_start(r, c->lp) > 0)
			return; /* pd_pipeline_resume runs when they are in */
		c->busy = 0;    /* all there already: ask again */
	}
}

/* start - a complete request: route it and run its chain */
static void start(pd_conn *c, pd_conf *g)
{
	pd_request *r = &c->req;

	r->t0 = pd_now_us();
	r->gen = g;
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	r->chain = pd_route(g, &r->attrs, c->listener_chain, &c->memo);
	pd_chain_begin(&r->res);
	arm_budget(c, r->t0);
	run(c);
}

/* pd_pipeline_input - parse buffered input, run complete requests */
void pd_pipeline_input(pd_conn *c)
{
	for (;;) {
		pd_conf *g;
		size_t used = 0;
		const char *why = "";
		enum pd_feed f;
		int rc;

		if (c->busy || c->out_len || c->dead)
			return; /* wait for the worker, the DNS answers or the socket */
		if (c->closing) {
			pd_conn_close(c, "close_after_reply");
			return;
		}
		g = pd_loop_gen(c->lp);
		rc = pd_conn_read(c, &g->limits);
		if (rc < 0) {
			c->lp->bad_closes++;
			pd_conn_close(c, "read error");
			return;
		}
		f = pd_proto_feed(&c->req.attrs, c->in, c->in_len, &used, &g->limits, &why);
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
		if (f == PD_FEED_GARBAGE) {
			pd_metric_add(PD_M_GARBAGE_LINES, 1);
			pd_log(PD_LOG_WARNING, "connection %d: %s", c->fd, why);
			continue;
		}
		if (f == PD_FEED_ERROR) {
			pd_metric_add(PD_M_CONN_OVER_LIMIT, 1);
			c->lp->bad_closes++;
			pd_log(PD_LOG_WARNING, "connection %d: %s (limit %zu line, %zu attributes, %zu bytes); closing",
			       c->fd, why, g->limits.max_line, g->limits.max_attrs, g->limits.max_request);
			pd_conn_close(c, NULL);
			return;
		}
		if (f == PD_FEED_MORE) {
			if (rc == 1)
				continue; /* the buffer was full: read on */
			if ((c->req.attrs.lines || c->in_len) && !c->rq_start) {
				c->rq_start = pd_now_us(); /* read_timeout runs from here */
				pd_timer_arm(&c->lp->timers, &c->read_timer,
					     c->rq_start + (uint64_t)g->read_timeout * 1000000u);
			}
			if (c->eof) {
				if (c->req.attrs.lines) {
					pd_log(PD_LOG_WARNING, "connection %d: client closed in the middle of a request",
					       c->fd);
					c->lp->bad_closes++;
				}
				pd_conn_close(c, "end of input");
			}
			return;
		}
		/* PD_FEED_DONE: a complete request */
		c->rq_start = 0;
		pd_timer_cancel(&c->lp->timers, &c->read_timer);
		if (!request_ok(&c->req.attrs)) {
			pd_metric_add(PD_M_BAD_REQUESTS, 1);
			c->lp->bad_closes++;
			pd_conn_close(c, NULL);
			return;
		}
		start(c, g);
	}
}

/* pd_pipeline_ready - events on a connection */
void pd_pipeline_ready(pd_loop *lp, pd_io *io, uint32_t events)
{
	pd_conn *c = (pd_conn *)io;

	(void)lp;
	if (c->dead)
		return;
	c->drained = 0; /* new data (or end of input) may be there */
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->rdhup = 1;
	if (c->busy)
		return; /* looked at again when the worker or the DNS is done */
	if (c->out_len && (events & EPOLLOUT)) {
		int rc = pd_conn_flush(c);

		if (rc < 0) {
			pd_conn_close(c, "write error");
			return;
		}
		if (rc == 0)
			return;
		/* the reply is out: go on with what is buffered (the next pipelined
		 * request, EOF, close_after_reply) even when no new input came with
		 * this event */
		pd_pipeline_input(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		pd_pipeline_input(c);
}

/* pd_pipeline_resume - a worker or the DNS is done with the request */
void pd_pipeline_resume(pd_request *r)
{
	pd_conn *c = r->conn;
	int from_worker = c->on_worker;

	c->busy = 0;
	c->on_worker = 0;
	if (c->orphaned) { /* answered on timeout and closed already */
		atomic_fetch_sub_explicit(&r->gen->refs, 1, memory_order_release);
		r->gen = NULL;
		c->lp->n_orphans--;
		pd_conn_bury(c);
		return;
	}
	if (from_worker && r->chain_rc == PD_CHAIN_DONE) {
		done(c);
	} else {
		if (from_worker) { /* PD_CHAIN_WAIT on the worker: start its queries here */
			c->busy = 1;
			if (pd_dns_start(r, c->lp) > 0)
				return;
			c->busy = 0;
		}
		run(c);
	}
	pd_pipeline_input(c); /* more may have come meanwhile (it returns at once if C is busy again) */
}

/* pd_pipeline_read_timeout - a request still arriving after read_timeout
 * (a client that trickles bytes keeps its idle timer fresh) */
void pd_pipeline_read_timeout(pd_timer *t, uint64_t now)
{
	pd_conn *c = CONN_OF(t, read_timer);

	(void)now;
	if (c->busy || !c->rq_start)
		return;
	pd_metric_add(PD_M_CONN_SLOW, 1);
	pd_log(PD_LOG_WARNING,
	       "connection %d: request not complete after %d s (%zu line(s), %zu byte(s) of a line so far); closing",
	       c->fd, pd_loop_gen(c->lp)->read_timeout, c->req.attrs.lines, c->in_len);
	pd_conn_close(c, NULL);
}

/* pd_pipeline_budget - the budget timer: on_error for a request over its
 * time budget (the connection closes), or look again a little later */
void pd_pipeline_budget(pd_timer *t, uint64_t now)
{
	pd_conn *c = CONN_OF(t, budget_timer);
	pd_request *r = &c->req;
	const char *hung = atomic_load_explicit(&r->res.running, memory_order_acquire);
	int pt = atomic_load_explicit(&r->res.running_timeout, memory_order_relaxed);
	uint64_t since = atomic_load_explicit(&r->res.running_since, memory_order_relaxed);

	if (!c->busy || c->orphaned)
		return;
	if (!pd_over_budget(now, r->t0, r->gen->request_timeout, hung != NULL, since, pt)) {
		arm_budget(c, now);
		return;
	}
	pd_finish_timeout(r, hung);
	if (c->on_worker) { /* the worker still holds the request: keep the memory */
		c->orphaned = 1;
		c->lp->n_orphans++;
		pd_conn_detach(c);
	} else { /* waiting for DNS: let go of the queries */
		c->busy = 0;
		pd_dns_cancel(r);
		atomic_fetch_sub_explicit(&r->gen->refs, 1, memory_order_release);
		r->gen = NULL;
		pd_conn_close(c, NULL);
	}
}
