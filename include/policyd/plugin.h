/* plugin.h - the public ABI between the policyd core and its plugins */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * NAME
 *	plugin.h - write a policyd plugin
 * SYNOPSIS
 *	#include <policyd/plugin.h>
 * DESCRIPTION
 *	A plugin is a shared object that policyd loads with libltdl. It
 *	exports five symbols, and optionally a sixth (see "Exports" below). Build it in tree as a
 *	libtool module (-module -avoid-version) with
 *	-DPD_PLUGIN_MODULE=<name>, which gives the symbols libltdl's
 *	<name>_LTX_ prefix, or out of tree with
 *	    cc -shared -fPIC $(pkg-config --cflags policyd) my.c -o my.so
 *	which exports them unprefixed; the loader finds either.
 *
 *	Copy plugins/example/example.c: it shows every feature once.
 *
 * LIFECYCLE AND OWNERSHIP
 *	1. The core reads pd_plugin_abi before running any plugin code and
 *	   refuses the file unless it equals PD_PLUGIN_ABI.
 *	2. It reads pd_plugin (a pd_plugin_info): the API level the plugin was built
 *	   for (refused if newer than the core's), flags, default states
 *	   and the libconfuse option table of the plugin's section.
 *	   Optional (API 2): validate(section) runs right after the
 *	   plugin's section is parsed, for checks across options; it reports
 *	   with cfg_error(section, ...) (the admin sees file:line) and returns
 *	   0, or -1 to refuse the configuration.
 *	3. init(inst) runs once per instance, after the configuration is
 *	   parsed and privileges are dropped. inst->cfg is the plugin's
 *	   section. Store per-instance data in inst->data. Return 0, or -1
 *	   after logging why: startup stops (or the plugin is disabled when
 *	   the admin marked it optional).
 *	4. check(inst, req, reply) runs for every request that passes the
 *	   core's filters. See "Thread safety".
 *	5. fini(inst) runs once, after the last check of that instance has
 *	   returned. Free inst->data there.
 *	On reload (SIGHUP) a new instance is initialised beside the old one;
 *	the old instance gets fini() once its last in-flight request is done.
 *	Write init so that two instances of the same plugin can coexist
 *	briefly (for example, share one open database through a reference
 *	counted static).
 *
 * THREAD SAFETY
 *	check() is called concurrently from several threads for the same
 *	instance, unless the plugin sets PD_PLUGIN_SERIAL (then the core
 *	serialises calls per instance). init() and fini() never run
 *	concurrently with check() of the same instance. Host services may be
 *	called from any thread. check() may block (DNS, disk) unless the
 *	plugin declares PD_PLUGIN_NONBLOCKING: only then may the core run it
 *	on a network thread.
 *
 *	PD_PLUGIN_TRY_INLINE (API 2) is for plugins that usually answer at
 *	once and sometimes must wait (a cache in front of DNS, a backend
 *	chosen in the config): the core calls check() on the network thread
 *	first, where host->may_block() returns 0. If the answer needs a wait,
 *	check() returns PD_CHECK_WOULDBLOCK at once, having changed nothing
 *	(no reply, no log line, no state), and the core calls it again for the
 *	same request on a worker thread, where may_block() returns 1 and it
 *	may block. Returning PD_CHECK_WOULDBLOCK where may_block() is 1 is an
 *	error (on_error applies).
 *
 * REPLY
 *	check() fills the reply with pd_host.reply() (printf-style; the core
 *	replaces CR/LF by spaces and caps the length) and returns PD_CHECK_OK,
 *	or returns PD_CHECK_ERROR after logging, and the admin's on_error
 *	action applies. An untouched reply means DUNNO. DUNNO and OK let the
 *	next plugin run; PREPEND is remembered and sent only if no later
 *	plugin decides; any other action (REJECT, DEFER_IF_PERMIT, 4xx/5xx,
 *	HOLD, DISCARD, FILTER, ...) is decisive.
 */

#ifndef POLICYD_PLUGIN_H
#define POLICYD_PLUGIN_H

#include <stddef.h>
#include <stdarg.h>
#include <time.h>
#include <confuse.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exact binary interface number: changes when any structure below changes
 * in an incompatible way. A plugin built for another ABI is refused. */
#define PD_PLUGIN_ABI 1

/* Interface level: grows when the host adds services at the end of
 * pd_host. A plugin needing a newer level than the core's is refused. */
#define PD_PLUGIN_API 2

/* Flags in pd_plugin_info.flags. */
#define PD_PLUGIN_NONBLOCKING (1u << 0) /* check() never blocks: may run inline */
#define PD_PLUGIN_SERIAL (1u << 1)      /* core serialises check() per instance */
#define PD_PLUGIN_SKIP_SASL (1u << 2)   /* default of skip_sasl is true */
#define PD_PLUGIN_TRY_INLINE (1u << 3)  /* API 2: may answer PD_CHECK_WOULDBLOCK on a network thread */

/* Return values of check(). */
#define PD_CHECK_OK 0
#define PD_CHECK_ERROR (-1)
#define PD_CHECK_WOULDBLOCK 1 /* API 2, PD_PLUGIN_TRY_INLINE: call me again where I may block */

/* Log levels for pd_host.log (syslog priorities). */
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

typedef struct pd_request pd_request; /* opaque, read-only for plugins */
typedef struct pd_reply pd_reply;     /* opaque, filled with host->reply */
typedef struct pd_host pd_host;
typedef struct pd_instance pd_instance;

/* One configured plugin instance. The core owns the structure; the plugin
 * owns what it stores in data. */
struct pd_instance {
	const pd_host *host;   /* services of the core (never NULL) */
	const char *name;      /* instance name, e.g. "greylist" */
	cfg_t *cfg;            /* the plugin's config section (NULL if no options) */
	const char *state_dir; /* absolute directory for persistent data */
	int verbose;           /* the daemon's -v count */
	void *data;            /* plugin's own per-instance data */
};

/* Services of the core. Every function may be called from any thread. */
struct pd_host {
	unsigned api; /* PD_PLUGIN_API of the core */

	/* Log at a PD_LOG_* level with "name: " prefixed. Never pass client
	 * data as the format: log it with "%s". */
	void (*log)(const pd_instance *inst, int level, const char *fmt, ...) PD_PRINTF(3, 4);

	/* Seconds since the epoch. Use this, not time(): tests substitute a
	 * clock of their own through a test host. */
	time_t (*now)(void);

	/* Value of attribute NAME, or NULL if the request has none. Any name
	 * works, including attributes this core version does not know. The
	 * string lives until check() returns. */
	const char *(*attr)(const pd_request *req, const char *name);

	/* Number of attributes and the I-th of them (0-based); returns -1
	 * past the end. Strings live until check() returns. */
	size_t (*attr_count)(const pd_request *req);
	int (*attr_at)(const pd_request *req, size_t i, const char **name, const char **value);

	/* Set the reply: "ACTION optional text". printf-style. */
	void (*reply)(pd_reply *reply, const char *fmt, ...) PD_PRINTF(2, 3);

	/* API 2. 1 when the calling thread may block (a worker thread, or
	 * spawn mode), 0 on a network thread. Check api >= 2 before use. */
	int (*may_block)(void);
};

/* Static description of a plugin, exported as pd_plugin. */
typedef struct pd_plugin_info {
	unsigned api;               /* PD_PLUGIN_API the plugin was built against */
	const char *name;           /* module name, e.g. "example" */
	const char *version;        /* plugin version string */
	const char *description;    /* one line for policyd -t -v */
	unsigned flags;             /* PD_PLUGIN_* */
	const char *default_states; /* protocol states, e.g. "RCPT" or "RCPT,DATA"; NULL = RCPT */
	cfg_opt_t *options;         /* libconfuse options of its section, CFG_END()-terminated, or NULL */
} pd_plugin_info;

typedef int pd_plugin_init_fn(pd_instance *inst);
typedef int pd_plugin_check_fn(pd_instance *inst, const pd_request *req, pd_reply *reply);
typedef void pd_plugin_fini_fn(pd_instance *inst);
typedef int pd_plugin_validate_fn(cfg_t *section);

/*
 * Exports. In tree, compile with -DPD_PLUGIN_MODULE=<name> to get libltdl's
 * <name>_LTX_ prefix (needed for static preloading); out of tree, leave it
 * undefined.
 *	const unsigned pd_plugin_abi = PD_PLUGIN_ABI;
 *	const pd_plugin_info pd_plugin = {...};
 *	int pd_plugin_init(pd_instance *);
 *	int pd_plugin_check(pd_instance *, const pd_request *, pd_reply *);
 *	void pd_plugin_fini(pd_instance *);
 *	int pd_plugin_validate(cfg_t *section);	(optional, API 2)
 */
#ifdef PD_PLUGIN_MODULE
#define PD__LTX2(m, s) m##_LTX_##s
#define PD__LTX(m, s) PD__LTX2(m, s)
#define pd_plugin_abi PD__LTX(PD_PLUGIN_MODULE, pd_plugin_abi)
#define pd_plugin PD__LTX(PD_PLUGIN_MODULE, pd_plugin)
#define pd_plugin_init PD__LTX(PD_PLUGIN_MODULE, pd_plugin_init)
#define pd_plugin_check PD__LTX(PD_PLUGIN_MODULE, pd_plugin_check)
#define pd_plugin_fini PD__LTX(PD_PLUGIN_MODULE, pd_plugin_fini)
#define pd_plugin_validate PD__LTX(PD_PLUGIN_MODULE, pd_plugin_validate)
#endif

/* The exports, declared so that the compiler checks a plugin's definitions. */
extern const unsigned pd_plugin_abi;
extern const pd_plugin_info pd_plugin;
pd_plugin_init_fn pd_plugin_init;
pd_plugin_check_fn pd_plugin_check;
pd_plugin_fini_fn pd_plugin_fini;
pd_plugin_validate_fn pd_plugin_validate; /* optional: define it only if needed */

#ifdef __cplusplus
}
#endif
#endif /* POLICYD_PLUGIN_H */
