/* dns.c - the DNS service of the core: answers for plugins, asked on the network threads through libunbound */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Why libunbound: it is NLnet Labs' validating resolver as a library, with
 * a fresh random source port and a random ID per query, question matching,
 * TCP when an answer is truncated, optional 0x20 and DNSSEC, and an event
 * API that runs it inside our own epoll loops (dns_event.c): no thread
 * sleeps on a lookup, and none of its work needs a thread of its own.
 * c-ares 1.18 (Debian 12) would send every query from one socket per
 * server, a fixed source port an off-path attacker need not guess.
 *
 * A check asks host->dns(); what the shared cache (dns_cache.c) or the
 * request itself already has comes back at once, the rest is noted. When
 * the check returns PD_CHECK_WAIT the request's loop starts one query per
 * noted name, joining a query for the same name already under way, and
 * arms the check's deadline. Each answer goes into the cache and to every
 * request waiting for it; a request whose last answer is in, or whose
 * deadline passed (its unanswered names become PD_DNS_TIMEOUT, and no new
 * query starts for it), is resumed after the batch of events.
 */
#include "config.h"
#include "dns.h"
#include "chain.h"
#include "dns_cache.h"
#include "dns_event.h"
#include "escape.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "pipeline.h"
#include "request.h"
#include "util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unbound.h>

#define MAX_RESOLVERS 16
#define QUERY_BUCKETS 4096 /* per loop: queries under way, by name */

/* One query under way on a loop, and the requests waiting for it. */
typedef struct query {
	struct query *hnext;
	uint64_t hash;
	unsigned type;
	int resolver;
	int cache;           /* put the answer in the shared cache */
	int async_id;
	struct pd_dns_wait *waiters;
	struct pd_dns_loop *dl;
	char name[256];
} query;

/* A request's place in a query's waiting list. */
typedef struct pd_dns_wait {
	struct pd_dns_wait *qnext, *qprev; /* the query's list */
	struct pd_dns_wait *rnext;         /* the request's list */
	pd_request *req;
	query *q;
} pd_dns_wait;

/* A loop's resolvers and queries. */
typedef struct pd_dns_loop {
	pd_ub_base base;
	struct ub_ctx *ctx[MAX_RESOLVERS];
	int ctx_failed[MAX_RESOLVERS];
	query *buckets[QUERY_BUCKETS];
	size_t n_queries;
	pd_request *ready; /* answered or past their deadline: resumed after the batch */
	time_t full_logged;
} pd_dns_loop;

/* Settings read by the loops while a reload may change them (main thread). */
static atomic_uint cf_min_ttl, cf_max_ttl = 86400, cf_negative_ttl = 3600, cf_max_queries = 4096;
static char *default_resolv_conf;
static size_t cache_size;
static char *resolvers[MAX_RESOLVERS]; /* resolv.conf paths; 0 is the default */
static unsigned resolver_max_ttl[MAX_RESOLVERS]; /* what libunbound may keep: 0 nothing (dns_cache = 0) */
static size_t n_resolvers;
static FILE *devnull;

/* pd_dns_resolver - the index of resolv.conf PATH whose answers live at most MAX_TTL seconds */
int pd_dns_resolver(const char *path, unsigned max_ttl)
{
	const char *p = path && *path ? path : default_resolv_conf ? default_resolv_conf : "/etc/resolv.conf";

	for (size_t i = 0; i < n_resolvers; i++)
		if (strcmp(resolvers[i], p) == 0 && resolver_max_ttl[i] == max_ttl)
			return (int)i;
	if (n_resolvers == MAX_RESOLVERS) {
		pd_log(PD_LOG_WARNING, "more than %d different resolv.conf files: %s uses the first", MAX_RESOLVERS, p);
		return 0;
	}
	resolvers[n_resolvers] = pd_xstrdup(p);
	resolver_max_ttl[n_resolvers] = max_ttl;
	return (int)n_resolvers++;
}

/* pd_dns_configure - the settings for lookups from now on */
void pd_dns_configure(const pd_dns_conf *c)
{
	static int cache_made;

	if (!default_resolv_conf) /* the first one stays resolver 0's */
		default_resolv_conf = pd_xstrdup(c->resolv_conf && *c->resolv_conf ? c->resolv_conf : "/etc/resolv.conf");
	atomic_store(&cf_min_ttl, c->min_ttl);
	atomic_store(&cf_max_ttl, c->max_ttl);
	atomic_store(&cf_negative_ttl, c->negative_ttl);
	atomic_store(&cf_max_queries, c->max_queries);
	if (!cache_made) {
		pd_dns_cache_init(c->cache_size);
		cache_size = c->cache_size;
		cache_made = 1;
	} else if (cache_size != c->cache_size) {
		pd_log(PD_LOG_WARNING, "dns cache_size changed: that takes a restart; keeping %zu", cache_size);
	}
}

/* pd_dns_shutdown - the end of the process */
void pd_dns_shutdown(void)
{
	pd_dns_cache_free();
	for (size_t i = 0; i < n_resolvers; i++)
		free(resolvers[i]);
	n_resolvers = 0;
	free(default_resolv_conf);
	default_resolv_conf = NULL;
}

/* ------------------------------------------------------------ requests */

/* add_use - R used blob B (a reference it now owns) from RESOLVER; the plugin's view */
static const pd_dns_answer *add_use(pd_dns_req *d, pd_dns_blob *b, int resolver, unsigned max_ttl, time_t now)
{
	pd_dns_use *u = pd_xmalloc(sizeof(*u));
	time_t left = b->stored + (time_t)b->ttl - now, cap = b->stored + (time_t)max_ttl - now;

	if (left > cap)
		left = cap;
	u->blob = b;
	u->resolver = resolver;
	u->view.status = b->status;
	u->view.ttl = left > 0 ? (unsigned)left : 0;
	u->view.n = b->n;
	u->view.rr = b->rr;
	if (d->n_use == d->cap_use) {
		d->cap_use = d->cap_use ? d->cap_use * 2 : 8;
		d->use = pd_xrealloc(d->use, d->cap_use * sizeof(*d->use));
	}
	d->use[d->n_use++] = u;
	return &u->view;
}

/* find_use - the answer R already has for NAME/TYPE/RESOLVER */
static const pd_dns_answer *find_use(const pd_dns_req *d, const char *name, unsigned type, int resolver)
{
	for (size_t i = 0; i < d->n_use; i++) {
		const pd_dns_use *u = d->use[i];

		if (u->blob->type == type && u->resolver == resolver && strcmp(u->blob->name, name) == 0)
			return &u->view;
	}
	return NULL;
}

/* pd_dns_lookup - host->dns */
int pd_dns_lookup(pd_request *r, const pd_inst *in, const char *name, unsigned type, const pd_dns_answer **ans)
{
	pd_dns_req *d = &r->dns;
	char norm[256];
	time_t now = time(NULL);
	int resolver = in->dns_resolver;
	pd_dns_blob *b;
	const pd_dns_answer *a;

	*ans = NULL;
	if (pd_dns_name(name ? name : "", norm) < 0) {
		char esc[300];

		if (!find_use(d, "", type, -1)) /* one answer stands for every bad name */
			add_use(d, pd_dns_blob_status("", type, PD_DNS_BADNAME, now), -1, 0, now);
		if (in->pub.verbose)
			pd_log(PD_LOG_DEBUG, "%s: not a DNS name, not asked: \"%s\"", in->pub.name,
			       pd_esc(esc, sizeof(esc), name, 64, PD_ESC_TOKEN) ? esc : "");
		*ans = find_use(d, "", type, -1);
		return PD_DNS_BADNAME;
	}
	if ((a = find_use(d, norm, type, resolver))) {
		*ans = a;
		return a->status;
	}
	if (in->pub.dns_cache && (b = pd_dns_cache_get(norm, type, resolver, in->pub.dns_max_ttl, now))) {
		pd_metric_add(PD_M_DNS_CACHE_HITS, 1);
		*ans = add_use(d, b, resolver, in->pub.dns_max_ttl, now);
		return (*ans)->status;
	}
	if (r->res.dns_deadline && pd_now_us() >= r->res.dns_deadline) { /* too late to ask */
		*ans = add_use(d, pd_dns_blob_status(norm, type, PD_DNS_TIMEOUT, now), resolver, 0, now);
		return PD_DNS_TIMEOUT;
	}
	for (size_t i = 0; i < d->n_want; i++)
		if (d->want[i].type == type && d->want[i].resolver == resolver && strcmp(d->want[i].name, norm) == 0)
			return PD_DNS_PENDING;
	if (d->n_want == d->cap_want) {
		d->cap_want = d->cap_want ? d->cap_want * 2 : 4;
		d->want = pd_xrealloc(d->want, d->cap_want * sizeof(*d->want));
	}
	d->want[d->n_want].type = type;
	d->want[d->n_want].resolver = resolver;
	d->want[d->n_want].nocache = !in->pub.dns_cache;
	memcpy(d->want[d->n_want].name, norm, strlen(norm) + 1);
	d->n_want++;
	return PD_DNS_PENDING;
}

/* pd_dns_wanted - names asked for and not started */
size_t pd_dns_wanted(const pd_dns_req *d)
{
	return d->n_want;
}

/* pd_dns_req_reset - forget the answers of the last request */
void pd_dns_req_reset(pd_dns_req *d)
{
	for (size_t i = 0; i < d->n_use; i++) {
		pd_dns_blob_unref(d->use[i]->blob);
		free(d->use[i]);
	}
	d->n_use = 0;
	d->n_want = 0;
	if (d->cap_use > 64) {
		free(d->use);
		d->use = NULL;
		d->cap_use = 0;
	}
}

/* pd_dns_req_free - release everything */
void pd_dns_req_free(pd_dns_req *d)
{
	pd_dns_req_reset(d);
	free(d->use);
	free(d->want);
	d->use = NULL;
	d->want = NULL;
	d->cap_use = d->cap_want = 0;
}

/* ---------------------------------------------------------- the loop side */

/* make_ctx - a libunbound context on DL's event base for resolver I, or NULL (logged once) */
static struct ub_ctx *make_ctx(pd_dns_loop *dl, int i)
{
	static const char *const opts[][2] = {
	    /* iterator only: answers come from the configured (recursive) servers */
	    {"module-config:", "iterator"},
	    {"verbosity:", "0"},
	    {"outgoing-range:", "4096"},
	    /* a dead or silent server: SERVFAIL within seconds, and it is tried
	     * again seconds later, not after 15 minutes (infra-host-ttl) */
	    {"infra-cache-max-rtt:", "2000"},
	    {"infra-host-ttl:", "5"},
	    {"infra-keep-probing:", "yes"},
	    /* private reverse zones (10/8 ...) are asked, not answered locally */
	    {"unblock-lan-zones:", "yes"},
	    {"insecure-lan-zones:", "yes"},
	    {"local-zone:", "test. transparent"},
	    /* its own cache stays small: ours is in front (dns_cache.c) */
	    {"msg-cache-size:", "1m"},
	    {"rrset-cache-size:", "1m"},
	    {"key-cache-size:", "64k"},
	    {"neg-cache-size:", "64k"},
	    {"rrset-roundrobin:", "no"},
	};
	struct ub_ctx *ctx;
	int rc;

	if (dl->ctx[i] || dl->ctx_failed[i])
		return dl->ctx[i];
	ctx = ub_ctx_create_ub_event(&dl->base.super);
	if (!ctx) {
		pd_log(PD_LOG_ERR, "dns: cannot create a libunbound context");
		dl->ctx_failed[i] = 1;
		return NULL;
	}
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	if (devnull)
		ub_ctx_debugout(ctx, devnull); /* its own lines: errors come to us as answers */
	for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
		if ((rc = ub_ctx_set_option(ctx, opts[k][0], opts[k][1])) != 0)
			pd_log(PD_LOG_WARNING, "dns: libunbound option %s %s: %s", opts[k][0], opts[k][1], ub_strerror(rc));
	{ /* libunbound's own cache keeps answers no longer than its users may believe them
	   * (0: not at all, for an instance with dns_cache = 0) */
		char ttl[16];

		snprintf(ttl, sizeof(ttl), "%u", resolver_max_ttl[i]);
		ub_ctx_set_option(ctx, "cache-max-ttl:", ttl);
		if (resolver_max_ttl[i] < atomic_load(&cf_negative_ttl))
			ub_ctx_set_option(ctx, "cache-max-negative-ttl:", ttl);
	}
	if ((rc = ub_ctx_resolvconf(ctx, resolvers[i])) != 0) {
		pd_log(PD_LOG_ERR, "dns: %s: %s; lookups that use it fail (SERVFAIL)", resolvers[i], ub_strerror(rc));
		ub_ctx_delete(ctx);
		dl->ctx_failed[i] = 1;
		return NULL;
	}
	dl->ctx[i] = ctx;
	return ctx;
}

/* loop_dns - LP's DNS part, made on first use */
static pd_dns_loop *loop_dns(pd_loop *lp)
{
	if (!lp->dns) {
		pd_dns_loop *dl = pd_xcalloc(1, sizeof(*dl));

		pd_ub_base_init(&dl->base, lp);
		lp->dns = dl;
	}
	return lp->dns;
}

/* queue_ready - R may run again after this batch (not while pd_dns_start
 * is still at work for it: it tells its caller itself) */
static void queue_ready(pd_dns_loop *dl, pd_request *r)
{
	if (r->dns.ready || r->dns.starting)
		return;
	r->dns.ready = 1;
	r->dns.rnext = dl->ready;
	dl->ready = r;
}

/* deliver - request R gets blob B (a reference it takes) for wait W's query */
static void deliver(pd_request *r, pd_dns_blob *b, int resolver)
{
	time_t now = time(NULL);

	if (!find_use(&r->dns, b->name, b->type, resolver))
		add_use(&r->dns, pd_dns_blob_ref(b), resolver, r->chain->insts[r->res.next]->pub.dns_max_ttl, now);
	if (r->dns.pending && --r->dns.pending == 0) {
		pd_timer_cancel(&r->dns.lp->timers, &r->dns.deadline);
		queue_ready(r->dns.lp->dns, r);
	}
}

/* drop_wait - take W off its query's list and its request's list, free it */
static void drop_wait(pd_dns_wait *w)
{
	pd_dns_wait **pp = &w->req->dns.waits;

	if (w->qprev)
		w->qprev->qnext = w->qnext;
	else
		w->q->waiters = w->qnext;
	if (w->qnext)
		w->qnext->qprev = w->qprev;
	while (*pp && *pp != w)
		pp = &(*pp)->rnext;
	if (*pp)
		*pp = w->rnext;
	free(w);
}

/* query_done - the answer of Q (libunbound's callback, on the loop's thread) */
static void query_done(void *arg, int rcode, void *packet, int len, int sec, char *why_bogus, int ratelimited)
{
	query *q = arg;
	pd_dns_loop *dl = q->dl;
	query **pp = &dl->buckets[q->hash % QUERY_BUCKETS];
	pd_dns_blob *b = pd_dns_blob_parse(q->name, q->type, rcode, packet, len > 0 ? (size_t)len : 0,
					   atomic_load(&cf_min_ttl), atomic_load(&cf_max_ttl),
					   atomic_load(&cf_negative_ttl), time(NULL));

	(void)sec, (void)why_bogus, (void)ratelimited;
	if (b->status == PD_DNS_SERVFAIL)
		pd_metric_add(PD_M_DNS_SERVFAIL, 1);
	if (pd_log_verbose() >= 2) {
		char esc[300];

		pd_esc(esc, sizeof(esc), q->name, 253, PD_ESC_TOKEN);
		pd_log(PD_LOG_DEBUG, "dns: %s type %u: rcode %d, status %d, %zu record(s), ttl %u", esc, q->type, rcode,
		       b->status, b->n, b->ttl);
	}
	if (q->cache)
		pd_dns_cache_put(b, q->resolver);
	while (q->waiters) {
		pd_dns_wait *w = q->waiters;
		pd_request *r = w->req;

		drop_wait(w);
		deliver(r, b, q->resolver);
	}
	while (*pp && *pp != q)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = q->hnext;
	dl->n_queries--;
	pd_dns_blob_unref(b);
	free(q);
}

/* deadline_fire - a check's DNS deadline: what is not in is a timeout */
static void deadline_fire(pd_timer *t, uint64_t now)
{
	pd_dns_req *d = (pd_dns_req *)((char *)t - offsetof(pd_dns_req, deadline));
	pd_request *r = (pd_request *)((char *)d - offsetof(pd_request, dns));
	time_t wall = time(NULL);

	(void)now;
	while (d->waits) {
		pd_dns_wait *w = d->waits;
		query *q = w->q;

		pd_metric_add(PD_M_DNS_TIMEOUTS, 1);
		if (!find_use(d, q->name, q->type, q->resolver))
			add_use(d, pd_dns_blob_status(q->name, q->type, PD_DNS_TIMEOUT, wall), q->resolver, 0, wall);
		drop_wait(w); /* the query goes on: its answer still fills the cache */
	}
	d->pending = 0;
	queue_ready(d->lp->dns, r);
}

/* presentation - NAME as libunbound reads names: octets other than letters,
 * digits, '-' and '_' as \DDD (a space in a label, say) */
static void presentation(const char *name, char *out, size_t cap)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)name; *p && o + 5 < cap; p++) {
		if (*p == '.' || *p == '-' || *p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, cap - o, "\\%03u", *p);
	}
	out[o] = 0;
}

/* join - request R waits for Q */
static void join(pd_request *r, query *q)
{
	pd_dns_wait *wt = pd_xcalloc(1, sizeof(*wt));

	wt->req = r;
	wt->q = q;
	wt->qnext = q->waiters;
	if (q->waiters)
		q->waiters->qprev = wt;
	q->waiters = wt;
	wt->rnext = r->dns.waits;
	r->dns.waits = wt;
	r->dns.pending++;
}

/* start_query - R waits for want W: a query already under way on DL, or a
 * new one (whose answer may come before this returns: local data, an
 * error); 0, or -1 when none can start */
static int start_query(pd_dns_loop *dl, pd_request *r, const pd_dns_want *w)
{
	uint64_t h = pd_dns_hash(w->name, w->type, w->resolver);
	query *q;
	struct ub_ctx *ctx;
	int rc;

	for (q = dl->buckets[h % QUERY_BUCKETS]; q; q = q->hnext)
		if (q->hash == h && q->type == w->type && q->resolver == w->resolver && strcmp(q->name, w->name) == 0) {
			q->cache |= !w->nocache;
			join(r, q);
			return 0;
		}
	if (dl->n_queries >= atomic_load(&cf_max_queries)) {
		time_t now = time(NULL);

		if (now != dl->full_logged) {
			pd_log(PD_LOG_WARNING, "dns: %zu queries under way on this network thread (max_queries): "
			       "new lookups fail until answers come in", dl->n_queries);
			dl->full_logged = now;
		}
		return -1;
	}
	if (!(ctx = make_ctx(dl, w->resolver)))
		return -1;
	q = pd_xcalloc(1, sizeof(*q));
	q->hash = h;
	q->type = w->type;
	q->resolver = w->resolver;
	q->cache = !w->nocache;
	q->dl = dl;
	memcpy(q->name, w->name, strlen(w->name) + 1);
	q->hnext = dl->buckets[h % QUERY_BUCKETS];
	dl->buckets[h % QUERY_BUCKETS] = q;
	dl->n_queries++;
	pd_metric_add(PD_M_DNS_QUERIES, 1);
	join(r, q);
	{
		char pres[256 * 4 + 1];

		presentation(q->name, pres, sizeof(pres));
		rc = ub_resolve_event(ctx, pres, (int)q->type, 1, q, query_done, &q->async_id);
	}
	if (rc != 0) {
		char esc[300];

		pd_log(PD_LOG_WARNING, "dns: cannot ask for %s: %s", pd_esc(esc, sizeof(esc), w->name, 253, PD_ESC_TOKEN) ? esc : "",
		       ub_strerror(rc));
		query_done(q, 2, NULL, 0, 0, NULL, 0); /* SERVFAIL to its waiters */
	}
	return 0;
}

/* pd_dns_start - R's wants become queries it waits for */
size_t pd_dns_start(pd_request *r, pd_loop *lp)
{
	pd_dns_loop *dl = loop_dns(lp);
	pd_dns_req *d = &r->dns;
	time_t now = time(NULL);

	d->lp = lp;
	d->deadline.fire = deadline_fire;
	d->starting = 1;
	for (size_t i = 0; i < d->n_want; i++) {
		pd_dns_want *w = &d->want[i];
		pd_dns_blob *b;

		if (find_use(d, w->name, w->type, w->resolver))
			continue;
		if (!w->nocache && (b = pd_dns_cache_get(w->name, w->type, w->resolver, ~0u, now))) {
			add_use(d, b, w->resolver, r->chain->insts[r->res.next]->pub.dns_max_ttl, now);
			continue; /* another request brought it meanwhile */
		}
		if (start_query(dl, r, w) < 0)
			add_use(d, pd_dns_blob_status(w->name, w->type, PD_DNS_SERVFAIL, now), w->resolver, 0, now);
	}
	d->n_want = 0;
	d->starting = 0;
	if (d->pending)
		pd_timer_arm(&lp->timers, &d->deadline, r->res.dns_deadline);
	return d->pending;
}

/* pd_dns_cancel - R leaves every waiting list */
void pd_dns_cancel(pd_request *r)
{
	pd_dns_req *d = &r->dns;

	while (d->waits)
		drop_wait(d->waits);
	d->pending = 0;
	d->n_want = 0;
	if (d->lp) {
		pd_timer_cancel(&d->lp->timers, &d->deadline);
		if (d->ready && d->lp->dns) {
			pd_request **pp = &d->lp->dns->ready;

			while (*pp && *pp != r)
				pp = &(*pp)->dns.rnext;
			if (*pp)
				*pp = r->dns.rnext;
			d->ready = 0;
		}
	}
}

/* pd_dns_loop_idle - after a batch: resume the requests whose answers are
 * in (their checks may start more queries), release freed events */
void pd_dns_loop_idle(pd_loop *lp)
{
	pd_dns_loop *dl = lp->dns;

	if (!dl)
		return;
	while (dl->ready) {
		pd_request *r = dl->ready;

		dl->ready = r->dns.rnext;
		r->dns.ready = 0;
		pd_pipeline_resume(r);
	}
	pd_ub_base_bury(&dl->base);
}

/* pd_dns_loop_free - a stopped loop: its contexts and queries */
void pd_dns_loop_free(pd_loop *lp)
{
	pd_dns_loop *dl = lp->dns;

	if (!dl)
		return;
	for (int i = 0; i < MAX_RESOLVERS; i++)
		if (dl->ctx[i])
			ub_ctx_delete(dl->ctx[i]); /* its queries are cancelled: no callback */
	for (size_t i = 0; i < QUERY_BUCKETS; i++)
		while (dl->buckets[i]) {
			query *q = dl->buckets[i];

			dl->buckets[i] = q->hnext;
			while (q->waiters)
				drop_wait(q->waiters);
			free(q);
		}
	pd_ub_base_bury(&dl->base);
	free(dl);
	lp->dns = NULL;
}
