/* conf.h - policyd.conf: parse, load the plugins it names, build the chains */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_CONF_H
#define PD_CONF_H

#include <confuse.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "chain.h"
#include "dns.h"
#include "proto.h"
#include "route_index.h"

/* A listener as configured: its text and the chain it selects. */
typedef struct pd_listen_conf {
	char *text;  /* "inet:127.0.0.1:10023" (unix paths made absolute) */
	char *chain; /* chain name; "default" for the global list */
} pd_listen_conf;

/* One configuration generation: settings, modules, instances, chains.
 * Built beside the running one on SIGHUP and swapped in on success. */
typedef struct pd_conf {
	char *file; /* config file as given */
	char *dir;  /* its directory: base of relative paths */
	pd_listen_conf *listen;
	size_t n_listen;
	unsigned socket_mode;
	uid_t socket_uid; /* (uid_t)-1: unchanged */
	gid_t socket_gid;
	char *user, *group, *pidfile, *plugin_dir, *state_dir;
	char *syslog_socket; /* "" = no syslog */
	char *default_action, *on_error;
	char *metrics_listen; /* "" = off */
	int idle_timeout, request_timeout, facility, threads, io_threads;
	int read_timeout; /* seconds a started request may take to arrive whole */
	int min_timeout; /* smallest of request_timeout and the plugins' timeouts */
	int supervise; /* a master process restarts a crashed worker */
	pd_limits limits;
	pd_dns_conf dns; /* the dns { } section */
	char *dns_resolv_conf;
	pd_module **mods;
	size_t n_mods;
	pd_inst **insts;
	size_t n_insts;
	struct pd_conf_store **stores; /* the store sections (conf_store.h), "default" among them, then
					* the instances' own (a section that changes store settings) */
	size_t n_stores;
	pd_chain **chains; /* chains[0] is "default" */
	pd_route_index routes; /* the chains with rules, and what their lists name */
	size_t n_chains;
	cfg_t *cfg;
	cfg_opt_t *opts, **sub; /* option tables behind cfg */
	atomic_long refs; /* requests running on this generation */
} pd_conf;

/* Parse FILE and load every plugin it names (no plugin code runs but the
 * ABI checks). On any error logs "file:line: message" and returns NULL. */
pd_conf *pd_conf_load(const char *file, int verbose);

/* Create the state directory, owned by UID/GID unless they are -1 (run
 * this before dropping privileges). 0 or -1 (logged). */
int pd_conf_state_dir(const pd_conf *conf, uid_t uid, gid_t gid);

/* Run every plugin's init (after privileges are dropped). 0, or -1 after
 * logging which plugin failed and why. */
int pd_conf_start(pd_conf *conf);

/* Run fini of started instances, unload modules, free. */
void pd_conf_free(pd_conf *conf);

/* The chain called NAME, or NULL. */
const pd_chain *pd_conf_chain(const pd_conf *conf, const char *name);

#endif
