/* chain.c - plugin instances, the core's per-plugin filters, and running a chain */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "chain.h"
#include "log.h"
#include "metrics.h"
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
	if (word_is(action, "PREPEND"))
		return PD_KIND_PREPEND;
	return PD_KIND_DECISIVE;
}

/* skip_by_filters - the core's per-plugin filters: state, SASL, networks */
static int skip_by_filters(const pd_inst *in, const pd_request *req, unsigned state, int fam,
			   const unsigned char *addr)
{
	const char *sasl;

	if (!(in->states & state))
		return 1;
	if (in->skip_sasl && (sasl = pd_req_get(req, "sasl_username")) && *sasl)
		return 1;
	if (in->n_nets && fam && pd_cidr_match(in->nets, in->n_nets, fam, addr))
		return 1;
	return 0;
}

static __thread int may_block; /* this thread may block: a worker, or spawn mode */

/* pd_chain_may_block - mark the calling thread */
void pd_chain_may_block(int on)
{
	may_block = on;
}

/* host_may_block - the plugins' view of the same */
static int host_may_block(void)
{
	return may_block;
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

/* call_plugin - one check() call, serialised if the plugin asks */
static int call_plugin(pd_inst *in, const pd_request *req, pd_reply *reply)
{
	int rc;

	if (in->mod->info->flags & PD_PLUGIN_SERIAL) {
		pthread_mutex_lock(&in->lock);
		rc = in->mod->check(&in->pub, req, reply);
		pthread_mutex_unlock(&in->lock);
	} else {
		rc = in->mod->check(&in->pub, req, reply);
	}
	if (rc != PD_CHECK_WOULDBLOCK || may_block)
		atomic_fetch_add_explicit(&in->calls, 1, memory_order_relaxed);
	return rc;
}

/* pd_chain_run - ask each plugin until one decides (or one needs a thread that may block) */
int pd_chain_run(const pd_chain *chain, const pd_request *req, const char *default_action, const char *on_error,
		 pd_result *res, int resume)
{
	unsigned state = pd_request_state(pd_req_get(req, "protocol_state"));
	const char *caddr = pd_req_get(req, "client_address");
	unsigned char addr[16];
	int fam = 0;
	pd_reply reply;

	if (!resume) {
		res->next = 0;
		res->have_prepend = 0;
	}
	if (!caddr || pd_addr_parse(caddr, &fam, addr) < 0)
		fam = 0;
	for (size_t i = res->next; i < chain->n; i++) {
		pd_inst *in = chain->insts[i];
		unsigned flags = in->mod->info->flags;
		const char *action;
		enum pd_kind kind;
		int rc;

		if (!in->started || skip_by_filters(in, req, state, fam, addr))
			continue;
		if (!may_block && !(flags & (PD_PLUGIN_NONBLOCKING | PD_PLUGIN_TRY_INLINE))) {
			res->next = i; /* this one may block: a worker thread goes on from here */
			return PD_CHAIN_BLOCKED;
		}
		reply.text[0] = 0;
		atomic_store_explicit(&res->running_since, pd_now_us(), memory_order_relaxed);
		atomic_store_explicit(&res->running_timeout, in->timeout, memory_order_relaxed);
		atomic_store_explicit(&res->running, in->pub.name, memory_order_release);
		slot_mark(in->pub.name);
		rc = call_plugin(in, req, &reply);
		slot_mark(NULL);
		atomic_store_explicit(&res->running, NULL, memory_order_relaxed);
		if (rc == PD_CHECK_WOULDBLOCK && !may_block && (flags & PD_PLUGIN_TRY_INLINE)) {
			res->next = i; /* asked again on a worker thread */
			return PD_CHAIN_BLOCKED;
		}
		if (rc != PD_CHECK_OK) {
			atomic_fetch_add_explicit(&in->errors, 1, memory_order_relaxed);
			pd_log(PD_LOG_WARNING, "%s: check failed, on_error action \"%s\" applies", in->pub.name, on_error);
			action = on_error;
		} else {
			action = reply.text;
		}
		kind = pd_action_kind(action);
		pd_metrics_plugin_call(in->metric, rc != PD_CHECK_OK, kind == PD_KIND_DECISIVE);
		if (kind == PD_KIND_DECISIVE) {
			pd_reply_set(&res->reply, action);
			res->plugin = in->pub.name;
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

/* host_now - wall clock seconds */
static time_t host_now(void)
{
	return time(NULL);
}

/* host_reply - printf-style reply, control characters removed */
static void host_reply(pd_reply *reply, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pd_reply_vformat(reply, fmt, ap);
	va_end(ap);
}

const pd_host pd_core_host = {
    .api = PD_PLUGIN_API,
    .log = host_log,
    .now = host_now,
    .attr = pd_req_get,
    .attr_count = pd_req_count,
    .attr_at = pd_req_at,
    .reply = host_reply,
    .may_block = host_may_block,
};
