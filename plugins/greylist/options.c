/* options.c - the greylist section's libconfuse options, validated so that errors carry file:line */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "gl.h"
#include "duration.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* ---- option validation (libconfuse parse callbacks: errors carry file:line) ---- */

/* int_in - parse an integer option in [LO, HI] */
static int int_in(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (!*value || *end || errno || v < lo || v > hi) {
		cfg_error(cfg, "%s: \"%s\" must be an integer from %ld to %ld", opt->name, value, lo, hi);
		return -1;
	}
	*(long *)result = v;
	return 0;
}

/* cb_prefix4 - IPv4 prefix length */
static int cb_prefix4(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	return int_in(cfg, opt, value, result, 0, 32);
}

/* cb_prefix6 - IPv6 prefix length */
static int cb_prefix6(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	return int_in(cfg, opt, value, result, 0, 128);
}

/* cb_count - auto_whitelist count (0 = off) */
static int cb_count(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	return int_in(cfg, opt, value, result, 0, 1000000);
}

/* valid_action - the defer actions the plugin may answer with */
static int valid_action(const char *v)
{
	if (!strcmp(v, "DEFER_IF_PERMIT") || !strcmp(v, "DEFER") || !strcmp(v, "DEFER_IF_REJECT"))
		return 1;
	return v[0] == '4' && isdigit((unsigned char)v[1]) && isdigit((unsigned char)v[2]) && !v[3];
}

/* cb_action - DEFER_IF_PERMIT, DEFER, DEFER_IF_REJECT or a 4NN code */
static int cb_action(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	if (!valid_action(value)) {
		cfg_error(cfg, "%s: \"%s\" must be DEFER_IF_PERMIT, DEFER, DEFER_IF_REJECT or 4NN",
			  opt->name, value);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/* text_error - why a reply text is unusable, or NULL */
static const char *text_error(const char *v)
{
	if (strlen(v) > 400)
		return "longer than 400 characters";
	for (const char *p = v; *p; p++) {
		if ((unsigned char)*p < 32 || *p == 127)
			return "contains a control character";
		if (*p == '%') {
			p++;
			if (*p != 's' && *p != 'd' && *p != 'r' && *p != '%')
				return "unknown placeholder (use %s remaining seconds, %d delay, "
				       "%r recipient domain, %% a percent sign)";
		}
	}
	return NULL;
}

/* cb_text - the reply text after the action */
static int cb_text(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *why = text_error(value);

	if (why) {
		cfg_error(cfg, "%s: %s", opt->name, why);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/* cb_secret - hash_key: empty (use a key file) or at least 8 characters */
static int cb_secret(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	if (*value && strlen(value) < 8) {
		cfg_error(cfg, "%s: use at least 8 characters (or leave it empty for a key file)",
			  opt->name);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/* cb_file - a non-empty file name */
static int cb_file(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	size_t n = strlen(value);

	if (!n || value[n - 1] == '/' || n >= PATH_MAX / 2) {
		cfg_error(cfg, "%s: \"%s\" is not a file name", opt->name, value);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/* check_list - parse a whitelist file now, so that policyd -t reports its errors too */
static int check_list(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result, int clients)
{
	char err[PATH_MAX + 300];
	gl_wl *wl;
	int r;

	if (!*value) {
		cfg_error(cfg, "%s: empty file name", opt->name);
		return -1;
	}
	/* relative paths are resolved (and checked) at init, see greylist.c */
	if (value[0] == '/') {
		wl = gl_wl_new();
		r = wl ? gl_wl_load(wl, value, clients, err, sizeof(err)) : -1;
		gl_wl_free(wl);
		if (r != 0) {
			cfg_error(cfg, "%s: %s", opt->name, wl ? err : "out of memory");
			return -1;
		}
	}
	*(const char **)result = value;
	return 0;
}

/* cb_clients - client_whitelist entries */
static int cb_clients(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	return check_list(cfg, opt, value, result, 1);
}

/* cb_recipients - recipient_whitelist entries */
static int cb_recipients(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	return check_list(cfg, opt, value, result, 0);
}

/* gl_validate_section - checks across options, once the whole section is parsed. The store
 * settings of the section (backend, redis_*, lock_timeout, ...) are the core's: they give the
 * instance a store of its own. One default stays greylist's: a section that chooses Redis
 * without a redis_prefix keeps the plugin's old prefix "pdgl:", so that a Redis ACL or a
 * shared server's layout written for it stays right. */
/* has_opt - does SEC's table have option NAME (the core's store settings, in the daemon)? */
static int has_opt(cfg_t *sec, const char *name)
{
	for (cfg_opt_t *o = sec->opts; o && o->name; o++)
		if (!strcmp(o->name, name))
			return 1;
	return 0;
}

/* set_str - the value of store setting NAME when the section sets it, else NULL */
static const char *set_str(cfg_t *sec, const char *name)
{
	return has_opt(sec, name) && cfg_size(sec, name) > 0 ? cfg_getstr(sec, name) : NULL;
}

/* word_error - why a Redis name is unusable (empty, too long, a space or control character) */
static const char *word_error(const char *v, size_t max)
{
	if (!*v)
		return "must not be empty";
	if (strlen(v) > max)
		return "too long";
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= 32 || *p == 127)
			return "contains a space or control character";
	return NULL;
}

int gl_validate_section(cfg_t *sec)
{
	const char *v, *why;

	/* what the core's store check lets through as "the default" but the plugin always refused */
	if ((v = set_str(sec, "redis_prefix")) && (why = word_error(v, 64))) {
		cfg_error(sec, "redis_prefix: %s (the keys of the instance are under it)", why);
		return -1;
	}
	if ((v = set_str(sec, "redis_master_name")) && (why = word_error(v, 127))) {
		cfg_error(sec, "redis_master_name: %s (1 to 127 characters, the name the sentinels monitor)", why);
		return -1;
	}
	if (has_opt(sec, "backend") && has_opt(sec, "redis_prefix") && cfg_size(sec, "backend") > 0 &&
	    !strcmp(cfg_getstr(sec, "backend"), "redis") && cfg_size(sec, "redis_prefix") == 0 &&
	    cfg_setstr(sec, "redis_prefix", "pdgl:") != CFG_SUCCESS)
		return -1;
	return 0;
}

cfg_opt_t gl_options[] = {
	CFG_STR_CB("database", "greylist.db", CFGF_NONE, cb_file),
	CFG_INT_CB("delay", 300, CFGF_NONE, pd_cfg_duration),
	CFG_INT_CB("retry_window", 2 * 86400, CFGF_NONE, pd_cfg_duration),
	CFG_INT_CB("lifetime", 35 * 86400, CFGF_NONE, pd_cfg_duration),
	CFG_INT_CB("ipv4_prefix", 24, CFGF_NONE, cb_prefix4),
	CFG_INT_CB("ipv6_prefix", 64, CFGF_NONE, cb_prefix6),
	CFG_INT_CB("auto_whitelist", 5, CFGF_NONE, cb_count),
	CFG_INT_CB("auto_whitelist_interval", 3600, CFGF_NONE, pd_cfg_duration),
	CFG_INT_CB("auto_whitelist_ipv4_prefix", 32, CFGF_NONE, cb_prefix4),
	CFG_INT_CB("auto_whitelist_ipv6_prefix", 128, CFGF_NONE, cb_prefix6),
	CFG_FLOAT("min_score", 0, CFGF_NODEFAULT), /* unset: greylist every request */
	CFG_BOOL("normalise_sender", cfg_true, CFGF_NONE),
	CFG_STR_LIST_CB("client_whitelist", "{}", CFGF_NONE, cb_clients),
	CFG_STR_LIST_CB("recipient_whitelist", "{}", CFGF_NONE, cb_recipients),
	CFG_STR_CB("action", "DEFER_IF_PERMIT", CFGF_NONE, cb_action),
	CFG_STR_CB("reply_text", GL_DEF_TEXT, CFGF_NONE, cb_text),
	CFG_BOOL("add_header", cfg_true, CFGF_NONE),
	CFG_BOOL("privacy", cfg_false, CFGF_NONE),
	CFG_STR_CB("hash_key", "", CFGF_NONE, cb_secret),
	CFG_END()};

