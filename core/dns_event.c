/* dns_event.c - libunbound's pluggable event API on a policyd loop: its sockets on our epoll, its timers on our heap */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * libunbound's events have libevent's semantics: an event is configured
 * (fd, bits READ/WRITE/TIMEOUT/PERSIST, callback), then added (active, with
 * an optional timeout) and deleted; one without PERSIST is deleted after it
 * fires once. Its descriptors are watched level-triggered. The callback may
 * free the event (or others in the same batch): freed events are kept dead
 * until the batch is over.
 */
#include "config.h"
#include "dns_event.h"
#include "util.h"

#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/time.h>

typedef struct pd_ub_event {
	struct ub_event super;
	pd_io io;            /* on the loop's epoll while added with READ/WRITE */
	pd_timer timer;      /* while added with TIMEOUT */
	pd_ub_base *base;
	int fd;
	short bits;
	int watched;         /* fd on the epoll */
	int active;          /* added */
	int dead;            /* freed by libunbound: released after the batch */
	int *alive;          /* while its callback runs: cleared when it is freed */
	void (*cb)(int, short, void *);
	void *arg;
	struct pd_ub_event *gnext;
} pd_ub_event;

#define EV(x) ((pd_ub_event *)(x))

/* ev_del - deactivate: off the epoll, timer cancelled */
static int ev_del(struct ub_event *uev)
{
	pd_ub_event *ev = EV(uev);

	if (ev->watched)
		pd_loop_unwatch(ev->base->lp, ev->fd);
	ev->watched = 0;
	pd_timer_cancel(&ev->base->lp->timers, &ev->timer);
	ev->active = 0;
	return 0;
}

/* fire - run the callback with BITS; a one-shot event is deleted after it */
static void fire(pd_ub_event *ev, short bits)
{
	int alive = 1;

	ev->alive = &alive;
	ev->cb(ev->fd, bits, ev->arg);
	if (!alive)
		return; /* freed by its own callback */
	ev->alive = NULL;
	if (!(ev->bits & UB_EV_PERSIST) && ev->active)
		ev_del(&ev->super);
}

/* io_ready - its descriptor is ready */
static void io_ready(pd_loop *lp, pd_io *io, uint32_t events)
{
	pd_ub_event *ev = (pd_ub_event *)((char *)io - offsetof(pd_ub_event, io));
	short bits = 0;

	(void)lp;
	if (ev->dead || !ev->active)
		return;
	if ((ev->bits & UB_EV_READ) && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		bits |= UB_EV_READ;
	if ((ev->bits & UB_EV_WRITE) && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		bits |= UB_EV_WRITE;
	if (bits)
		fire(ev, bits);
}

/* timer_fire - its timeout */
static void timer_fire(pd_timer *t, uint64_t now)
{
	pd_ub_event *ev = (pd_ub_event *)((char *)t - offsetof(pd_ub_event, timer));

	(void)now;
	if (!ev->dead && ev->active)
		fire(ev, UB_EV_TIMEOUT);
}

/* ev_add - activate, with a timeout TV if the event has UB_EV_TIMEOUT */
static int ev_add(struct ub_event *uev, struct timeval *tv)
{
	pd_ub_event *ev = EV(uev);
	uint32_t want = (ev->bits & UB_EV_READ ? EPOLLIN : 0) | (ev->bits & UB_EV_WRITE ? EPOLLOUT : 0);

	if (ev->active)
		ev_del(uev);
	if (want && ev->fd >= 0) {
		if (pd_loop_watch(ev->base->lp, ev->fd, want, &ev->io) < 0 &&
		    pd_loop_rewatch(ev->base->lp, ev->fd, want, &ev->io) < 0)
			return -1;
		ev->watched = 1;
	}
	if ((ev->bits & UB_EV_TIMEOUT) && tv)
		pd_timer_arm(&ev->base->lp->timers, &ev->timer,
			     pd_now_us() + (uint64_t)tv->tv_sec * 1000000u + (uint64_t)tv->tv_usec);
	ev->active = 1;
	return 0;
}

/* ev_add_bits - more bits (the event is deactivated first by libunbound) */
static void ev_add_bits(struct ub_event *uev, short bits)
{
	EV(uev)->bits |= bits;
}

/* ev_del_bits - fewer bits */
static void ev_del_bits(struct ub_event *uev, short bits)
{
	EV(uev)->bits &= (short)~bits;
}

/* ev_set_fd - another descriptor */
static void ev_set_fd(struct ub_event *uev, int fd)
{
	pd_ub_event *ev = EV(uev);

	if (ev->watched)
		ev_del(uev);
	ev->fd = fd;
}

/* ev_free - libunbound is done with it: released after the batch */
static void ev_free(struct ub_event *uev)
{
	pd_ub_event *ev = EV(uev);

	ev_del(uev);
	if (ev->alive)
		*ev->alive = 0;
	ev->dead = 1;
	ev->gnext = ev->base->graveyard;
	ev->base->graveyard = ev;
}

/* ev_add_timer - make it a timer with CB/ARG and activate it */
static int ev_add_timer(struct ub_event *uev, struct ub_event_base *base, void (*cb)(int, short, void *), void *arg,
			struct timeval *tv)
{
	pd_ub_event *ev = EV(uev);

	(void)base;
	if (ev->active)
		ev_del(uev);
	ev->cb = cb;
	ev->arg = arg;
	ev->bits |= UB_EV_TIMEOUT;
	return ev_add(uev, tv);
}

/* ev_del_timer - stop the timer */
static int ev_del_timer(struct ub_event *uev)
{
	return ev_del(uev);
}

/* ev_signal - libunbound's library never uses signal events */
static int ev_signal(struct ub_event *uev, struct timeval *tv)
{
	(void)uev;
	(void)tv;
	return -1;
}

/* ev_signal_del - never used by the library */
static int ev_signal_del(struct ub_event *uev)
{
	(void)uev;
	return -1;
}

/* ev_winsock - Windows only */
static void ev_winsock(struct ub_event *uev)
{
	(void)uev;
}

/* ev_winsock_tcp - Windows only */
static void ev_winsock_tcp(struct ub_event *uev, int bits)
{
	(void)uev;
	(void)bits;
}

static struct ub_event_vmt event_vmt = {
    ev_add_bits, ev_del_bits, ev_set_fd, ev_free, ev_add, ev_del, ev_add_timer, ev_del_timer, ev_signal,
    ev_signal_del, ev_winsock, ev_winsock_tcp,
};

/* base_new_event - a new, inactive event */
static struct ub_event *base_new_event(struct ub_event_base *ub, int fd, short bits, void (*cb)(int, short, void *),
				       void *arg)
{
	pd_ub_event *ev = pd_xcalloc(1, sizeof(*ev));

	ev->super.magic = UB_EVENT_MAGIC;
	ev->super.vmt = &event_vmt;
	ev->io.ready = io_ready;
	ev->timer.fire = timer_fire;
	ev->base = (pd_ub_base *)ub;
	ev->fd = fd;
	ev->bits = bits;
	ev->cb = cb;
	ev->arg = arg;
	return &ev->super;
}

/* base_free - the base is ours, not libunbound's */
static void base_free(struct ub_event_base *ub)
{
	(void)ub;
}

/* base_dispatch - our loop runs the events, never libunbound */
static int base_dispatch(struct ub_event_base *ub)
{
	(void)ub;
	return -1;
}

/* base_loopexit - nothing to leave: the loop is ours */
static int base_loopexit(struct ub_event_base *ub, struct timeval *tv)
{
	(void)ub;
	(void)tv;
	return 0;
}

/* base_new_signal - never used by the library */
static struct ub_event *base_new_signal(struct ub_event_base *ub, int fd, void (*cb)(int, short, void *), void *arg)
{
	(void)ub, (void)fd, (void)cb, (void)arg;
	return NULL;
}

/* base_wsaevent - Windows only */
static struct ub_event *base_wsaevent(struct ub_event_base *ub, void *wsa, void (*cb)(int, short, void *), void *arg)
{
	(void)ub, (void)wsa, (void)cb, (void)arg;
	return NULL;
}

static struct ub_event_base_vmt base_vmt = {
    base_free, base_dispatch, base_loopexit, base_new_event, base_new_signal, base_wsaevent,
};

/* pd_ub_base_init - a base for libunbound on LP */
void pd_ub_base_init(pd_ub_base *b, pd_loop *lp)
{
	b->super.magic = UB_EVENT_MAGIC;
	b->super.vmt = &base_vmt;
	b->lp = lp;
	b->graveyard = NULL;
}

/* pd_ub_base_bury - release the events freed during the batch */
void pd_ub_base_bury(pd_ub_base *b)
{
	while (b->graveyard) {
		pd_ub_event *ev = b->graveyard;

		b->graveyard = ev->gnext;
		free(ev);
	}
}
