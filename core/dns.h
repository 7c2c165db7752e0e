/* dns.h - the DNS service of the core: answers for plugins, asked on the network threads through libunbound */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_DNS_H
#define PD_DNS_H

#include <stddef.h>
#include <stdint.h>

#include <policyd/plugin.h>

#include "dns_answer.h"
#include "timer.h"

struct pd_inst;
struct pd_loop;

/* An answer a request used: the plugin's view of a shared answer. */
typedef struct pd_dns_use {
	pd_dns_answer view;
	pd_dns_blob *blob;
	int resolver;
} pd_dns_use;

/* A name a request asked for and does not have yet. */
typedef struct pd_dns_want {
	unsigned type;
	int resolver;
	int nocache;
	char name[256];
} pd_dns_want;

/* A request's DNS state (inside pd_request). */
typedef struct pd_dns_req {
	pd_dns_use **use;       /* answers it used (each allocated alone: views stay put) */
	size_t n_use, cap_use;
	pd_dns_want *want;      /* asked, not in: started by pd_dns_start */
	size_t n_want, cap_want;
	struct pd_dns_wait *waits; /* its places in the waiting lists of queries under way */
	size_t pending;         /* queries it waits for */
	pd_timer deadline;      /* the check's DNS deadline */
	struct pd_loop *lp;     /* where it waits */
	int ready;              /* on its loop's list of requests to resume */
	int starting;           /* pd_dns_start is at work for it */
	pd_request *rnext;      /* that list */
} pd_dns_req;

/* The core's DNS settings (the dns { } section of policyd.conf). */
typedef struct pd_dns_conf {
	const char *resolv_conf; /* nameservers of instances that do not name their own */
	size_t cache_size;       /* answers kept for every plugin (0: none) */
	unsigned min_ttl, max_ttl, negative_ttl;
	unsigned timeout_ms;     /* default deadline of a check's lookups */
	unsigned max_queries;    /* queries under way per network thread, at most */
} pd_dns_conf;

/* Take CONF for the next lookups (copied; main thread, before the loops
 * start, or at a reload: the cache keeps its size until a restart).
 * Resolver N is the Nth distinct (resolv.conf path, max TTL) named so far. */
void pd_dns_configure(const pd_dns_conf *conf);
/* The resolver index for PATH (NULL: the default) whose answers may be
 * kept MAX_TTL seconds at most, by libunbound too (0: not at all, for an
 * instance with dns_cache = 0); main thread. */
int pd_dns_resolver(const char *path, unsigned max_ttl);
/* The end: free the cache and the resolver table. */
void pd_dns_shutdown(void);

/* host->dns for IN's check on request R: a cached answer, one R already
 * has, or PD_DNS_PENDING with the name added to R's wants (started when
 * the check returns PD_CHECK_WAIT). Past the check's deadline an answer R
 * does not have is PD_DNS_TIMEOUT at once. */
int pd_dns_lookup(pd_request *r, const struct pd_inst *in, const char *name, unsigned type,
		  const pd_dns_answer **ans);
/* Has R asked for something not in yet? */
size_t pd_dns_wanted(const pd_dns_req *d);
/* On R's connection's loop LP, after a check returned PD_CHECK_WAIT: start
 * (or join) a query for each want, arm the deadline; returns the number of
 * queries R waits for (0: everything was there, run the check again now).
 * pd_pipeline_resume(r) runs when the last answer is in or the deadline
 * passed. */
size_t pd_dns_start(pd_request *r, struct pd_loop *lp);
/* R is going away (closed, timed out): leave every waiting list. */
void pd_dns_cancel(pd_request *r);

void pd_dns_req_reset(pd_dns_req *d);
void pd_dns_req_free(pd_dns_req *d);

/* A loop's part: resume the requests whose answers came in during the
 * batch, release libunbound's freed events (after each batch); free it all. */
void pd_dns_loop_idle(struct pd_loop *lp);
void pd_dns_loop_free(struct pd_loop *lp);

#endif
