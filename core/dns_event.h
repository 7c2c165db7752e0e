/* dns_event.h - libunbound's pluggable event API on a policyd loop: its sockets on our epoll, its timers on our heap */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_DNS_EVENT_H
#define PD_DNS_EVENT_H

#include <unbound-event.h>

#include "loop.h"

/* An event base for libunbound (ub_ctx_create_ub_event) that runs on LP:
 * no thread and no process of libunbound's own; everything happens on the
 * loop's thread, inside its epoll wait. */
typedef struct pd_ub_base {
	struct ub_event_base super; /* what libunbound holds */
	pd_loop *lp;
	struct pd_ub_event *graveyard; /* freed by libunbound during this batch: released after it */
} pd_ub_base;

void pd_ub_base_init(pd_ub_base *b, pd_loop *lp);
/* Free the events libunbound let go of (after a batch of events). */
void pd_ub_base_bury(pd_ub_base *b);

#endif
