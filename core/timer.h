/* timer.h - a loop's timers: a binary min-heap, so that the cost is per expiring timer */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_TIMER_H
#define PD_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct pd_timer pd_timer;

/* One timer, embedded in its owner (a connection, a DNS query ...). FIRE
 * runs on the loop's thread when it expires; it may arm or cancel any
 * timer, itself included. */
struct pd_timer {
	uint64_t at;                /* pd_now_us() when it fires */
	size_t idx;                 /* its place in the heap + 1; 0: not armed */
	void (*fire)(pd_timer *t, uint64_t now);
};

/* A heap of armed timers; one per loop, used by its thread only. */
typedef struct pd_timers {
	pd_timer **heap;
	size_t n, cap;
	unsigned long visited; /* timers looked at by pd_timers_run (tests: cost per expiry) */
} pd_timers;

void pd_timers_init(pd_timers *h);
void pd_timers_free(pd_timers *h); /* the timers themselves belong to their owners */

/* Arm T to fire at AT (re-arming moves it); cancel (no-op when not armed). */
void pd_timer_arm(pd_timers *h, pd_timer *t, uint64_t at);
void pd_timer_cancel(pd_timers *h, pd_timer *t);
static inline int pd_timer_armed(const pd_timer *t)
{
	return t->idx != 0;
}

/* When the earliest timer fires, or UINT64_MAX when none is armed. */
uint64_t pd_timers_next(const pd_timers *h);

/* Fire every timer due at NOW, earliest first; returns how many fired.
 * Bounded: no more than were armed when it was called (a FIRE that re-arms
 * a timer for NOW does not make it loop). */
size_t pd_timers_run(pd_timers *h, uint64_t now);

#endif
