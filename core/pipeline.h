/* pipeline.h - the request pipeline of a connection: read, parse, route, check, answer */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_PIPELINE_H
#define PD_PIPELINE_H

#include <stdint.h>

#include "conn.h"

/* A connection's descriptor is ready (its pd_io.ready). */
void pd_pipeline_ready(pd_loop *lp, pd_io *io, uint32_t events);
/* Parse what C has buffered (reading more as it goes) and start every
 * complete request, one at a time. */
void pd_pipeline_input(pd_conn *c);
/* On the request's loop: a worker finished its part (pd_loop_post), or
 * the DNS answers it waited for are in, or their deadline passed. */
void pd_pipeline_resume(pd_request *r);

/* Timers of a connection (conn.c arms them). */
void pd_pipeline_read_timeout(pd_timer *t, uint64_t now);
void pd_pipeline_budget(pd_timer *t, uint64_t now);

/* Is a request that started at T0 (its plugin RUNNING since SINCE, with
 * its own timeout PT seconds, 0: none) over its budget at NOW? Times in
 * microseconds; a SINCE later than NOW (stamped on another thread after NOW
 * was read) is never an underflow. */
int pd_over_budget(uint64_t now, uint64_t t0, int request_timeout, int running, uint64_t since, int pt);

#endif
