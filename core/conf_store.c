/* conf_store.c - the store { } sections of policyd.conf: stores named, checked, opened, kept tidy */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "conf_store.h"
#include "duration.h"
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPIRE_BATCH 200   /* entries per expiry step: one short hold of the lock */
#define EXPIRE_STEPS 10    /* steps per tick while a pass is under way */
#define EXPIRE_RECHECK 60  /* s between two looks whether a pass is due */

/* The options of store { } and store "NAME" { } (doc/policyd.conf.5, STATE STORE). */
cfg_opt_t pd_conf_store_opts[] = {
    CFG_STR("backend", "gdbm", CFGF_NONE),
    CFG_STR("database", "state.db", CFGF_NONE),
    CFG_INT("lock_timeout", 1000, CFGF_NONE),
    CFG_INT_CB("sync_interval", 60, CFGF_NONE, pd_cfg_duration),
    CFG_INT_CB("cleanup_interval", 3600, CFGF_NONE, pd_cfg_duration),
    CFG_STR("redis_server", "127.0.0.1:6379", CFGF_NONE),
    CFG_STR("redis_username", "", CFGF_NONE),
    CFG_STR("redis_password", "", CFGF_NONE),
    CFG_INT("redis_db", 0, CFGF_NONE),
    CFG_STR("redis_prefix", "policyd:", CFGF_NONE),
    CFG_INT("redis_connect_timeout", 500, CFGF_NONE),
    CFG_INT("redis_timeout", 500, CFGF_NONE),
    CFG_STR("redis_master_name", "", CFGF_NONE),
    CFG_STR_LIST("redis_sentinels", "{}", CFGF_NONE),
    CFG_STR("redis_sentinel_username", "", CFGF_NONE),
    CFG_STR("redis_sentinel_password", "", CFGF_NONE),
    CFG_END(),
};

/* validate_ms - lock and Redis timeouts in milliseconds */
static int validate_ms(cfg_t *cfg, cfg_opt_t *opt)
{
	long v = cfg_opt_getnint(opt, 0);

	if (v < 1 || v > 60000) {
		cfg_error(cfg, "%s = %ld: must be between 1 and 60000 (milliseconds)", opt->name, v);
		return -1;
	}
	return 0;
}

/* validate_interval - sync and cleanup intervals: 1 s to a week */
static int validate_interval(cfg_t *cfg, cfg_opt_t *opt)
{
	long v = cfg_opt_getnint(opt, 0);

	if (v < 1 || v > 7 * 86400) {
		cfg_error(cfg, "%s = %ld: must be between 1 second and 1 week", opt->name, v);
		return -1;
	}
	return 0;
}

/* The same options in a plugin's section, without defaults: set there, they make the instance
 * a store of its own (the one it names, with these settings changed). Not "database": a plugin
 * section's file of that name is the plugin's own business (greylist's file of before 0.2). */
static cfg_opt_t *override_opts;

/* pd_conf_store_override_opts - the table above, made once (main thread) */
const cfg_opt_t *pd_conf_store_override_opts(size_t *n)
{
	size_t k = 0, all = sizeof(pd_conf_store_opts) / sizeof(pd_conf_store_opts[0]) - 1;

	if (!override_opts) {
		override_opts = pd_xcalloc(all + 1, sizeof(*override_opts));
		for (size_t i = 0; i < all; i++) {
			if (strcmp(pd_conf_store_opts[i].name, "database") == 0)
				continue;
			override_opts[k] = pd_conf_store_opts[i];
			override_opts[k].flags |= CFGF_NODEFAULT;
			k++;
		}
	}
	for (k = 0; override_opts[k].name; k++)
		;
	*n = k;
	return override_opts;
}

/* pd_conf_store_validators - per-option checks with file:line, in SECTION ("store" or a plugin's) */
void pd_conf_store_validators(cfg_t *cfg, const char *section)
{
	static const struct {
		const char *opt;
		cfg_validate_callback_t fn;
	} v[] = {{"lock_timeout", validate_ms},         {"redis_connect_timeout", validate_ms},
		 {"redis_timeout", validate_ms},        {"sync_interval", validate_interval},
		 {"cleanup_interval", validate_interval}};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char path[160];

		snprintf(path, sizeof(path), "%s|%s", section, v[i].opt);
		cfg_set_validate_func(cfg, path, v[i].fn);
	}
}

/* store_log - the store's lines through ours, with the store's name */
static void store_log(void *ctx, int level, const char *fmt, ...)
{
	const pd_conf_store *cs = ctx;
	char prefix[96];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "store \"%s\": ", cs->name);
	va_start(ap, fmt);
	pd_vlog(level, prefix, fmt, ap);
	va_end(ap);
}

/* dup_or_null - a copy of a non-empty string, else NULL (the store's default) */
static char *dup_or_null(const char *s)
{
	return s && *s ? pd_xstrdup(s) : NULL;
}

/* src - where option NAME's value comes from: OVER if it sets it, else BASE (NULL: the default) */
static cfg_t *src(cfg_t *base, cfg_t *over, const char *name)
{
	return over && cfg_size(over, name) > 0 ? over : base;
}

/* str_of, int_of - an option's value from OVER, BASE or the table's default DEF */
static const char *str_of(cfg_t *base, cfg_t *over, const char *name, const char *def)
{
	cfg_t *c = src(base, over, name);

	return c ? cfg_getstr(c, name) : def;
}

static long int_of(cfg_t *base, cfg_t *over, const char *name, long def)
{
	cfg_t *c = src(base, over, name);

	return c ? cfg_getint(c, name) : def;
}

/* from_sections - fill CS from section BASE (NULL: every default), with what OVER (a plugin
 * section, or NULL) sets instead */
static void from_sections(pd_conf_store *cs, cfg_t *base, cfg_t *over, const char *state_dir)
{
	pd_store_conf *sc = &cs->sc;
	cfg_t *sl;

	cs->backend = pd_xstrdup(str_of(base, over, "backend", "gdbm"));
	cs->path = pd_path_resolve(state_dir, base ? cfg_getstr(base, "database") : "state.db");
	cs->sync_interval = int_of(base, over, "sync_interval", 60);
	cs->cleanup_interval = int_of(base, over, "cleanup_interval", 3600);
	sc->backend = cs->backend;
	sc->path = cs->path;
	sc->lock_timeout_ms = int_of(base, over, "lock_timeout", 1000);
	sc->expire_interval = cs->cleanup_interval;
	sc->flags = PD_STORE_LEASE;
	sc->log = store_log;
	sc->log_ctx = cs;
	sc->server = cs->server = dup_or_null(str_of(base, over, "redis_server", NULL));
	sc->username = cs->username = dup_or_null(str_of(base, over, "redis_username", NULL));
	sc->password = cs->password = dup_or_null(str_of(base, over, "redis_password", NULL));
	sc->db = int_of(base, over, "redis_db", 0);
	sc->prefix = cs->prefix = dup_or_null(str_of(base, over, "redis_prefix", NULL));
	sc->connect_timeout_ms = int_of(base, over, "redis_connect_timeout", 0);
	sc->timeout_ms = int_of(base, over, "redis_timeout", 0);
	sc->master_name = cs->master = dup_or_null(str_of(base, over, "redis_master_name", NULL));
	sc->sentinel_username = cs->s_username = dup_or_null(str_of(base, over, "redis_sentinel_username", NULL));
	sc->sentinel_password = cs->s_password = dup_or_null(str_of(base, over, "redis_sentinel_password", NULL));
	sl = src(base, over, "redis_sentinels");
	cs->n_sentinels = sl ? cfg_size(sl, "redis_sentinels") : 0;
	if (cs->n_sentinels) {
		cs->sentinels = pd_xcalloc(cs->n_sentinels, sizeof(*cs->sentinels));
		for (size_t i = 0; i < cs->n_sentinels; i++)
			cs->sentinels[i] = pd_xstrdup(cfg_getnstr(sl, "redis_sentinels", (unsigned)i));
	}
	sc->sentinels = (const char *const *)cs->sentinels;
	sc->n_sentinels = cs->n_sentinels;
}

/* pd_conf_store_overrides - does plugin section SEC set a store option? */
int pd_conf_store_overrides(cfg_t *sec)
{
	size_t n;
	const cfg_opt_t *o = pd_conf_store_override_opts(&n);

	for (size_t i = 0; i < n; i++)
		if (cfg_getopt(sec, o[i].name) && cfg_size(sec, o[i].name) > 0)
			return 1;
	return 0;
}

/* check_store - name and settings of CS; 0 or -1 (logged at FILE:LINE) */
static int check_store(const pd_conf_store *cs, const char *file, int line)
{
	char err[512];

	if (pd_store_conf_check(&cs->sc, err, sizeof(err)) != 0) {
		pd_log(PD_LOG_ERR, "%s:%d: store \"%s\": %s", file, line, cs->name, err);
		return -1;
	}
	return 0;
}

/* pd_conf_store_derive - store BASE_NAME's settings (section BASE, NULL for the implicit default)
 * with what plugin section OVER of instance INST sets; NULL after logging at FILE:LINE */
pd_conf_store *pd_conf_store_derive(cfg_t *base, cfg_t *over, const char *inst, const char *base_name,
				    const char *state_dir, const char *file, int line)
{
	pd_conf_store *cs = pd_xcalloc(1, sizeof(*cs));
	size_t len = strlen(base_name) + strlen(inst) + 8;

	cs->name = pd_xmalloc(len);
	snprintf(cs->name, len, "%s/%s", base_name, inst);
	cs->line = line;
	from_sections(cs, base, over, state_dir);
	if (check_store(cs, file, line) < 0) {
		pd_conf_stores_free(&cs, 1);
		return NULL;
	}
	return cs;
}

/* pd_conf_stores_build - every section, checked, plus the implicit default */
int pd_conf_stores_build(cfg_t *cfg, const char *file, const char *state_dir, pd_conf_store ***out, size_t *n)
{
	unsigned ns = cfg_size(cfg, "store");
	int have_default = cfg_gettsec(cfg, "store", PD_STORE_DEFAULT) != NULL;
	pd_conf_store **s = pd_xcalloc(ns + 1, sizeof(*s));
	size_t k = 0;

	*out = s;
	*n = 0;
	if (!have_default) {
		s[k] = pd_xcalloc(1, sizeof(**s));
		s[k]->name = pd_xstrdup(PD_STORE_DEFAULT);
		from_sections(s[k++], NULL, NULL, state_dir);
		*n = k;
	}
	for (unsigned i = 0; i < ns; i++) {
		cfg_t *sec = cfg_getnsec(cfg, "store", i);
		pd_conf_store *cs = s[k] = pd_xcalloc(1, sizeof(**s));

		cs->name = pd_xstrdup(cfg_title(sec));
		cs->line = sec->line;
		cs->sec = sec;
		from_sections(cs, sec, NULL, state_dir);
		*n = ++k;
		if (strlen(cs->name) > 64 || !*cs->name ||
		    strspn(cs->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") !=
			strlen(cs->name)) {
			pd_log(PD_LOG_ERR, "%s:%d: store \"%s\": a store's name is 1 to 64 letters, digits, '_', '-' or '.'",
			       file, sec->line, cs->name);
			return -1;
		}
		if (check_store(cs, file, sec->line) < 0)
			return -1;
	}
	return 0;
}

/* pd_conf_stores_open - the used ones */
int pd_conf_stores_open(pd_conf_store **s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		pd_conf_store *cs = s[i];
		char err[512];

		if (!cs->used || cs->st)
			continue;
		cs->st = pd_store_open(&cs->sc, err, sizeof(err));
		if (!cs->st) {
			pd_log(PD_LOG_ERR, "store \"%s\": cannot open: %s", cs->name, err);
			return -1;
		}
		if (strcmp(cs->backend, "redis") == 0)
			pd_log(PD_LOG_INFO, "store \"%s\": Redis %s", cs->name,
			       cs->n_sentinels ? "through Sentinel" : cs->sc.server ? cs->sc.server : "127.0.0.1:6379");
		else
			pd_log(PD_LOG_INFO, "store \"%s\": GDBM %s", cs->name, cs->path);
	}
	return 0;
}

/* expire_steps - up to STEPS steps of the GDBM expiry pass */
static void expire_steps(pd_conf_store *cs, int64_t now, int steps)
{
	long total = 0;

	for (int i = 0; i < steps; i++) {
		int done = 0;
		long r = pd_store_expire(cs->st, now, EXPIRE_BATCH, &done);

		if (r < 0 || done) {
			if (cs->in_pass && r >= 0)
				pd_log(PD_LOG_DEBUG, "store \"%s\": expiry pass done", cs->name);
			cs->in_pass = 0;
			cs->next_expire = now + (cs->cleanup_interval < EXPIRE_RECHECK ? cs->cleanup_interval
										: EXPIRE_RECHECK);
			break;
		}
		cs->in_pass = 1;
		total += r;
	}
	if (total > 0)
		pd_log(PD_LOG_DEBUG, "store \"%s\": %ld expired entries deleted", cs->name, total);
}

/* pd_conf_stores_tick - expiry and sync when due */
void pd_conf_stores_tick(pd_conf_store **s, size_t n, int64_t now)
{
	for (size_t i = 0; i < n; i++) {
		pd_conf_store *cs = s[i];

		if (!cs->st || pd_store_remote(cs->st))
			continue;
		if (cs->in_pass || now >= cs->next_expire)
			expire_steps(cs, now, EXPIRE_STEPS);
		if (!cs->next_sync)
			cs->next_sync = now + cs->sync_interval;
		else if (now >= cs->next_sync) {
			pd_store_sync(cs->st);
			cs->next_sync = now + cs->sync_interval;
		}
	}
}

/* pd_conf_stores_step - one step, for a short-lived process */
void pd_conf_stores_step(pd_conf_store **s, size_t n, int64_t now)
{
	for (size_t i = 0; i < n; i++)
		if (s[i]->st && !pd_store_remote(s[i]->st))
			expire_steps(s[i], now, 1);
}

/* pd_conf_stores_free - close and free everything */
void pd_conf_stores_free(pd_conf_store **s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		pd_conf_store *cs = s[i];

		if (!cs)
			continue;
		pd_store_close(cs->st);
		free(cs->name);
		free(cs->backend);
		free(cs->path);
		free(cs->server);
		free(cs->username);
		if (cs->password)
			memset(cs->password, 0, strlen(cs->password));
		free(cs->password);
		free(cs->prefix);
		free(cs->master);
		free(cs->s_username);
		if (cs->s_password)
			memset(cs->s_password, 0, strlen(cs->s_password));
		free(cs->s_password);
		for (size_t k = 0; k < cs->n_sentinels; k++)
			free(cs->sentinels[k]);
		free(cs->sentinels);
		free(cs);
	}
}
