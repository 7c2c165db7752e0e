/* timer.c - a loop's timers: a binary min-heap, so that the cost is per expiring timer */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Arming, re-arming and cancelling cost O(log n); looking for expired
 * timers costs O(1) when none is due and O(log n) per timer that fires,
 * whatever the number of idle connections (issue 12.6: the loop walked
 * every idle connection on every batch of events).
 */
#include "config.h"
#include "timer.h"
#include "util.h"

#include <stdlib.h>

/* set - put T at heap position I */
static void set(pd_timers *h, size_t i, pd_timer *t)
{
	h->heap[i] = t;
	t->idx = i + 1;
}

/* sift_up - move the timer at I towards the root while it is earlier */
static void sift_up(pd_timers *h, size_t i)
{
	pd_timer *t = h->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (h->heap[p]->at <= t->at)
			break;
		set(h, i, h->heap[p]);
		i = p;
	}
	set(h, i, t);
}

/* sift_down - move the timer at I towards the leaves while it is later */
static void sift_down(pd_timers *h, size_t i)
{
	pd_timer *t = h->heap[i];

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		uint64_t at = t->at;

		if (l < h->n && h->heap[l]->at < at) {
			m = l;
			at = h->heap[l]->at;
		}
		if (r < h->n && h->heap[r]->at < at)
			m = r;
		if (m == i)
			break;
		set(h, i, h->heap[m]);
		i = m;
	}
	set(h, i, t);
}

/* pd_timers_init - an empty heap */
void pd_timers_init(pd_timers *h)
{
	h->heap = NULL;
	h->n = h->cap = 0;
	h->visited = 0;
}

/* pd_timers_free - release the heap's array */
void pd_timers_free(pd_timers *h)
{
	for (size_t i = 0; i < h->n; i++)
		h->heap[i]->idx = 0;
	free(h->heap);
	pd_timers_init(h);
}

/* pd_timer_cancel - take T out of the heap */
void pd_timer_cancel(pd_timers *h, pd_timer *t)
{
	size_t i;
	pd_timer *last;

	if (!t->idx)
		return;
	i = t->idx - 1;
	t->idx = 0;
	last = h->heap[--h->n];
	if (i == h->n)
		return;
	set(h, i, last);
	if (i > 0 && h->heap[(i - 1) / 2]->at > last->at)
		sift_up(h, i);
	else
		sift_down(h, i);
}

/* pd_timer_arm - (re)arm T for AT */
void pd_timer_arm(pd_timers *h, pd_timer *t, uint64_t at)
{
	if (t->idx) {
		uint64_t was = t->at;

		t->at = at;
		if (at < was)
			sift_up(h, t->idx - 1);
		else if (at > was)
			sift_down(h, t->idx - 1);
		return;
	}
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 64;
		h->heap = pd_xrealloc(h->heap, h->cap * sizeof(*h->heap));
	}
	t->at = at;
	set(h, h->n, t);
	h->n++;
	sift_up(h, h->n - 1);
}

/* pd_timers_next - the earliest deadline */
uint64_t pd_timers_next(const pd_timers *h)
{
	return h->n ? h->heap[0]->at : UINT64_MAX;
}

/* pd_timers_run - fire what is due */
size_t pd_timers_run(pd_timers *h, uint64_t now)
{
	size_t fired = 0, budget = h->n; /* timers re-armed for now wait for the next call */

	while (h->n && h->heap[0]->at <= now && budget--) {
		pd_timer *t = h->heap[0];

		h->visited++;
		pd_timer_cancel(h, t);
		t->fire(t, now);
		fired++;
	}
	return fired;
}
