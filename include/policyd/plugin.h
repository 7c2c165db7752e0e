/* plugin.h - the public ABI between the policyd core and its plugins */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * NAME
 *	plugin.h - write a policyd plugin (plugin ABI 2)
 * SYNOPSIS
 *	#include <policyd/plugin.h>
 *
 *	const pd_plugin_desc pd_plugin = { PD_PLUGIN_HEADER, .name = ..., .check = ... };
 * DESCRIPTION
 *	A plugin is a shared object that policyd loads with libltdl. It
 *	exports one symbol, pd_plugin: a constant pd_plugin_desc that says
 *	which ABI and API it was built for, what it is, its libconfuse option
 *	table and its entry points. Build it in tree as a libtool module
 *	(-module -avoid-version -export-symbols-regex '^pd_plugin$'), or out of
 *	tree with
 *	    cc -shared -fPIC $(pkg-config --cflags policyd) my.c -o my.so
 *	Copy plugins/example/example.c: it shows every feature once. Unit-test
 *	a plugin without the daemon with the mock host, <policyd/mockhost.h>
 *	(pkg-config policyd-mockhost).
 *
 * LIFECYCLE AND OWNERSHIP
 *	1. The core reads pd_plugin.abi before it calls any plugin code and
 *	   refuses the file unless it equals PD_PLUGIN_ABI (the message names
 *	   the file and both numbers). It refuses a plugin whose api is higher
 *	   than the core's PD_PLUGIN_API.
 *	2. The option table (options, may be NULL) describes the plugin's
 *	   section; the core adds its own filters to it (protocol_state,
 *	   skip_sasl, skip_networks, observe, optional, timeout, store). After
 *	   the section is parsed, validate(section) may check options against
 *	   each other: report with cfg_error(section, ...) (the admin sees
 *	   file:line) and return -1 to refuse the configuration.
 *	3. init(inst) runs once per instance after privileges are dropped;
 *	   inst->cfg is the section. Keep per-instance data in inst->data. Say
 *	   here, once, how the instance runs (inst->blocking, inst->dns_timeout_ms).
 *	   Return 0, or -1 after logging why.
 *	4. check(inst, req, reply) runs for every request that passes the
 *	   core's filters (see "Check" and "Threads").
 *	5. fini(inst) runs once, after the last check of the instance. Free
 *	   inst->data. It runs only after an init that returned 0: an init
 *	   that fails frees what it allocated itself.
 *	A plugin may be configured several times under different names
 *	(greylist "strict" { ... }): each is an instance with its own section,
 *	data and state namespace. On reload (SIGHUP) new instances are
 *	initialised beside the running ones; an old instance gets fini() when
 *	its last request is done, so two instances of one plugin may coexist.
 *
 * CHECK
 *	check() fills the reply with host->reply() and returns PD_CHECK_OK;
 *	an untouched reply means DUNNO. It returns PD_CHECK_ERROR after
 *	logging: the admin's on_error action applies. DUNNO and OK let the next
 *	plugin run; PREPEND is kept and sent only if no later plugin decides;
 *	any other action (REJECT, DEFER_IF_PERMIT, 4xx/5xx, HOLD, DISCARD,
 *	FILTER ...) decides.
 *	A check that needs DNS asks host->dns() for every name it needs: an
 *	answer the core has (cached, or already received for this request)
 *	comes back at once; otherwise the core starts the query and dns()
 *	says PD_DNS_PENDING. The check then returns PD_CHECK_WAIT without
 *	replying; the core runs check() again for the same request, from the
 *	start, when all its pending answers are in or its DNS deadline
 *	(inst->dns_timeout_ms from the first run) has passed: then every
 *	unanswered name is PD_DNS_TIMEOUT and no new query starts. A check must
 *	therefore be repeatable: no state changed, no line logged before it
 *	knows it will not wait.
 *
 * THREADS
 *	check() runs concurrently on several threads for one instance. An
 *	instance with inst->blocking = 0 promises never to wait (DNS goes
 *	through host->dns) and runs on the network threads; one with
 *	inst->blocking = 1 (the default, safe for plugins that do not say) may
 *	wait (disk, a remote server) and runs on the worker pool, so that it
 *	never stalls other connections. Host services may be called from any
 *	thread during check(). init() and fini() never run concurrently with
 *	check() of the same instance.
 *
 * GROWTH RULES (what a later API level of ABI 2 may change)
 *	- pd_plugin_desc: fields are only appended; the core reads a field
 *	  only if the plugin's api level has it. Set PD_PLUGIN_HEADER first.
 *	- pd_host: function pointers are only appended; check host->api >= N
 *	  before calling one marked "API N".
 *	- pd_instance: allocated by the core; fields are only appended.
 *	- pd_dns_answer, pd_dns_rr, pd_store_value: filled by the core,
 *	  read-only for plugins; fields are only appended.
 *	- constants keep their values and meanings; new ones may be added. A
 *	  plugin treats an unknown PD_DNS_* status like PD_DNS_SERVFAIL.
 *	Anything else (a field removed or retyped, a meaning changed) is a new
 *	PD_PLUGIN_ABI.
 *	libconfuse's types (cfg_t, cfg_opt_t and the CFG_* macros) are part of
 *	this ABI: the plugin and the core must use the same libconfuse ABI
 *	(libconfuse.so.2, libconfuse 3.x); policyd -V prints the version.
 */

#ifndef POLICYD_PLUGIN_H
#define POLICYD_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <confuse.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exact binary interface number. A plugin built for another is refused. */
#define PD_PLUGIN_ABI 2

/* Interface level within ABI 2: grows when something is appended. */
#define PD_PLUGIN_API 1

/* pd_plugin_desc.flags */
#define PD_PLUGIN_SKIP_SASL (1u << 0) /* skip_sasl defaults to true for this plugin */
#define PD_PLUGIN_STATE (1u << 1)     /* it uses host->store_*: the core opens its store before init */

/* Return values of check(). */
#define PD_CHECK_OK 0
#define PD_CHECK_ERROR (-1)
#define PD_CHECK_WAIT 2 /* asked host->dns() for answers not in yet: run me again */

/* Log levels for host->log (syslog priorities). */
#define PD_LOG_ERR 3
#define PD_LOG_WARNING 4
#define PD_LOG_NOTICE 5
#define PD_LOG_INFO 6
#define PD_LOG_DEBUG 7

/* Longest reply (action and text) the core sends, without the newline. */
#define PD_REPLY_MAX 512

#if defined(__GNUC__)
#define PD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PD_PRINTF(f, a)
#endif

typedef struct pd_request pd_request; /* opaque: one request being checked */
typedef struct pd_reply pd_reply;     /* opaque: filled with host->reply */
typedef struct pd_host pd_host;
typedef struct pd_instance pd_instance;

/* ------------------------------------------------------------------ DNS */

/* Record types host->dns() answers (IANA numbers). */
#define PD_DNS_A 1
#define PD_DNS_NS 2
#define PD_DNS_CNAME 5
#define PD_DNS_PTR 12
#define PD_DNS_MX 15
#define PD_DNS_TXT 16
#define PD_DNS_AAAA 28
#define PD_DNS_SPF 99

/* Status of an answer (pd_dns_answer.status), and PD_DNS_PENDING from dns(). */
#define PD_DNS_OK 0       /* the name exists; n may be 0 (no record of that type) */
#define PD_DNS_NXDOMAIN 1 /* the name does not exist */
#define PD_DNS_SERVFAIL 2 /* temporary failure: SERVFAIL, REFUSED, a broken answer */
#define PD_DNS_TIMEOUT 3  /* no answer before the check's DNS deadline */
#define PD_DNS_PENDING 4  /* asked: return PD_CHECK_WAIT, the check runs again */
#define PD_DNS_BADNAME 5  /* not a valid DNS name (too long, empty label): no query */

/* One record of an answer. */
typedef struct pd_dns_rr {
	unsigned type;          /* PD_DNS_* */
	unsigned pref;          /* MX: preference */
	const char *text;       /* TXT/SPF: its strings joined; MX, PTR, CNAME, NS: the name, no final dot */
	size_t len;             /* bytes of text (a TXT string may hold a NUL, shown as \001) */
	unsigned char addr[16]; /* A: 4 bytes, AAAA: 16 bytes */
} pd_dns_rr;

/* An answer: owned by the core, valid until the request is answered. */
typedef struct pd_dns_answer {
	int status;          /* PD_DNS_OK ... PD_DNS_TIMEOUT */
	unsigned ttl;        /* seconds it stays true from now (negative answers too) */
	size_t n;            /* records of the asked type, CNAMEs followed */
	const pd_dns_rr *rr; /* n records */
} pd_dns_answer;

/* --------------------------------------------------------- state service */

/* A value read from the state service (host->store_get); owned by the core,
 * valid until check() returns. */
typedef struct pd_store_value {
	const void *data;
	size_t len;
	unsigned ttl; /* seconds left */
} pd_store_value;

/* What a record update function (host->store_update) wants done. */
#define PD_STORE_KEEP 0   /* leave the record as it was */
#define PD_STORE_WRITE 1  /* store NEW (NEWLEN bytes) with the TTL set */
#define PD_STORE_DELETE 2 /* remove it */

/* A pure function of the old record (NULL when there is none): it may run
 * more than once for one update (the Redis backend retries when another
 * host changed the record meanwhile), so it must not keep state. NEW has
 * room for PD_STORE_RECORD_MAX bytes. */
#define PD_STORE_RECORD_MAX 256
typedef int pd_store_update_fn(void *arg, const void *old, size_t oldlen, void *new, size_t *newlen,
			       unsigned *ttl);

/* ------------------------------------------------------------- the host */

/* One configured plugin instance. The core owns the structure; the plugin
 * owns what it stores in data and sets blocking/dns_timeout_ms in init(). */
struct pd_instance {
	const pd_host *host;   /* services of the core (never NULL) */
	const char *name;      /* instance name: "greylist", or "strict" for greylist "strict" { } */
	const char *plugin;    /* the plugin's name: "greylist" */
	cfg_t *cfg;            /* the instance's section (never NULL: defaults without one) */
	const char *state_dir; /* absolute directory for files of its own */
	int verbose;           /* the daemon's -v count */
	void *data;            /* the plugin's per-instance data */
	int blocking;          /* init sets: 1 check() may wait (worker pool, the default), 0 never */
	/* DNS settings of the instance: the core fills in its defaults (the
	 * dns { } section of policyd.conf) before init, which may change them. */
	unsigned dns_timeout_ms;     /* deadline of one check's lookups */
	const char *dns_resolv_conf; /* nameservers: a resolv.conf file (the plugin keeps the string) */
	int dns_cache;               /* 0: this instance's answers are neither taken from nor put in the cache */
	unsigned dns_max_ttl;        /* longest a cached answer is believed, seconds */
	/* observe = true in the section: the core logs and counts this
	 * instance's decisions and goes on as if it had said DUNNO (a PREPEND
	 * is still sent). A plugin may read it to behave differently (spf
	 * then prepends its header instead); read-only. */
	int observe;
};

/* Services of the core. Every function may be called from any thread. */
struct pd_host {
	unsigned api; /* PD_PLUGIN_API of the core */

	/* Log at a PD_LOG_* level with "name: " prefixed. Never pass client
	 * data as the format, and escape it (policyd escapes control
	 * characters in every line, but a quote or space can still forge a
	 * field): log it with "%s" after host->escape(). */
	void (*log)(const pd_instance *inst, int level, const char *fmt, ...) PD_PRINTF(3, 4);

	/* Copy at most MAX bytes of client data SRC into DST (capacity CAP) so
	 * that it cannot end a log field or line (as \xHH); returns DST. */
	const char *(*escape)(char *dst, size_t cap, const char *src, size_t max);

	/* Seconds since the epoch. Use this, not time(): tests move the clock. */
	time_t (*now)(void);

	/* Value of attribute NAME, or NULL if the request has none; any name
	 * works. Valid until check() returns. */
	const char *(*attr)(const pd_request *req, const char *name);
	/* Number of attributes and the I-th of them (0-based); -1 past the end. */
	size_t (*attr_count)(const pd_request *req);
	int (*attr_at)(const pd_request *req, size_t i, const char **name, const char **value);

	/* Set the reply: "ACTION optional text", printf-style. */
	void (*reply)(pd_reply *reply, const char *fmt, ...) PD_PRINTF(2, 3);

	/* DNS (see "Check"): the answer for NAME (no final dot needed) and
	 * TYPE. Returns the status and points *ANS at the answer, or returns
	 * PD_DNS_PENDING (*ANS NULL): the query is under way. One answer cache
	 * serves every plugin, honouring TTLs. */
	int (*dns)(pd_request *req, const char *name, unsigned type, const pd_dns_answer **ans);

	/* Scores (the score plugin decides by their sum): add VALUE under
	 * LABEL ("dnsbl:zen.spamhaus.org") to this request's score (it
	 * replaces an earlier value of the same LABEL, so a check that runs
	 * again after a DNS wait counts once); read the
	 * sum; list the contributions (-1 past the end; strings valid until
	 * the request is answered). */
	void (*score_add)(pd_request *req, const char *label, double value);
	double (*score_sum)(const pd_request *req);
	int (*score_at)(const pd_request *req, size_t i, const char **label, double *value);

	/* The state service: local (GDBM under state_dir) or shared (Redis), as
	 * the admin configured it; keys live in the instance's own namespace.
	 * Every call is atomic on both backends and returns 0 (or 1/0 found),
	 * or -1 after logging (the backend is down or slower than its timeout:
	 * return PD_CHECK_ERROR, on_error applies). A plugin that uses them
	 * says so with PD_PLUGIN_STATE in its flags: the core then opens the
	 * instance's store before init (an error there stops the start-up);
	 * without the flag these calls fail (logged). On Redis they wait for
	 * the network: an instance that uses them sets blocking = 1 when
	 * host->store_remote(inst) says so. */
	int (*store_remote)(const pd_instance *inst);
	/* Counter KEY over a sliding WINDOW_S: add AMOUNT (0 just reads) and
	 * return the window's total in *TOTAL. Events leave the window whole
	 * and never early: the total never undercounts the last WINDOW_S. */
	int (*store_count)(pd_instance *inst, const char *key, unsigned window_s, long long amount,
			   long long *total);
	/* Keys with a TTL: set (replacing), get (1 found with *VAL, 0 absent),
	 * delete. */
	int (*store_set)(pd_instance *inst, const char *key, const void *val, size_t len, unsigned ttl_s);
	int (*store_get)(pd_instance *inst, const char *key, pd_store_value *val);
	int (*store_del)(pd_instance *inst, const char *key);
	/* Set KEY of distinct members, each kept TTL_S after it was last added:
	 * add MEMBER (NULL just reads) and return the live members in *COUNT. */
	int (*store_members)(pd_instance *inst, const char *key, const char *member, unsigned ttl_s,
			     long long *count);
	/* Read-modify-write record KEY in one atomic step with FN (see
	 * pd_store_update_fn); *RESULT gets what FN returned last. */
	int (*store_update)(pd_instance *inst, const char *key, pd_store_update_fn *fn, void *arg, int *result);
};

/* The plugin's one export. */
typedef struct pd_plugin_desc {
	unsigned abi;               /* PD_PLUGIN_ABI: checked before any plugin code runs */
	unsigned api;               /* PD_PLUGIN_API the plugin was built against */
	const char *name;           /* plugin name, as in policyd.conf: "example" */
	const char *version;        /* plugin version */
	const char *description;    /* one line, for policyd -t -v */
	unsigned flags;             /* PD_PLUGIN_* */
	const char *default_states; /* protocol states, e.g. "RCPT" or "RCPT,END-OF-MESSAGE"; NULL: RCPT */
	cfg_opt_t *options;         /* the section's options, CFG_END()-terminated, or NULL */
	int (*validate)(cfg_t *section); /* optional: checks across options, after the section is parsed */
	int (*init)(pd_instance *inst);
	int (*check)(pd_instance *inst, pd_request *req, pd_reply *reply);
	void (*fini)(pd_instance *inst);
} pd_plugin_desc;

/* The first fields of every descriptor. */
#define PD_PLUGIN_HEADER .abi = PD_PLUGIN_ABI, .api = PD_PLUGIN_API

/* The export, declared so that the compiler checks a plugin's definition. */
extern const pd_plugin_desc pd_plugin;

#ifdef __cplusplus
}
#endif
#endif /* POLICYD_PLUGIN_H */
