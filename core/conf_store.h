/* conf_store.h - the store { } sections of policyd.conf: stores named, checked, opened, kept tidy */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_CONF_STORE_H
#define PD_CONF_STORE_H

#include <confuse.h>
#include <stdint.h>

#include "store.h"

#define PD_STORE_DEFAULT "default"

/* One store a configuration generation uses. */
typedef struct pd_conf_store {
	char *name;          /* "default" for the unnamed section (or none) */
	int line;            /* its section's line, 0 when there is no section */
	cfg_t *sec;          /* its section, NULL for the implicit default */
	pd_store_conf sc;    /* settings; the strings below back it */
	char *backend, *path, *server, *username, *password, *prefix, *master;
	char *s_username, *s_password;
	char **sentinels;
	size_t n_sentinels;
	long sync_interval, cleanup_interval; /* seconds (GDBM) */
	int used;            /* some instance uses it: opened at start */
	pd_store *st;        /* open, after pd_conf_stores_open */
	int64_t next_sync, next_expire; /* time(NULL) of the next sync and expiry step */
	int in_pass;         /* an expiry pass is under way */
} pd_conf_store;

/* The options of a store section (for the configuration's option table). */
extern cfg_opt_t pd_conf_store_opts[];

/* The store options a plugin section may set for its instance (the options above but
 * database, without defaults): N of them. */
const cfg_opt_t *pd_conf_store_override_opts(size_t *n);

/* Register the validation callbacks of the store options in SECTION ("store", or a plugin's
 * section name) on CFG. */
void pd_conf_store_validators(cfg_t *cfg, const char *section);

/* Does plugin section SEC set one of the override options? */
int pd_conf_store_overrides(cfg_t *sec);

/* A store of instance INST's own: store BASE_NAME (section BASE, NULL for the implicit default)
 * with what plugin section OVER sets; named "BASE_NAME/INST". NULL after logging FILE:LINE. */
pd_conf_store *pd_conf_store_derive(cfg_t *base, cfg_t *over, const char *inst, const char *base_name,
				    const char *state_dir, const char *file, int line);

/* The stores of a parsed configuration: every store section, plus
 * "default" (GDBM in STATE_DIR/state.db) when there is no unnamed one.
 * FILE is for messages. 0, or -1 after logging file:line. */
int pd_conf_stores_build(cfg_t *cfg, const char *file, const char *state_dir, pd_conf_store ***out,
			 size_t *n);

/* Open the stores marked used. 0, or -1 after logging. */
int pd_conf_stores_open(pd_conf_store **s, size_t n);

/* Housekeeping, every fraction of a second from the main thread: GDBM
 * expiry steps (a pass every cleanup_interval, shared with the other
 * processes on the file) and fsync every sync_interval. */
void pd_conf_stores_tick(pd_conf_store **s, size_t n, int64_t now);

/* One short expiry step (the spawn mode's process, before it exits). */
void pd_conf_stores_step(pd_conf_store **s, size_t n, int64_t now);

/* Close and free the N stores (not the array). */
void pd_conf_stores_free(pd_conf_store **s, size_t n);

#endif
