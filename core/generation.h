/* generation.h - configuration generations: the one in use, the retired ones still held by requests */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_GENERATION_H
#define PD_GENERATION_H

#include <stddef.h>

struct pd_conf;

/* Serve CONF (the first one; the generations now own it). */
void pd_gen_init(struct pd_conf *conf);
/* The generation in use (main thread: reload comparisons). */
const struct pd_conf *pd_gen_current(void);
/* The current generation with one more reference; and its sequence number. */
struct pd_conf *pd_gen_acquire(unsigned *seq);
/* The sequence number of the current generation (bumped by every swap). */
unsigned pd_gen_seq(void);
void pd_gen_release(struct pd_conf *g);

/* How many retired generations requests still hold when that leaves no room
 * to retire another (a reload must then be refused), else 0. Main thread. */
size_t pd_gen_retired_full(void);
/* Serve NEWC from now on; the old one is freed (its plugins' fini run) once
 * its requests are done. Call only when pd_gen_retired_full() is 0. */
void pd_gen_swap(struct pd_conf *newc);
/* Free retired generations no request holds any more (main thread). */
void pd_gen_reap(void);
/* At the end: free every generation (the threads are gone). */
void pd_gen_free_all(void);

#endif
