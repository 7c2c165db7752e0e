/* conn.c - connections: their life on a loop, their buffers and timers, socket I/O */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "conn.h"
#include "conf.h"
#include "listeners.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "util.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONN_OF(t, field) ((pd_conn *)((char *)(t) - offsetof(pd_conn, field)))

/* idle_fire - close a connection that stayed idle for idle_timeout; the
 * timer is not moved on every read, it looks at last_us when it fires */
static void idle_fire(pd_timer *t, uint64_t now)
{
	pd_conn *c = CONN_OF(t, idle_timer);
	int idle = pd_loop_gen(c->lp)->idle_timeout;
	uint64_t limit = (uint64_t)idle * 1000000u;

	if (c->busy || now < c->last_us || now - c->last_us < limit) {
		pd_timer_arm(&c->lp->timers, t, (c->busy ? now : c->last_us) + limit);
		return;
	}
	pd_log(PD_LOG_INFO, "connection %d idle for %d s%s; closing", c->fd, idle,
	       c->req.attrs.lines ? " in the middle of a request" : "");
	pd_conn_close(c, NULL);
}

/* pd_conn_new - a connection on LP */
pd_conn *pd_conn_new(pd_loop *lp, int fd, int wfd, const pd_listener *ls)
{
	pd_conn *c = pd_xcalloc(1, sizeof(*c));

	c->io.ready = pd_pipeline_ready;
	c->fd = fd;
	c->wfd = wfd;
	c->lp = lp;
	c->ls = ls;
	c->listener_chain = ls ? ls->chain : "default";
	c->close_after_reply = ls ? ls->close_after_reply : 0;
	c->idle_timer.fire = idle_fire;
	c->read_timer.fire = pd_pipeline_read_timeout;
	c->budget_timer.fire = pd_pipeline_budget;
	pd_request_init(&c->req, c);
	if (pd_loop_watch(lp, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, &c->io) == 0) {
		c->polled = 1;
	} else if (errno != EPERM || ls) { /* EPERM: a regular file on stdin (spawn mode) */
		pd_log(PD_LOG_ERR, "epoll_ctl: %s", strerror(errno));
		pd_request_free(&c->req);
		free(c);
		return NULL;
	}
	c->next = lp->head;
	if (lp->head)
		lp->head->prev = c;
	lp->head = c;
	lp->n_conns++;
	pd_metric_add(PD_M_CONN_OPEN, 1);
	pd_conn_touch(c);
	return c;
}

/* pd_conn_touch - activity: the idle timer counts from now */
void pd_conn_touch(pd_conn *c)
{
	c->last_us = pd_now_us();
	if (!pd_timer_armed(&c->idle_timer))
		pd_timer_arm(&c->lp->timers, &c->idle_timer,
			     c->last_us + (uint64_t)pd_loop_gen(c->lp)->idle_timeout * 1000000u);
}

/* pd_conn_detach - off the loop, socket closed, memory kept */
void pd_conn_detach(pd_conn *c)
{
	pd_loop *lp = c->lp;

	pd_timer_cancel(&lp->timers, &c->idle_timer);
	pd_timer_cancel(&lp->timers, &c->read_timer);
	pd_timer_cancel(&lp->timers, &c->budget_timer);
	if (c->prev)
		c->prev->next = c->next;
	else
		lp->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	lp->n_conns--;
	if (c->polled)
		pd_loop_unwatch(lp, c->fd);
	if (c->fd > 2)
		close(c->fd);
	if (c->wfd != c->fd && c->wfd > 2)
		close(c->wfd);
	c->fd = -1;
}

/* pd_conn_bury - free C after the current batch, which may still hold events for it */
void pd_conn_bury(pd_conn *c)
{
	c->dead = 1;
	c->gnext = c->lp->graveyard;
	c->lp->graveyard = c;
}

/* pd_conn_close - close a connection that no worker holds */
void pd_conn_close(pd_conn *c, const char *why)
{
	if (c->dead)
		return;
	if (why)
		pd_log(PD_LOG_DEBUG, "connection %d closed: %s", c->fd, why);
	pd_dns_cancel(&c->req); /* it may wait for answers */
	pd_conn_detach(c);
	pd_conn_bury(c);
}

/* pd_conn_bury_all - free the connections closed during the batch */
void pd_conn_bury_all(pd_loop *lp)
{
	while (lp->graveyard) {
		pd_conn *c = lp->graveyard;

		lp->graveyard = c->gnext;
		if (c->req.gen) { /* closed with a request in flight (stopping) */
			atomic_fetch_sub_explicit(&c->req.gen->refs, 1, memory_order_release);
			c->req.gen = NULL;
		}
		pd_request_free(&c->req);
		free(c->in);
		free(c);
		pd_metric_add(PD_M_CONN_OPEN, -1);
	}
}

/* arm_out - ask for EPOLLOUT while a reply is pending, or stop */
static void arm_out(pd_conn *c, int on)
{
	if (c->want_out == on || !c->polled || c->wfd != c->fd)
		return;
	c->want_out = on;
	pd_loop_rewatch(c->lp, c->fd, EPOLLIN | EPOLLRDHUP | EPOLLET | (on ? EPOLLOUT : 0), &c->io);
}

/* pd_conn_flush - send what is pending (spawn mode writes to stdout, blocking) */
int pd_conn_flush(pd_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = c->wfd == c->fd ? send(c->wfd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL)
					    : write(c->wfd, c->out + c->out_off, c->out_len - c->out_off);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && c->wfd == c->fd) {
			arm_out(c, 1);
			return 0;
		}
		return -1;
	}
	c->out_len = c->out_off = 0;
	arm_out(c, 0);
	return 1;
}

/* pd_conn_read - read what the socket has */
int pd_conn_read(pd_conn *c, const pd_limits *lim)
{
	size_t want = lim->max_line + 64;

	if (want < 1024)
		want = 1024;
	if (c->in_cap < want) {
		c->in = pd_xrealloc(c->in, want);
		c->in_cap = want;
	}
	while (!c->eof && !c->drained && c->in_len < c->in_cap) {
		ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);

		if (n > 0) {
			size_t asked = c->in_cap - c->in_len;

			c->in_len += (size_t)n;
			if ((size_t)n < asked && !c->rdhup && c->polled) {
				/* a short read took all the socket had: the next byte
				 * to arrive raises a new (edge-triggered) event */
				c->drained = 1;
				break;
			}
			continue;
		}
		if (n == 0) {
			c->eof = 1;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		return -1;
	}
	c->last_us = pd_now_us();
	return c->in_len == c->in_cap && !c->eof && !c->drained;
}
