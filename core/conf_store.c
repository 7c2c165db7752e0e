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

/* pd_conf_store_validators - per-option checks with file:line */
void pd_conf_store_validators(cfg_t *cfg)
{
	cfg_set_validate_func(cfg, "store|lock_timeout", validate_ms);
	cfg_set_validate_func(cfg, "store|redis_connect_timeout", validate_ms);
	cfg_set_validate_func(cfg, "store|redis_timeout", validate_ms);
	cfg_set_validate_func(cfg, "store|sync_interval", validate_interval);
	cfg_set_validate_func(cfg, "store|cleanup_interval", validate_interval);
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

/* from_section - fill CS from SEC (NULL: every default) */
static void from_section(pd_conf_store *cs, cfg_t *sec, const char *state_dir)
{
	pd_store_conf *sc = &cs->sc;

	cs->backend = pd_xstrdup(sec ? cfg_getstr(sec, "backend") : "gdbm");
	cs->path = pd_path_resolve(state_dir, sec ? cfg_getstr(sec, "database") : "state.db");
	cs->sync_interval = sec ? cfg_getint(sec, "sync_interval") : 60;
	cs->cleanup_interval = sec ? cfg_getint(sec, "cleanup_interval") : 3600;
	sc->backend = cs->backend;
	sc->path = cs->path;
	sc->lock_timeout_ms = sec ? cfg_getint(sec, "lock_timeout") : 1000;
	sc->expire_interval = cs->cleanup_interval;
	sc->flags = PD_STORE_LEASE;
	sc->log = store_log;
	sc->log_ctx = cs;
	if (!sec)
		return;
	sc->server = cs->server = dup_or_null(cfg_getstr(sec, "redis_server"));
	sc->username = cs->username = dup_or_null(cfg_getstr(sec, "redis_username"));
	sc->password = cs->password = dup_or_null(cfg_getstr(sec, "redis_password"));
	sc->db = cfg_getint(sec, "redis_db");
	sc->prefix = cs->prefix = dup_or_null(cfg_getstr(sec, "redis_prefix"));
	sc->connect_timeout_ms = cfg_getint(sec, "redis_connect_timeout");
	sc->timeout_ms = cfg_getint(sec, "redis_timeout");
	sc->master_name = cs->master = dup_or_null(cfg_getstr(sec, "redis_master_name"));
	sc->sentinel_username = cs->s_username = dup_or_null(cfg_getstr(sec, "redis_sentinel_username"));
	sc->sentinel_password = cs->s_password = dup_or_null(cfg_getstr(sec, "redis_sentinel_password"));
	cs->n_sentinels = cfg_size(sec, "redis_sentinels");
	if (cs->n_sentinels) {
		cs->sentinels = pd_xcalloc(cs->n_sentinels, sizeof(*cs->sentinels));
		for (size_t i = 0; i < cs->n_sentinels; i++)
			cs->sentinels[i] = pd_xstrdup(cfg_getnstr(sec, "redis_sentinels", (unsigned)i));
	}
	sc->sentinels = (const char *const *)cs->sentinels;
	sc->n_sentinels = cs->n_sentinels;
}

/* pd_conf_stores_build - every section, checked, plus the implicit default */
int pd_conf_stores_build(cfg_t *cfg, const char *file, const char *state_dir, pd_conf_store **out, size_t *n)
{
	unsigned ns = cfg_size(cfg, "store");
	int have_default = cfg_gettsec(cfg, "store", PD_STORE_DEFAULT) != NULL;
	pd_conf_store *s = pd_xcalloc(ns + 1, sizeof(*s));
	size_t k = 0;

	*out = s;
	*n = 0;
	if (!have_default) {
		s[k].name = pd_xstrdup(PD_STORE_DEFAULT);
		from_section(&s[k++], NULL, state_dir);
	}
	for (unsigned i = 0; i < ns; i++) {
		cfg_t *sec = cfg_getnsec(cfg, "store", i);
		char err[512];

		s[k].name = pd_xstrdup(cfg_title(sec));
		s[k].line = sec->line;
		from_section(&s[k], sec, state_dir);
		*n = ++k;
		if (strlen(s[k - 1].name) > 64 || !*s[k - 1].name ||
		    strspn(s[k - 1].name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") !=
			strlen(s[k - 1].name)) {
			pd_log(PD_LOG_ERR, "%s:%d: store \"%s\": a store's name is 1 to 64 letters, digits, '_', '-' or '.'",
			       file, sec->line, s[k - 1].name);
			return -1;
		}
		if (pd_store_conf_check(&s[k - 1].sc, err, sizeof(err)) != 0) {
			pd_log(PD_LOG_ERR, "%s:%d: store \"%s\": %s", file, sec->line, s[k - 1].name, err);
			return -1;
		}
	}
	*n = k;
	return 0;
}

/* pd_conf_stores_open - the used ones */
int pd_conf_stores_open(pd_conf_store *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char err[512];

		if (!s[i].used || s[i].st)
			continue;
		s[i].st = pd_store_open(&s[i].sc, err, sizeof(err));
		if (!s[i].st) {
			pd_log(PD_LOG_ERR, "store \"%s\": cannot open: %s", s[i].name, err);
			return -1;
		}
		if (strcmp(s[i].backend, "redis") == 0)
			pd_log(PD_LOG_INFO, "store \"%s\": Redis %s", s[i].name,
			       s[i].n_sentinels ? "through Sentinel" : s[i].sc.server ? s[i].sc.server : "127.0.0.1:6379");
		else
			pd_log(PD_LOG_INFO, "store \"%s\": GDBM %s", s[i].name, s[i].path);
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
void pd_conf_stores_tick(pd_conf_store *s, size_t n, int64_t now)
{
	for (size_t i = 0; i < n; i++) {
		pd_conf_store *cs = &s[i];

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
void pd_conf_stores_step(pd_conf_store *s, size_t n, int64_t now)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].st && !pd_store_remote(s[i].st))
			expire_steps(&s[i], now, 1);
}

/* pd_conf_stores_free - close and free everything */
void pd_conf_stores_free(pd_conf_store *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		pd_conf_store *cs = &s[i];

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
	}
	free(s);
}
