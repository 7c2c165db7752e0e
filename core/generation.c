/* generation.c - configuration generations: the one in use, the retired ones still held by requests */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Generations are reference counted: each request holds the one it started
 * on, so SIGHUP can swap in a new one without dropping connections, and the
 * old one is freed when its last request is done. A loop keeps one
 * reference of its own and renews it only after a swap (pd_loop_gen), so
 * that a request costs no lock.
 */
#include "config.h"
#include "generation.h"
#include "conf.h"
#include "loop.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_RETIRED 16

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static pd_conf *current;
static atomic_uint seq;
static pd_conf *retired[MAX_RETIRED];
static size_t n_retired;

/* pd_gen_init - the first generation */
void pd_gen_init(pd_conf *c)
{
	current = c;
}

/* pd_gen_current - the generation in use */
const pd_conf *pd_gen_current(void)
{
	return current;
}

/* pd_gen_seq - bumped by every swap */
unsigned pd_gen_seq(void)
{
	return atomic_load_explicit(&seq, memory_order_acquire);
}

/* pd_gen_acquire - the current generation, referenced */
pd_conf *pd_gen_acquire(unsigned *s)
{
	pd_conf *g;

	pthread_rwlock_rdlock(&lock);
	g = current;
	if (s)
		*s = atomic_load_explicit(&seq, memory_order_relaxed);
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	pthread_rwlock_unlock(&lock);
	return g;
}

/* pd_gen_release - drop a reference */
void pd_gen_release(pd_conf *g)
{
	atomic_fetch_sub_explicit(&g->refs, 1, memory_order_release);
}

/* pd_gen_reap - free retired generations with no request left */
void pd_gen_reap(void)
{
	for (size_t i = 0; i < n_retired;) {
		if (atomic_load_explicit(&retired[i]->refs, memory_order_acquire) == 0) {
			pd_conf_free(retired[i]);
			retired[i] = retired[--n_retired];
		} else {
			i++;
		}
	}
}

/* pd_gen_retired_full - no room to retire another? */
size_t pd_gen_retired_full(void)
{
	pd_gen_reap();
	return n_retired < MAX_RETIRED ? 0 : n_retired;
}

/* pd_gen_swap - serve NEWC; retire the old generation */
void pd_gen_swap(pd_conf *newc)
{
	pd_conf *old;

	pthread_rwlock_wrlock(&lock);
	old = current;
	current = newc;
	atomic_fetch_add_explicit(&seq, 1, memory_order_release);
	pthread_rwlock_unlock(&lock);
	pd_loops_wake(); /* they let go of the old one now */
	retired[n_retired++] = old;
	pd_gen_reap();
}

/* pd_gen_free_all - the end */
void pd_gen_free_all(void)
{
	pd_gen_reap();
	for (size_t i = 0; i < n_retired; i++)
		pd_conf_free(retired[i]);
	n_retired = 0;
	pd_conf_free(current);
	current = NULL;
}
