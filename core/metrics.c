/* metrics.c - counters and a latency histogram, in Prometheus text format */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "metrics.h"
#include "cidr.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#ifdef HAVE_MICROHTTPD
#include <microhttpd.h>
#endif

#define MAX_PLUGINS 64

static atomic_long conn_metrics[PD_M_COUNT];

static const char *const action_names[] = {"DUNNO", "OK",     "PREPEND",  "REJECT", "DEFER_IF_PERMIT", "DEFER",
					   "DEFER_IF_REJECT", "HOLD", "DISCARD", "FILTER", "REDIRECT",  "WARN",
					   "4xx",   "5xx",    "other"};
#define N_ACTIONS (sizeof(action_names) / sizeof(action_names[0]))
static atomic_ulong actions[N_ACTIONS];

/* upper bounds of the latency buckets, in microseconds */
static const uint64_t bucket_us[] = {50,    100,    250,    500,     1000,    2500,    5000,     10000, 25000,
				     50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
#define N_BUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]))
static atomic_ulong buckets[N_BUCKETS + 1]; /* last: +Inf */
static atomic_ulong sum_us, requests;

static char *plugin_names[MAX_PLUGINS];
static atomic_int n_plugins;
static atomic_ulong p_calls[MAX_PLUGINS], p_errors[MAX_PLUGINS], p_decisions[MAX_PLUGINS], p_observed[MAX_PLUGINS];
static const unsigned long *restarts;

/* pd_metric_add - a connection counter or gauge */
void pd_metric_add(enum pd_metric m, long delta)
{
	atomic_fetch_add_explicit(&conn_metrics[m], delta, memory_order_relaxed);
}

/* pd_metrics_plugin - index of a plugin name */
int pd_metrics_plugin(const char *name)
{
	int n = atomic_load(&n_plugins);

	for (int i = 0; i < n; i++)
		if (strcmp(plugin_names[i], name) == 0)
			return i;
	if (n >= MAX_PLUGINS)
		return -1;
	plugin_names[n] = pd_xstrdup(name);
	atomic_store(&n_plugins, n + 1);
	return n;
}

/* pd_metrics_plugin_call - per-plugin counters */
void pd_metrics_plugin_call(int idx, int error, int decided)
{
	if (idx < 0 || idx >= MAX_PLUGINS)
		return;
	atomic_fetch_add_explicit(&p_calls[idx], 1, memory_order_relaxed);
	if (error)
		atomic_fetch_add_explicit(&p_errors[idx], 1, memory_order_relaxed);
	if (decided)
		atomic_fetch_add_explicit(&p_decisions[idx], 1, memory_order_relaxed);
}

/* pd_metrics_plugin_observed - a decision observe = true kept from being sent */
void pd_metrics_plugin_observed(int idx)
{
	if (idx >= 0 && idx < MAX_PLUGINS)
		atomic_fetch_add_explicit(&p_observed[idx], 1, memory_order_relaxed);
}

/* action_index - the kind of an action, by its first word */
static size_t action_index(const char *a)
{
	size_t n;

	while (isspace((unsigned char)*a))
		a++;
	if (!*a)
		return 0; /* empty means DUNNO */
	if ((a[0] == '4' || a[0] == '5') && isdigit((unsigned char)a[1]) && isdigit((unsigned char)a[2]))
		return a[0] == '4' ? N_ACTIONS - 3 : N_ACTIONS - 2;
	n = strcspn(a, " \t");
	for (size_t i = 0; i < N_ACTIONS - 3; i++)
		if (strlen(action_names[i]) == n && strncasecmp(a, action_names[i], n) == 0)
			return i;
	return N_ACTIONS - 1;
}

/* pd_metrics_request - count one answered request */
void pd_metrics_request(const char *action, uint64_t us)
{
	size_t b = 0;

	while (b < N_BUCKETS && us > bucket_us[b])
		b++;
	atomic_fetch_add_explicit(&buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&requests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&actions[action_index(action)], 1, memory_order_relaxed);
}

/* pd_metrics_set_restarts - the master's restart counter */
void pd_metrics_set_restarts(const unsigned long *r)
{
	restarts = r;
}

typedef struct sbuf {
	char *p;
	size_t len, cap;
} sbuf;

/* sb_printf - append to a growing buffer */
static void sb_printf(sbuf *b, const char *fmt, ...) PD_FMT(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap * 2 + (size_t)(n > 0 ? n : 0);
		b->p = pd_xrealloc(b->p, b->cap);
	}
}

/* counter - HELP, TYPE and one unlabelled value */
static void counter(sbuf *b, const char *name, const char *type, const char *help, unsigned long v)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %lu\n", name, help, name, type, name, v);
}

/* plugin_family - one counter per plugin name */
static void plugin_family(sbuf *b, const char *name, const char *help, atomic_ulong *v, int np)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (int i = 0; i < np; i++)
		sb_printf(b, "%s{plugin=\"%s\"} %lu\n", name, plugin_names[i], atomic_load(&v[i]));
}

/* pd_metrics_render - everything, Prometheus text format */
char *pd_metrics_render(size_t *len)
{
	sbuf b = {pd_xmalloc(4096), 0, 4096};
	unsigned long cum = 0;
	int np = atomic_load(&n_plugins);

	counter(&b, "policyd_requests_total", "counter", "Requests answered.", atomic_load(&requests));
	sb_printf(&b, "# HELP policyd_actions_total Requests answered, by kind of action.\n"
		      "# TYPE policyd_actions_total counter\n");
	for (size_t i = 0; i < N_ACTIONS; i++)
		sb_printf(&b, "policyd_actions_total{action=\"%s\"} %lu\n", action_names[i], atomic_load(&actions[i]));
	sb_printf(&b, "# HELP policyd_request_duration_seconds Time from a complete request to its answer.\n"
		      "# TYPE policyd_request_duration_seconds histogram\n");
	for (size_t i = 0; i <= N_BUCKETS; i++) {
		cum += atomic_load(&buckets[i]);
		if (i < N_BUCKETS)
			sb_printf(&b, "policyd_request_duration_seconds_bucket{le=\"%g\"} %lu\n", bucket_us[i] / 1e6, cum);
		else
			sb_printf(&b, "policyd_request_duration_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
	}
	sb_printf(&b, "policyd_request_duration_seconds_sum %.6f\npolicyd_request_duration_seconds_count %lu\n",
		  atomic_load(&sum_us) / 1e6, cum);
	plugin_family(&b, "policyd_plugin_calls_total", "Calls of each plugin's check.", p_calls, np);
	plugin_family(&b, "policyd_plugin_errors_total", "Failed checks (on_error applied).", p_errors, np);
	plugin_family(&b, "policyd_plugin_decisions_total", "Requests whose answer came from the plugin.", p_decisions,
		      np);
	plugin_family(&b, "policyd_plugin_observed_total",
		      "Decisions of a plugin with observe = true: logged, not sent (the chain went on).", p_observed, np);
	counter(&b, "policyd_connections_open", "gauge", "Client connections open now.",
		(unsigned long)atomic_load(&conn_metrics[PD_M_CONN_OPEN]));
	counter(&b, "policyd_connections_accepted_total", "counter", "Client connections accepted.",
		(unsigned long)atomic_load(&conn_metrics[PD_M_CONN_ACCEPTED]));
	counter(&b, "policyd_connections_over_limit_total", "counter",
		"Connections closed for crossing a bound (line, attributes, size).",
		(unsigned long)atomic_load(&conn_metrics[PD_M_CONN_OVER_LIMIT]));
	counter(&b, "policyd_connections_slow_total", "counter",
		"Connections closed because a request did not arrive whole within read_timeout.",
		(unsigned long)atomic_load(&conn_metrics[PD_M_CONN_SLOW]));
	counter(&b, "policyd_garbage_lines_total", "counter", "Request lines ignored as malformed.",
		(unsigned long)atomic_load(&conn_metrics[PD_M_GARBAGE_LINES]));
	counter(&b, "policyd_bad_requests_total", "counter", "Requests of an unknown type (connection closed).",
		(unsigned long)atomic_load(&conn_metrics[PD_M_BAD_REQUESTS]));
	counter(&b, "policyd_request_timeouts_total", "counter", "Requests answered with on_error after request_timeout.",
		(unsigned long)atomic_load(&conn_metrics[PD_M_TIMEOUTS]));
	counter(&b, "policyd_requests_to_workers_total", "counter",
		"Requests handed from a network thread to a worker thread (a plugin had to wait).",
		(unsigned long)atomic_load(&conn_metrics[PD_M_HANDOFFS]));
	counter(&b, "policyd_requests_dropped_total", "counter",
		"Requests not run because their time budget ran out while they waited for a worker thread.",
		(unsigned long)atomic_load(&conn_metrics[PD_M_DROPPED]));
	counter(&b, "policyd_dns_queries_total", "counter", "DNS queries sent (through libunbound).",
		(unsigned long)atomic_load(&conn_metrics[PD_M_DNS_QUERIES]));
	counter(&b, "policyd_dns_cache_hits_total", "counter", "DNS answers taken from the shared cache.",
		(unsigned long)atomic_load(&conn_metrics[PD_M_DNS_CACHE_HITS]));
	counter(&b, "policyd_dns_timeouts_total", "counter", "DNS answers a check's deadline did not wait for.",
		(unsigned long)atomic_load(&conn_metrics[PD_M_DNS_TIMEOUTS]));
	counter(&b, "policyd_dns_servfail_total", "counter", "DNS queries that failed (SERVFAIL, no answer from the servers).",
		(unsigned long)atomic_load(&conn_metrics[PD_M_DNS_SERVFAIL]));
	counter(&b, "policyd_worker_restarts_total", "counter", "Worker processes restarted by the master after dying.",
		restarts ? __atomic_load_n(restarts, __ATOMIC_RELAXED) : 0);
	*len = b.len;
	return b.p;
}

/* pd_metrics_addr_ok - metrics only on loopback */
int pd_metrics_addr_ok(const char *addr, const char **why)
{
	char host[64];
	const char *colon;
	unsigned char a[16];
	int fam;
	long port;
	char *end;

	if (*addr == '[') {
		const char *close = strchr(addr, ']');

		if (!close || close[1] != ':' || (size_t)(close - addr - 1) >= sizeof(host)) {
			*why = "expected [::1]:port";
			return -1;
		}
		memcpy(host, addr + 1, (size_t)(close - addr - 1));
		host[close - addr - 1] = 0;
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
			*why = "expected 127.0.0.1:port";
			return -1;
		}
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = 0;
	}
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 1 || port > 65535) {
		*why = "bad port";
		return -1;
	}
	if (pd_addr_parse(host, &fam, a) < 0) {
		*why = "expected a numeric loopback address";
		return -1;
	}
	if (!((fam == AF_INET && a[0] == 127) || (fam == AF_INET6 && !memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16)))) {
		*why = "metrics are served on loopback only (127.0.0.0/8 or ::1)";
		return -1;
	}
	return 0;
}

#ifdef HAVE_MICROHTTPD
static struct MHD_Daemon *httpd;

/* handle - GET /metrics; 404 elsewhere */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_len, void **state)
{
	struct MHD_Response *r;
	enum MHD_Result rc;
	char *body;
	size_t len;
	unsigned status = MHD_HTTP_OK;

	(void)cls, (void)version, (void)upload, (void)upload_len, (void)state;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		body = pd_xstrdup("method not allowed\n");
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (strcmp(url, "/metrics") != 0) {
		body = pd_xstrdup("policyd: try /metrics\n");
		status = MHD_HTTP_NOT_FOUND;
	} else {
		body = pd_metrics_render(&len);
	}
	len = strlen(body);
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

/* pd_metrics_start - the loopback HTTP listener */
int pd_metrics_start(const char *addr)
{
	struct sockaddr_storage ss;
	const char *why;
	char host[64];
	const char *colon = strrchr(addr, ':');
	unsigned port;
	/* epoll (poll elsewhere): select() drops every socket numbered FD_SETSIZE or more,
	 * so with ~1,000 clients connected /metrics would answer nothing */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;

	if (pd_metrics_addr_ok(addr, &why) < 0) {
		pd_log(PD_LOG_ERR, "metrics_listen \"%s\": %s", addr, why);
		return -1;
	}
	port = (unsigned)atoi(colon + 1);
	memset(&ss, 0, sizeof(ss));
	if (*addr == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr - 2), addr + 1);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, host, &s6->sin6_addr);
		flags |= MHD_USE_IPv6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, host, &s4->sin_addr);
	}
	httpd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR, &ss,
				 MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!httpd) {
		pd_log(PD_LOG_ERR, "metrics_listen \"%s\": cannot listen (address in use?)", addr);
		return -1;
	}
	pd_log(PD_LOG_INFO, "metrics on http://%s/metrics", addr);
	return 0;
}

/* pd_metrics_stop - close the HTTP listener */
void pd_metrics_stop(void)
{
	if (httpd)
		MHD_stop_daemon(httpd);
	httpd = NULL;
}
#else
/* pd_metrics_start - built without libmicrohttpd */
int pd_metrics_start(const char *addr)
{
	pd_log(PD_LOG_ERR, "metrics_listen \"%s\": this policyd was built without libmicrohttpd "
			   "(install libmicrohttpd-dev and rebuild)", addr);
	return -1;
}

/* pd_metrics_stop - nothing to stop */
void pd_metrics_stop(void)
{
}
#endif
