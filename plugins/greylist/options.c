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

/* cb_backend - "gdbm", or "redis" when built with hiredis */
static int cb_backend(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	if (!strcmp(value, "redis")) {
#ifndef HAVE_HIREDIS
		cfg_error(cfg, "%s: \"redis\" is not available: policyd was built without hiredis "
			  "(install libhiredis-dev and run configure again)", opt->name);
		return -1;
#endif
	} else if (strcmp(value, "gdbm") != 0) {
		cfg_error(cfg, "%s: \"%s\" must be \"gdbm\" or \"redis\"", opt->name, value);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/* gl_redis_server - parse "host:port", "[v6]:port", "host" or "unix:/path" into RC */
int gl_redis_server(const char *spec, gl_redis_conf *rc)
{
	const char *colon;
	size_t hl;
	char *end;
	long port = 6379;

	rc->host[0] = rc->path[0] = 0;
	rc->port = 0;
	if (!strncmp(spec, "unix:", 5)) {
		if (spec[5] != '/' || strlen(spec + 5) >= sizeof(rc->path))
			return -1;
		snprintf(rc->path, sizeof(rc->path), "%s", spec + 5);
		return 0;
	}
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || close == spec + 1)
			return -1;
		hl = (size_t)(close - spec - 1);
		spec++;
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] && !colon)
			return -1;
	} else {
		colon = strrchr(spec, ':');
		if (colon && strchr(spec, ':') != colon)
			return -1; /* a bare IPv6 address: needs [ ] */
		hl = colon ? (size_t)(colon - spec) : strlen(spec);
	}
	if (!hl || hl >= sizeof(rc->host))
		return -1;
	for (size_t i = 0; i < hl; i++)
		if (!isalnum((unsigned char)spec[i]) && !strchr(".-_:", spec[i]))
			return -1;
	if (colon) {
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (!colon[1] || *end || errno || port < 1 || port > 65535)
			return -1;
	}
	memcpy(rc->host, spec, hl);
	rc->host[hl] = 0;
	rc->port = (int)port;
	return 0;
}

/* cb_server - redis_server */
static int cb_server(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	gl_redis_conf rc;

	if (gl_redis_server(value, &rc) != 0) {
		cfg_error(cfg, "%s: \"%s\" must be HOST:PORT, [IPV6]:PORT, HOST or unix:/PATH",
			  opt->name, value);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/* cb_lock_ms - lock_timeout: milliseconds, kept well under the core's request_timeout */
static int cb_lock_ms(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	return int_in(cfg, opt, value, result, 1, 10000);
}

/* cb_db - redis_db */
static int cb_db(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	return int_in(cfg, opt, value, result, 0, 65535);
}

/* cb_ms - a timeout in milliseconds */
static int cb_ms(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	return int_in(cfg, opt, value, result, 1, 600000);
}

/* cb_word - redis_[sentinel_]username / _password, redis_prefix: printable, no spaces, bounded */
static int cb_word(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	size_t max = !strcmp(opt->name, "redis_prefix") ? 64 : strstr(opt->name, "username") ? 127 : 255;

	if (strlen(value) > max) {
		cfg_error(cfg, "%s: longer than %zu characters", opt->name, max);
		return -1;
	}
	if (!*value && !strcmp(opt->name, "redis_prefix")) {
		cfg_error(cfg, "%s: must not be empty (the admin command lists the keys under it)",
			  opt->name);
		return -1;
	}
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p <= 32 || *p == 127) {
			cfg_error(cfg, "%s: contains a space or control character", opt->name);
			return -1;
		}
	*(const char **)result = value;
	return 0;
}

/* gl_redis_sentinel - parse a sentinel "host[:port]" or "[v6][:port]" (port 26379 by default) */
int gl_redis_sentinel(const char *spec, gl_sentinel *out)
{
	gl_redis_conf rc;
	const char *close = spec[0] == '[' ? strchr(spec, ']') : NULL;
	int has_port = close ? close[1] == ':' : strchr(spec, ':') != NULL;

	if (!strncmp(spec, "unix:", 5) || gl_redis_server(spec, &rc) != 0 || !rc.host[0])
		return -1;
	snprintf(out->host, sizeof(out->host), "%s", rc.host);
	out->port = has_port ? rc.port : 26379;
	return 0;
}

/* cb_sentinel - one redis_sentinels entry */
static int cb_sentinel(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	gl_sentinel sn;

	if (gl_redis_sentinel(value, &sn) != 0) {
		cfg_error(cfg, "%s: \"%.300s\" must be HOST:PORT or [IPV6]:PORT (port 26379 if left out)",
			  opt->name, value);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/* valid_sentinels - the list as a whole: bounded */
static int valid_sentinels(cfg_t *cfg, cfg_opt_t *opt)
{
	if (cfg_opt_size(opt) > GL_SENTINELS_MAX) {
		cfg_error(cfg, "%s: at most %d sentinels", opt->name, GL_SENTINELS_MAX);
		return -1;
	}
	return 0;
}

/* gl_validate_section - checks across options, once the whole section is parsed */
int gl_validate_section(cfg_t *sec)
{
	const char *name = cfg_getstr(sec, "redis_master_name");

	if (cfg_size(sec, "redis_sentinels") && !(name && *name)) {
		cfg_error(sec, "redis_sentinels needs redis_master_name (the name the sentinels monitor, "
			  "e.g. \"mymaster\")");
		return -1;
	}
	if (*cfg_getstr(sec, "redis_sentinel_username") && !*cfg_getstr(sec, "redis_sentinel_password")) {
		cfg_error(sec, "redis_sentinel_username needs redis_sentinel_password");
		return -1;
	}
	return 0;
}

/* cb_master_name - redis_master_name: 1 to 127 printable characters, no spaces */
static int cb_master_name(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	size_t n = strlen(value);

	if (!n || n > 127) {
		cfg_error(cfg, "%s: must be 1 to 127 characters", opt->name);
		return -1;
	}
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p <= 32 || *p == 127) {
			cfg_error(cfg, "%s: contains a space or control character", opt->name);
			return -1;
		}
	*(const char **)result = value;
	return 0;
}

/* gl_redis_conf_get - the Redis settings of a greylist section (NULL: defaults) */
int gl_redis_conf_get(cfg_t *cfg, gl_redis_conf *rc, char *err, size_t errsz)
{
	const char *server = cfg ? cfg_getstr(cfg, "redis_server") : "127.0.0.1:6379";

	memset(rc, 0, sizeof(*rc));
	if (gl_redis_server(server, rc) != 0) {
		snprintf(err, errsz, "redis_server: \"%.300s\" is invalid", server);
		return -1;
	}
	snprintf(rc->username, sizeof(rc->username), "%s", cfg ? cfg_getstr(cfg, "redis_username") : "");
	snprintf(rc->password, sizeof(rc->password), "%s", cfg ? cfg_getstr(cfg, "redis_password") : "");
	snprintf(rc->prefix, sizeof(rc->prefix), "%s", cfg ? cfg_getstr(cfg, "redis_prefix") : "pdgl:");
	rc->db = cfg ? cfg_getint(cfg, "redis_db") : 0;
	rc->connect_timeout_ms = cfg ? cfg_getint(cfg, "redis_connect_timeout") : 500;
	rc->timeout_ms = cfg ? cfg_getint(cfg, "redis_timeout") : 500;
	rc->retry_window = cfg ? cfg_getint(cfg, "retry_window") : 2 * 86400;
	rc->lifetime = cfg ? cfg_getint(cfg, "lifetime") : 35 * 86400;
	if (rc->username[0] && !rc->password[0]) {
		snprintf(err, errsz, "redis_username needs redis_password");
		return -1;
	}
	if (!cfg)
		return 0;
	snprintf(rc->master_name, sizeof(rc->master_name), "%s", cfg_getstr(cfg, "redis_master_name"));
	snprintf(rc->sentinel_username, sizeof(rc->sentinel_username), "%s",
		 cfg_getstr(cfg, "redis_sentinel_username"));
	snprintf(rc->sentinel_password, sizeof(rc->sentinel_password), "%s",
		 cfg_getstr(cfg, "redis_sentinel_password"));
	for (unsigned i = 0; i < cfg_size(cfg, "redis_sentinels"); i++) {
		const char *v = cfg_getnstr(cfg, "redis_sentinels", i);

		if (rc->n_sentinels == GL_SENTINELS_MAX ||
		    gl_redis_sentinel(v, &rc->sentinels[rc->n_sentinels]) != 0) {
			snprintf(err, errsz, "redis_sentinels: \"%.300s\" is invalid (or too many)", v);
			return -1;
		}
		rc->n_sentinels++;
	}
	if (rc->n_sentinels && !rc->master_name[0]) {
		snprintf(err, errsz, "redis_sentinels needs redis_master_name");
		return -1;
	}
	if (rc->sentinel_username[0] && !rc->sentinel_password[0]) {
		snprintf(err, errsz, "redis_sentinel_username needs redis_sentinel_password");
		return -1;
	}
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
	CFG_BOOL("normalise_sender", cfg_true, CFGF_NONE),
	CFG_STR_LIST_CB("client_whitelist", "{}", CFGF_NONE, cb_clients),
	CFG_STR_LIST_CB("recipient_whitelist", "{}", CFGF_NONE, cb_recipients),
	CFG_STR_CB("action", "DEFER_IF_PERMIT", CFGF_NONE, cb_action),
	CFG_STR_CB("reply_text", GL_DEF_TEXT, CFGF_NONE, cb_text),
	CFG_BOOL("add_header", cfg_true, CFGF_NONE),
	CFG_INT_CB("sync_interval", 60, CFGF_NONE, pd_cfg_duration),
	CFG_INT_CB("cleanup_interval", 3600, CFGF_NONE, pd_cfg_duration),
	CFG_INT_CB("lock_timeout", 1000, CFGF_NONE, cb_lock_ms),
	CFG_BOOL("privacy", cfg_false, CFGF_NONE),
	CFG_STR_CB("hash_key", "", CFGF_NONE, cb_secret),
	CFG_STR_CB("backend", "gdbm", CFGF_NONE, cb_backend),
	CFG_STR_CB("redis_server", "127.0.0.1:6379", CFGF_NONE, cb_server),
	CFG_STR_CB("redis_username", "", CFGF_NONE, cb_word),
	CFG_STR_CB("redis_password", "", CFGF_NONE, cb_word),
	CFG_INT_CB("redis_db", 0, CFGF_NONE, cb_db),
	CFG_STR_CB("redis_prefix", "pdgl:", CFGF_NONE, cb_word),
	CFG_INT_CB("redis_connect_timeout", 500, CFGF_NONE, cb_ms),
	CFG_INT_CB("redis_timeout", 500, CFGF_NONE, cb_ms),
	CFG_STR_CB("redis_master_name", "", CFGF_NONE, cb_master_name),
	/* a list checked as a whole when it is parsed (valid_sentinels): file:line in errors */
	{.name = "redis_sentinels", .type = CFGT_STR, .flags = CFGF_LIST, .def = {.parsed = "{}"},
	 .parsecb = cb_sentinel, .validcb = valid_sentinels},
	CFG_STR_CB("redis_sentinel_username", "", CFGF_NONE, cb_word),
	CFG_STR_CB("redis_sentinel_password", "", CFGF_NONE, cb_word),
	CFG_END()};

