/* metrics.h - counters and a latency histogram, in Prometheus text format */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_METRICS_H
#define PD_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Counters about connections, kept by the server. */
enum pd_metric {
	PD_M_CONN_OPEN,      /* gauge */
	PD_M_CONN_ACCEPTED,
	PD_M_CONN_OVER_LIMIT,
	PD_M_CONN_SLOW, /* closed: a request did not arrive whole within read_timeout */
	PD_M_GARBAGE_LINES,
	PD_M_TIMEOUTS,
	PD_M_BAD_REQUESTS,
	PD_M_HANDOFFS, /* requests a network thread handed to the worker pool */
	PD_M_DROPPED,  /* requests a worker dropped: their budget ran out in the queue */
	PD_M_DNS_QUERIES,    /* DNS queries started */
	PD_M_DNS_CACHE_HITS, /* answers the shared cache gave */
	PD_M_DNS_TIMEOUTS,   /* answers a check's deadline did not wait for */
	PD_M_DNS_SERVFAIL,   /* queries answered SERVFAIL (or no answer from the servers) */
	PD_M_COUNT
};

void pd_metric_add(enum pd_metric m, long delta);

/* The index of plugin NAME in the per-plugin table (created on first use,
 * main thread only); -1 when the table is full. */
int pd_metrics_plugin(const char *name);
/* One check() call of plugin IDX; ERROR: it failed; DECIDED: its answer
 * was the reply. */
void pd_metrics_plugin_call(int idx, int error, int decided);
/* a decision of an instance with observe = true: logged, counted, not sent */
void pd_metrics_plugin_observed(int idx);

/* One answered request: its action and how long it took. */
void pd_metrics_request(const char *action, uint64_t us);

/* Where the master counts worker restarts (shared memory), or NULL. */
void pd_metrics_set_restarts(const unsigned long *restarts);

/* Render everything in Prometheus text format (version 0.0.4) into a
 * malloc'd string. */
char *pd_metrics_render(size_t *len);

/* Serve GET /metrics on ADDR ("127.0.0.1:9124", loopback only); 0 or -1
 * (logged). Without libmicrohttpd this fails with a clear message. */
int pd_metrics_start(const char *addr);
void pd_metrics_stop(void);

/* Check that ADDR is a loopback host:port; 0, or -1 with WHY. */
int pd_metrics_addr_ok(const char *addr, const char **why);

#endif
