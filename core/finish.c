/* finish.c - the one way a request ends: its reply sent, counted in the metrics, logged */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "finish.h"
#include "conf.h"
#include "conn.h"
#include "escape.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* attr_or - attribute NAME of A, or DFLT when absent or empty */
static const char *attr_or(const pd_attrs *a, const char *name, const char *dflt)
{
	const char *v = pd_attrs_get(a, name);

	return v && *v ? v : dflt;
}

/* log_decision - one line per request with what an admin greps for; client
 * data escaped (escape.h), so that no field can be forged */
static void log_decision(const pd_request *r, const pd_result *res, const char *chain, uint64_t us)
{
	const pd_attrs *a = &r->attrs;
	char buf[1600];
	pd_line l = {.p = buf, .cap = sizeof(buf)};

	/* built by appending, not printf: this runs for every request */
	pd_line_str(&l, "decision: queue_id=");
	pd_line_esc(&l, attr_or(a, "queue_id", "-"), 39, PD_ESC_TOKEN);
	pd_line_str(&l, " client=");
	pd_line_esc(&l, attr_or(a, "client_name", "unknown"), 127, PD_ESC_TOKEN);
	pd_line_str(&l, "[");
	pd_line_esc(&l, attr_or(a, "client_address", ""), 63, PD_ESC_TOKEN);
	pd_line_str(&l, "] helo=");
	pd_line_esc(&l, attr_or(a, "helo_name", "-"), 127, PD_ESC_TOKEN);
	pd_line_str(&l, " sender=<");
	pd_line_esc(&l, attr_or(a, "sender", ""), 255, PD_ESC_TOKEN);
	pd_line_str(&l, "> recipient=<");
	pd_line_esc(&l, attr_or(a, "recipient", ""), 255, PD_ESC_TOKEN);
	pd_line_str(&l, "> state=");
	pd_line_esc(&l, attr_or(a, "protocol_state", "-"), 23, PD_ESC_TOKEN);
	pd_line_str(&l, " chain=");
	pd_line_str(&l, chain);
	pd_line_str(&l, " action=\"");
	pd_line_esc(&l, res->reply.text, 255, 0); /* in quotes: spaces stay */
	pd_line_str(&l, "\" plugin=");
	pd_line_str(&l, res->plugin);
	pd_line_str(&l, " time=");
	pd_line_uint(&l, (unsigned long long)us);
	pd_line_str(&l, "us");
	pd_log_text(PD_LOG_INFO, buf);
}

/* pd_finish - reply, count, then log, and get ready for the next request */
int pd_finish(pd_request *r)
{
	pd_conn *c = r->conn;
	uint64_t us = pd_now_us() - r->t0;
	int rc;

	c->out_len = pd_proto_reply(c->out, sizeof(c->out), r->res.reply.text);
	c->out_off = 0;
	pd_metrics_request(r->res.reply.text, us); /* counted before the client can scrape */
	rc = pd_conn_flush(c); /* the client waits for this; the log line can follow */
	log_decision(r, &r->res, r->chain ? r->chain->name : "-", us);
	atomic_fetch_sub_explicit(&r->gen->refs, 1, memory_order_release);
	pd_request_reset(r);
	return rc;
}

/* pd_finish_timeout - on_error now, the connection is about to close */
void pd_finish_timeout(pd_request *r, const char *hung)
{
	pd_conn *c = r->conn;
	pd_result res = {.plugin = hung ? hung : "timeout"};
	uint64_t us = pd_now_us() - r->t0;
	char out[PD_REPLY_MAX + 16];
	size_t n;

	pd_log(PD_LOG_ERR,
	       "connection %d: no answer within its time budget (plugin %s%s, request_timeout %d s); "
	       "on_error \"%s\" applies and the connection is closed",
	       c->fd, hung ? hung : "(queue)", hung ? " timeout" : "", r->gen->request_timeout, r->gen->on_error);
	pd_reply_set(&res.reply, r->gen->on_error);
	n = pd_proto_reply(out, sizeof(out), res.reply.text);
	if (c->wfd == c->fd)
		(void)send(c->wfd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	else
		(void)!write(c->wfd, out, n);
	pd_metrics_request(res.reply.text, us);
	pd_metric_add(PD_M_TIMEOUTS, 1);
	log_decision(r, &res, r->chain ? r->chain->name : "-", us);
}
