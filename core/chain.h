/* chain.h - plugin instances, the core's per-plugin filters, and running a chain */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_CHAIN_H
#define PD_CHAIN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "cidr.h"
#include "loader.h"
#include "proto.h"

/* Protocol states a plugin can run in (Postfix's protocol_state). */
#define PD_ST_CONNECT (1u << 0)
#define PD_ST_HELO (1u << 1) /* HELO and EHLO */
#define PD_ST_MAIL (1u << 2)
#define PD_ST_RCPT (1u << 3)
#define PD_ST_DATA (1u << 4)
#define PD_ST_EOM (1u << 5) /* END-OF-MESSAGE */
#define PD_ST_VRFY (1u << 6)
#define PD_ST_ETRN (1u << 7)
#define PD_ST_OTHER (1u << 8) /* a state this version does not know */
#define PD_ST_ALL 0x1ffu

/* The bit of a state name ("RCPT", "END-OF-MESSAGE", "ALL" ...), 0 if unknown. */
unsigned pd_state_bit(const char *name);
/* The bit of a request's protocol_state (unknown or missing: PD_ST_OTHER). */
unsigned pd_request_state(const char *value);

/* One configured plugin instance: the public pd_instance plus the core's filters. */
typedef struct pd_inst {
	pd_instance pub; /* what the plugin sees */
	pd_module *mod;
	char *name;       /* instance name (pub.name points here) */
	unsigned states;  /* PD_ST_* bits it runs in */
	int skip_sasl;    /* skip clients with sasl_username */
	pd_cidr *nets;    /* skip_networks */
	size_t n_nets;
	int optional;     /* init failure disables instead of stopping */
	int observe;      /* observe = true: its decisions are logged and counted, not sent */
	int timeout;      /* seconds one check() may take; 0 = only request_timeout */
	int started;      /* init succeeded: check and fini may run */
	atomic_ulong calls, errors;
	atomic_ulong quiet_errors; /* failed checks not logged yet (one line a second) */
	atomic_llong errors_logged_at; /* pd_now_us() of the last such line */
	int metric;       /* index in the metrics' plugin table */
	int dns_resolver; /* dns.c's index of pub.dns_resolv_conf (set after init) */
	struct pd_conf_store *store; /* its state service (the section's store = "NAME") */
	atomic_int store_warned; /* said once that it may not use it */
} pd_inst;

/* Which requests a chain takes (policyd.conf: recipients, senders, clients,
 * sasl, protocol_state); every condition given must hold. */
typedef struct pd_chain_rules {
	int any;                    /* it has a condition: a rule chain (route_index.c) */
	int rcpt, sender, client;   /* it has these lists */
	int sasl;                   /* -1: either; 1: SASL clients only; 0: others only */
	unsigned states;            /* PD_ST_* it takes; 0: any */
	size_t n_rcpt, n_sender, n_client; /* entries, for policyd -t -v */
} pd_chain_rules;

/* An ordered list of instances. */
typedef struct pd_chain {
	char *name;
	pd_inst **insts;
	size_t n;
	pd_chain_rules rules;
	size_t n_listen; /* listeners of its own */
} pd_chain;

/* A chain's progress on one request, and what it decided. */
typedef struct pd_result {
	pd_reply reply;     /* the action sent to the client */
	const char *plugin; /* deciding plugin, or "default" */
	_Atomic(const char *) running; /* plugin inside check() now, or NULL */
	atomic_ullong running_since;   /* pd_now_us() when it was called */
	atomic_int running_timeout;    /* its own budget in seconds, 0 = none */
	size_t next;      /* plugin to run next (after PD_CHAIN_WORKER or PD_CHAIN_WAIT) */
	uint64_t dns_deadline; /* pd_now_us(): the DNS deadline of plugin NEXT's check; 0: none yet */
	int have_prepend; /* reply holds a pending PREPEND */
} pd_result;

/* Kinds of action, for the chain. */
enum pd_kind { PD_KIND_CONTINUE, PD_KIND_PREPEND, PD_KIND_DECISIVE };
enum pd_kind pd_action_kind(const char *action);

/* What pd_chain_run did. */
#define PD_CHAIN_DONE 0   /* RES holds the reply */
#define PD_CHAIN_WORKER 1 /* instance RES->next may block: go on on a worker thread */
#define PD_CHAIN_WAIT 2   /* instance RES->next waits for DNS answers: run it again when they are in */

/* Ask the chain's plugins in order, from REQ's result's next plugin (0 for
 * a new request: see pd_chain_begin); see plugin.h for the semantics.
 * ON_WORKER: the caller is a worker thread, where blocking instances may
 * run (non-blocking ones run anywhere). */
void pd_chain_begin(pd_result *res);
int pd_chain_run(const pd_chain *chain, pd_request *req, const char *default_action, const char *on_error,
		 int on_worker);

/* policyd -q: called with each instance's verdict (or why it was skipped)
 * and, by route.c, with the chain chosen (INSTANCE NULL). */
typedef void pd_chain_trace_fn(const char *instance, const char *what);
extern pd_chain_trace_fn *pd_chain_trace;

/* Crash attribution: a table of slots in memory shared with the master
 * process; each thread writes the name of the plugin it is inside. */
#define PD_SLOT_NAME 48
typedef struct pd_slot {
	char name[PD_SLOT_NAME];
} pd_slot;
void pd_chain_set_slots(pd_slot *slots, size_t n);

#endif
