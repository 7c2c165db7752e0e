/* chain.c - plugin instances, the core's per-plugin filters, and running a chain */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "chain.h"
#include "escape.h"
#include "hoststore.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const struct {
	const char *name;
	unsigned bit;
} state_names[] = {
    {"CONNECT", PD_ST_CONNECT}, {"EHLO", PD_ST_HELO}, {"HELO", PD_ST_HELO},
    {"MAIL", PD_ST_MAIL},       {"RCPT", PD_ST_RCPT}, {"DATA", PD_ST_DATA},
    {"END-OF-MESSAGE", PD_ST_EOM}, {"VRFY", PD_ST_VRFY}, {"ETRN", PD_ST_ETRN},
    {"ALL", PD_ST_ALL},
};

/* pd_state_bit - bit for a state name from the config */
unsigned pd_state_bit(const char *name)
{
	for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (strcasecmp(state_names[i].name, name) == 0)
			return state_names[i].bit;
	return 0;
}

/* pd_request_state - bit for a request's protocol_state */
unsigned pd_request_state(const char *value)
{
	unsigned bit = value ? pd_state_bit(value) : 0;

	return bit && bit != PD_ST_ALL ? bit : PD_ST_OTHER;
}

/* word_is - does ACTION start with word W (case-insensitive) */
static int word_is(const char *action, const char *w)
{
	size_t n = strlen(w);

	return strncasecmp(action, w, n) == 0 && (action[n] == 0 || isspace((unsigned char)action[n]));
}

/* pd_action_kind - DUNNO/OK continue, PREPEND is pending, the rest decide */
enum pd_kind pd_action_kind(const char *action)
{
	while (isspace((unsigned char)*action))
		action++;
	if (!*action || word_is(action, "DUNNO") || word_is(action, "OK"))
		return PD_KIND_CONTINUE;
	/* WARN and INFO only make Postfix log a line and go on (access(5)): like
	 * PREPEND, they are sent when nobody decides */
	if (word_is(action, "PREPEND") || word_is(action, "WARN") || word_is(action, "INFO"))
		return PD_KIND_PREPEND;
	return PD_KIND_DECISIVE;
}

/* pd_chain_trace - policyd -q: every step of a chain, told (NULL: nobody listens) */
pd_chain_trace_fn *pd_chain_trace;

/* skip_by_filters - the core's per-plugin filters: state, SASL, networks; why it skips, or NULL */
static const char *skip_by_filters(const pd_inst *in, const pd_attrs *a, unsigned state, int fam,
				   const unsigned char *addr)
{
	const char *sasl;

	if (!in->started)
		return "skipped: its init failed (optional)";
	if (!(in->states & state))
		return "skipped: protocol_state";
	if (in->skip_sasl && (sasl = pd_attrs_get(a, "sasl_username")) && *sasl)
		return "skipped: skip_sasl";
	if (in->n_nets && fam && pd_cidr_match(in->nets, in->n_nets, fam, addr))
		return "skipped: skip_networks";
	return NULL;
}

/* observed - an observing instance's decision (or error) is logged and counted, and the chain
 * goes on as if it had said DUNNO; a PREPEND is no decision and stays */
static void observed(pd_inst *in, const char *action, int failed)
{
	char buf[PD_REPLY_MAX * 4 + 1];

	pd_esc(buf, sizeof(buf), action, strlen(action), 0);
	pd_log(PD_LOG_INFO, "%s: observe: would have answered \"%s\"%s", in->pub.name, buf,
	       failed ? " (its check failed: on_error)" : "");
	pd_metrics_plugin_observed(in->metric);
}

static pd_slot *slots;
static size_t n_slots;
static atomic_size_t next_slot;
static __thread pd_slot *my_slot;
static __thread int my_slot_set;

/* pd_chain_set_slots - where threads note the plugin they are inside */
void pd_chain_set_slots(pd_slot *s, size_t n)
{
	slots = s;
	n_slots = n;
}

/* slot_mark - note NAME (or clear with NULL) in this thread's slot */
static void slot_mark(const char *name)
{
	if (!my_slot_set) {
		size_t i = atomic_fetch_add(&next_slot, 1);

		my_slot = slots && i < n_slots ? &slots[i] : NULL;
		my_slot_set = 1;
	}
	if (!my_slot)
		return;
	if (name) { /* on every plugin call: a bounded copy, no formatting */
		size_t n = strnlen(name, sizeof(my_slot->name) - 1);

		memcpy(my_slot->name, name, n);
		my_slot->name[n] = 0;
	} else {
		my_slot->name[0] = 0;
	}
}

/* check_failed - a plugin's check failed: logged at once, then at most one
 * line a second with the count (an outage must not log every request) */
static void check_failed(pd_inst *in, const char *on_error, const char *why)
{
	uint64_t now = pd_now_us();
	long long last = atomic_load_explicit(&in->errors_logged_at, memory_order_relaxed);
	unsigned long quiet;

	atomic_fetch_add_explicit(&in->errors, 1, memory_order_relaxed);
	if (last && now - (uint64_t)last < 1000000u) {
		atomic_fetch_add_explicit(&in->quiet_errors, 1, memory_order_relaxed);
		return;
	}
	if (!atomic_compare_exchange_strong(&in->errors_logged_at, &last, (long long)now)) {
		atomic_fetch_add_explicit(&in->quiet_errors, 1, memory_order_relaxed);
		return;
	}
	quiet = atomic_exchange_explicit(&in->quiet_errors, 0, memory_order_relaxed);
	if (quiet)
		pd_log(PD_LOG_WARNING, "%s: check failed%s, on_error action \"%s\" applies (and to %lu more since the last "
		       "such line)", in->pub.name, why, on_error, quiet);
	else
		pd_log(PD_LOG_WARNING, "%s: check failed%s, on_error action \"%s\" applies", in->pub.name, why,
		       on_error);
}

/* pd_chain_begin - a new request: the chain starts at its first plugin */
void pd_chain_begin(pd_result *res)
{
	res->next = 0;
	res->have_prepend = 0;
	res->dns_deadline = 0;
	res->plugin = "default";
	res->reply.text[0] = 0;
}

/* pd_chain_run - ask each plugin until one decides, waits, or needs a worker */
int pd_chain_run(const pd_chain *chain, pd_request *req, const char *default_action, const char *on_error,
		 int on_worker)
{
	const pd_attrs *a = &req->attrs;
	pd_result *res = &req->res;
	unsigned state = pd_request_state(pd_attrs_get(a, "protocol_state"));
	const char *caddr = pd_attrs_get(a, "client_address");
	unsigned char addr[16];
	int fam = 0;
	pd_reply reply;

	if (!caddr || pd_addr_parse(caddr, &fam, addr) < 0)
		fam = 0;
	for (size_t i = res->next; i < chain->n; i++) {
		pd_inst *in = chain->insts[i];
		const char *action, *why = "";
		enum pd_kind kind;
		const char *skip;
		int rc;

		if ((skip = skip_by_filters(in, a, state, fam, addr))) {
			if (pd_chain_trace)
				pd_chain_trace(in->pub.name, skip);
			continue;
		}
		res->next = i;
		if (in->pub.blocking && !on_worker)
			return PD_CHAIN_WORKER; /* this one may block: a worker thread goes on from here */
		if (!res->dns_deadline) /* its check starts now: so does its DNS deadline */
			res->dns_deadline = pd_now_us() + (uint64_t)in->pub.dns_timeout_ms * 1000u;
		reply.text[0] = 0;
		atomic_store_explicit(&res->running_since, pd_now_us(), memory_order_relaxed);
		atomic_store_explicit(&res->running_timeout, in->timeout, memory_order_relaxed);
		atomic_store_explicit(&res->running, in->pub.name, memory_order_release);
		slot_mark(in->pub.name);
		rc = in->mod->desc->check(&in->pub, req, &reply);
		pd_store_host_release(); /* values from host->store_get live until check() returns */
		slot_mark(NULL);
		atomic_store_explicit(&res->running, NULL, memory_order_relaxed);
		if (rc == PD_CHECK_WAIT) {
			if (pd_dns_wanted(&req->dns))
				return PD_CHAIN_WAIT; /* run again when its answers are in */
			rc = PD_CHECK_ERROR;
			why = " (it returned PD_CHECK_WAIT without a DNS lookup under way)";
		}
		res->dns_deadline = 0; /* the next plugin's check starts afresh */
		atomic_fetch_add_explicit(&in->calls, 1, memory_order_relaxed);
		if (rc != PD_CHECK_OK) {
			check_failed(in, on_error, why);
			action = on_error;
		} else {
			action = reply.text;
		}
		kind = pd_action_kind(action);
		pd_metrics_plugin_call(in->metric, rc != PD_CHECK_OK, kind == PD_KIND_DECISIVE && !in->observe);
		if (pd_chain_trace) {
			char t[PD_REPLY_MAX + 64];

			snprintf(t, sizeof(t), "%s%s%s", *action ? action : "DUNNO", rc != PD_CHECK_OK ? " (check failed: on_error)" : "",
				 kind == PD_KIND_DECISIVE ? (in->observe ? "  [observe: would decide, goes on]" : "  [decides]")
				 : kind == PD_KIND_PREPEND ? (res->have_prepend ? "  [second PREPEND, dropped]" : "  [pending]")
				 : "");
			pd_chain_trace(in->pub.name, t);
		}
		if (kind == PD_KIND_DECISIVE && in->observe) {
			observed(in, action, rc != PD_CHECK_OK);
			continue;
		}
		if (kind == PD_KIND_DECISIVE) {
			pd_reply_set(&res->reply, action);
			res->plugin = in->pub.name;
			res->next = chain->n;
			return PD_CHAIN_DONE;
		}
		if (kind == PD_KIND_PREPEND) {
			if (!res->have_prepend) {
				pd_reply_set(&res->reply, action);
				res->plugin = in->pub.name;
				res->have_prepend = 1;
			} else if (pd_log_verbose()) {
				pd_log(PD_LOG_DEBUG, "%s: second PREPEND dropped (Postfix takes one action)", in->pub.name);
			}
		}
	}
	if (!res->have_prepend) {
		pd_reply_set(&res->reply, default_action);
		res->plugin = "default";
	}
	res->next = chain->n;
	return PD_CHAIN_DONE;
}
