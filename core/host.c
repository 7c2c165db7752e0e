/* host.c - the services the core gives plugins (the pd_host of plugin.h) */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Each service is written once, in its own file; this table hands them to
 * plugins: logging with the instance's name (log.c), escaping (lib/
 * escape.c), attributes (proto.c), replies (proto.c), DNS (dns.c), scores
 * (score.c) and the state service (store glue, hoststore.c).
 */
#include "config.h"
#include "host.h"
#include "chain.h"
#include "dns.h"
#include "escape.h"
#include "hoststore.h"
#include "log.h"
#include "request.h"

#include <stdio.h>
#include <time.h>

/* host_log - plugin log lines carry the instance name */
static void host_log(const pd_instance *inst, int level, const char *fmt, ...)
{
	char prefix[96];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "%s: ", inst && inst->name ? inst->name : "plugin");
	if (level < PD_LOG_ERR)
		level = PD_LOG_ERR;
	if (level > PD_LOG_DEBUG)
		level = PD_LOG_DEBUG;
	va_start(ap, fmt);
	pd_vlog(level, prefix, fmt, ap);
	va_end(ap);
}

/* host_escape - client data made loggable (escape.h) */
static const char *host_escape(char *dst, size_t cap, const char *src, size_t max)
{
	pd_esc(dst, cap, src, max, PD_ESC_TOKEN);
	return dst;
}

/* host_now - wall clock seconds */
static time_t host_now(void)
{
	return time(NULL);
}

/* host_attr - attribute NAME of the request */
static const char *host_attr(const pd_request *req, const char *name)
{
	return pd_attrs_get(&req->attrs, name);
}

/* host_attr_count - how many attributes */
static size_t host_attr_count(const pd_request *req)
{
	return pd_attrs_count(&req->attrs);
}

/* host_attr_at - the I-th attribute */
static int host_attr_at(const pd_request *req, size_t i, const char **name, const char **value)
{
	return pd_attrs_at(&req->attrs, i, name, value);
}

/* host_reply - printf-style reply, control characters removed */
static void host_reply(pd_reply *reply, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pd_reply_vformat(reply, fmt, ap);
	va_end(ap);
}

/* host_dns - an answer for the instance whose check is running */
static int host_dns(pd_request *req, const char *name, unsigned type, const pd_dns_answer **ans)
{
	return pd_dns_lookup(req, req->chain->insts[req->res.next], name, type, ans);
}

/* host_score_add - a contribution to the request's score */
static void host_score_add(pd_request *req, const char *label, double value)
{
	pd_scores_add(&req->scores, label, value);
}

/* host_score_sum - the request's score */
static double host_score_sum(const pd_request *req)
{
	return pd_scores_sum(&req->scores);
}

/* host_score_at - the I-th contribution */
static int host_score_at(const pd_request *req, size_t i, const char **label, double *value)
{
	return pd_scores_at(&req->scores, i, label, value);
}

const pd_host pd_core_host = {
    .api = PD_PLUGIN_API,
    .log = host_log,
    .escape = host_escape,
    .now = host_now,
    .attr = host_attr,
    .attr_count = host_attr_count,
    .attr_at = host_attr_at,
    .reply = host_reply,
    .dns = host_dns,
    .score_add = host_score_add,
    .score_sum = host_score_sum,
    .score_at = host_score_at,
    .store_remote = pd_hoststore_remote,
    PD_STORE_HOST_ENTRIES,
};
