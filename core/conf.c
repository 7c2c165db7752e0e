/* conf.c - policyd.conf: parse, load the plugins it names, build the chains */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "conf.h"
#include "conf_scan.h"
#include "conf_store.h"
#include "endpoint.h"
#include "host.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CHAIN "default"

/* State of one load, for libconfuse callbacks (config loads run on the
 * main thread only). */
typedef struct load_ctx {
	const char *file;
	int errors;
	pd_conf *conf; /* the configuration being loaded (its modules) */
	const pd_scan *scan; /* what pass 1 found (section lines) */
} load_ctx;

static load_ctx *ctx;

/* conf_errfunc - every libconfuse error as "file:line: message" */
static void conf_errfunc(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* pass 2 parses the text pass 1 made (conf_scan.c): same lines, the file's name */
	if (cfg && cfg->line > 0)
		pd_log(PD_LOG_ERR, "%s:%d: %s", ctx ? ctx->file : cfg->filename ? cfg->filename : "config", cfg->line, msg);
	else
		pd_log(PD_LOG_ERR, "%s: %s", ctx ? ctx->file : "config", msg);
	if (ctx)
		ctx->errors++;
}

/* validate_listen - every listen entry parses as an endpoint */
static int validate_listen(cfg_t *cfg, cfg_opt_t *opt)
{
	for (unsigned i = 0; i < cfg_opt_size(opt); i++) {
		pd_endpoint ep;
		const char *why;
		const char *v = cfg_opt_getnstr(opt, i);

		if (pd_endpoint_parse(v, &ep, &why) < 0) {
			cfg_error(cfg, "listen \"%s\": %s", v, why);
			return -1;
		}
	}
	return 0;
}

/* valid_plugin_name - plugin names are plain words */
static int valid_plugin_name(const char *v)
{
	return *v && strlen(v) <= 64 &&
	       strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == strlen(v);
}

/* validate_plugins - plugin names are words */
static int validate_plugins(cfg_t *cfg, cfg_opt_t *opt)
{
	for (unsigned i = 0; i < cfg_opt_size(opt); i++) {
		const char *v = cfg_opt_getnstr(opt, i);

		if (!valid_plugin_name(v)) {
			cfg_error(cfg, "plugins: \"%s\" is not a plugin name", v);
			return -1;
		}
	}
	return 0;
}

/* validate_action - default_action/on_error: one line of text */
static int validate_action(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);

	if (!v || !*v || strlen(v) > PD_REPLY_MAX || strpbrk(v, "\r\n\t")) {
		cfg_error(cfg, "%s: must be one line of action text, e.g. DUNNO", opt->name);
		return -1;
	}
	return 0;
}

/* validate_mode - socket_mode is octal */
static int validate_mode(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);
	char *end;
	long m = strtol(v, &end, 8);

	if (!*v || *end || m < 0 || m > 07777) {
		cfg_error(cfg, "socket_mode \"%s\": expected an octal mode such as 0660", v);
		return -1;
	}
	return 0;
}

/* validate_syslog_socket - an absolute socket path that fits sun_path, or "" */
static int validate_syslog_socket(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);

	if (*v && (*v != '/' || strlen(v) > 107)) {
		cfg_error(cfg, "syslog_socket \"%.200s\": expected an absolute path of at most 107 bytes, or \"\" for no syslog",
			  v);
		return -1;
	}
	return 0;
}

/* validate_facility - syslog facility by name */
static int validate_facility(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);

	if (pd_log_facility(v) < 0) {
		cfg_error(cfg, "syslog_facility \"%s\": expected mail, daemon, user or local0..local7", v);
		return -1;
	}
	return 0;
}

/* validate_user - user names must exist */
static int validate_user(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);

	if (*v && !getpwnam(v)) {
		cfg_error(cfg, "%s \"%s\": no such user", opt->name, v);
		return -1;
	}
	return 0;
}

/* validate_group - group names must exist */
static int validate_group(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);

	if (*v && !getgrnam(v)) {
		cfg_error(cfg, "group \"%s\": no such group", v);
		return -1;
	}
	return 0;
}

/* parse_owner - "user[:group]" to ids; -1 if unknown */
static int parse_owner(const char *v, uid_t *uid, gid_t *gid)
{
	char buf[256];
	char *colon;
	struct passwd *pw;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (!*v)
		return 0;
	if (strlen(v) >= sizeof(buf))
		return -1;
	strcpy(buf, v);
	colon = strchr(buf, ':');
	if (colon)
		*colon++ = 0;
	if (*buf) {
		if (!(pw = getpwnam(buf)))
			return -1;
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	}
	if (colon && *colon) {
		struct group *gr = getgrnam(colon);

		if (!gr)
			return -1;
		*gid = gr->gr_gid;
	}
	return 0;
}

/* validate_owner - socket_owner "user[:group]" */
static int validate_owner(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);
	uid_t u;
	gid_t g;

	if (parse_owner(v, &u, &g) < 0) {
		cfg_error(cfg, "socket_owner \"%s\": expected an existing user[:group]", v);
		return -1;
	}
	return 0;
}

/* validate_metrics - metrics_listen is empty or a loopback host:port */
static int validate_metrics(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *v = cfg_opt_getnstr(opt, 0);
	const char *why;

	if (*v && pd_metrics_addr_ok(v, &why) < 0) {
		cfg_error(cfg, "metrics_listen \"%s\": %s", v, why);
		return -1;
	}
	return 0;
}

/* validate_range - integer options within their bounds */
static int validate_range(cfg_t *cfg, cfg_opt_t *opt)
{
	static const struct {
		const char *name;
		long lo, hi;
	} r[] = {
	    {"idle_timeout", 1, 86400},         {"request_timeout", 1, 90},
	    {"read_timeout", 1, 3600},
	    {"timeout", 0, 90},
	    {"threads", 1, 1024},
	    {"io_threads", 0, 64},              {"max_line_length", 256, 1048576},
	    {"max_attributes", 8, 100000},      {"max_request_size", 1024, 16 * 1048576},
	    {"cache_size", 0, 10000000},        {"min_ttl", 0, 86400},
	    {"max_ttl", 1, 30 * 86400},         {"negative_ttl", 0, 86400},
	    {"max_queries", 16, 65536},
	};
	long v = cfg_opt_getnint(opt, 0);

	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		if (strcmp(r[i].name, opt->name) == 0 && (v < r[i].lo || v > r[i].hi)) {
			cfg_error(cfg, "%s = %ld: must be between %ld and %ld", opt->name, v, r[i].lo, r[i].hi);
			return -1;
		}
	return 0;
}

/* validate_dns_timeout - seconds of a check's lookups: within request_timeout's range */
static int validate_dns_timeout(cfg_t *cfg, cfg_opt_t *opt)
{
	long v = cfg_opt_getnint(opt, 0);

	if (v < 1 || v > 60) {
		cfg_error(cfg, "timeout = %ld: must be between 1 and 60 seconds", v);
		return -1;
	}
	return 0;
}

/* validate_states - protocol_state names Postfix uses */
static int validate_states(cfg_t *cfg, cfg_opt_t *opt)
{
	for (unsigned i = 0; i < cfg_opt_size(opt); i++) {
		const char *v = cfg_opt_getnstr(opt, i);

		if (!pd_state_bit(v)) {
			cfg_error(cfg,
				  "protocol_state \"%s\": expected CONNECT, HELO, EHLO, MAIL, RCPT, DATA, "
				  "END-OF-MESSAGE, VRFY, ETRN or ALL",
				  v);
			return -1;
		}
	}
	return 0;
}

/* validate_networks - skip_networks entries are CIDR networks */
static int validate_networks(cfg_t *cfg, cfg_opt_t *opt)
{
	for (unsigned i = 0; i < cfg_opt_size(opt); i++) {
		pd_cidr c;
		const char *v = cfg_opt_getnstr(opt, i);

		if (pd_cidr_parse(v, &c) < 0) {
			cfg_error(cfg, "skip_networks \"%s\": expected an IPv4 or IPv6 address or network", v);
			return -1;
		}
	}
	return 0;
}

/* The DNS service's section (dns.c); durations in seconds. */
static cfg_opt_t dns_opts[] = {
    CFG_STR("resolv_conf", "/etc/resolv.conf", CFGF_NONE),
    CFG_INT("cache_size", 100000, CFGF_NONE),
    CFG_INT("min_ttl", 0, CFGF_NONE),
    CFG_INT("max_ttl", 86400, CFGF_NONE),
    CFG_INT("negative_ttl", 3600, CFGF_NONE),
    CFG_INT("timeout", 5, CFGF_NONE),
    CFG_INT("max_queries", 4096, CFGF_NONE),
    CFG_END(),
};

static cfg_opt_t chain_opts[] = {
    CFG_STR_LIST("plugins", "{}", CFGF_NONE),
    CFG_STR_LIST("listen", "{}", CFGF_NONE),
    PD_ROUTE_CHAIN_OPTS, /* which requests it takes (route_index.c) */
    CFG_END(),
};

/* The core's options; the plugin sections are appended in pass 2. */
static cfg_opt_t global_opts[] = {
    CFG_STR_LIST("listen", "{}", CFGF_NONE),
    CFG_STR("socket_mode", "0666", CFGF_NONE),
    CFG_STR("socket_owner", "", CFGF_NONE),
    CFG_STR("user", "", CFGF_NONE),
    CFG_STR("group", "", CFGF_NONE),
    CFG_STR("pidfile", PD_RUN_DIR "/policyd.pid", CFGF_NONE),
    CFG_STR("plugin_dir", PD_PLUGIN_DIR, CFGF_NONE),
    CFG_STR("state_dir", PD_STATE_DIR, CFGF_NONE),
    CFG_STR("default_action", "DUNNO", CFGF_NONE),
    CFG_STR("on_error", "DUNNO", CFGF_NONE),
    CFG_INT("idle_timeout", 600, CFGF_NONE),
    CFG_INT("request_timeout", 20, CFGF_NONE),
    CFG_INT("read_timeout", 10, CFGF_NONE),
    CFG_STR("syslog_facility", "mail", CFGF_NONE),
    CFG_STR("syslog_socket", "/dev/log", CFGF_NONE),
    CFG_INT("threads", 8, CFGF_NONE),
    CFG_INT("io_threads", 0, CFGF_NONE),
    CFG_BOOL("supervise", cfg_true, CFGF_NONE),
    CFG_STR("metrics_listen", "", CFGF_NONE),
    CFG_INT("max_line_length", 4096, CFGF_NONE),
    CFG_INT("max_attributes", 256, CFGF_NONE),
    CFG_INT("max_request_size", 65536, CFGF_NONE),
    CFG_STR_LIST("plugins", "{}", CFGF_NONE),
    CFG_SEC("chain", chain_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_SEC("dns", dns_opts, CFGF_NONE),
    CFG_SEC("store", pd_conf_store_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_END(),
};

/* The core's filters, valid in every plugin section. */
static cfg_opt_t filter_opts[] = {
    CFG_STR_LIST("protocol_state", NULL, CFGF_NODEFAULT),
    CFG_BOOL("skip_sasl", cfg_false, CFGF_NODEFAULT),
    CFG_STR_LIST("skip_networks", "{}", CFGF_NONE),
    CFG_BOOL("optional", cfg_false, CFGF_NONE),
    CFG_BOOL("observe", cfg_false, CFGF_NONE),
    CFG_INT("timeout", 0, CFGF_NONE),
    CFG_STR("store", PD_STORE_DEFAULT, CFGF_NONE),
    CFG_END(),
};

/* count_opts - entries before CFG_END */
static size_t count_opts(const cfg_opt_t *o)
{
	size_t n = 0;

	while (o && o[n].name)
		n++;
	return n;
}

/* plugin_section_opts - the core's filters (with the store's settings for a plugin that keeps
 * state) plus the plugin's own options */
static cfg_opt_t *plugin_section_opts(const pd_module *m, char *err, size_t errlen)
{
	size_t nf = count_opts(filter_opts), np = count_opts(m->desc->options), ns = 0;
	const cfg_opt_t *so = (m->desc->flags & PD_PLUGIN_STATE) ? pd_conf_store_override_opts(&ns) : NULL;
	cfg_opt_t *o = pd_xcalloc(nf + ns + np + 1, sizeof(*o));

	memcpy(o, filter_opts, nf * sizeof(*o));
	if (ns)
		memcpy(o + nf, so, ns * sizeof(*o));
	for (size_t i = 0; i < np; i++)
		for (size_t k = 0; k < nf + ns; k++)
			if (strcmp(m->desc->options[i].name, o[k].name) == 0) {
				snprintf(err, errlen, "%s: option \"%s\" clashes with the core's %s of that name",
					 m->path, o[k].name, k < nf ? "filter" : "store setting");
				free(o);
				return NULL;
			}
	if (np)
		memcpy(o + nf + ns, m->desc->options, np * sizeof(*o));
	return o; /* zeroed tail is CFG_END() */
}

/* new_cfg - a parser over OPTS with our error function and validators */
static cfg_t *new_cfg(cfg_opt_t *opts, int flags)
{
	cfg_t *cfg = cfg_init(opts, flags);

	if (!cfg)
		return NULL;
	cfg_set_error_function(cfg, conf_errfunc);
	cfg_set_validate_func(cfg, "listen", validate_listen);
	cfg_set_validate_func(cfg, "chain|listen", validate_listen);
	cfg_set_validate_func(cfg, "plugins", validate_plugins);
	cfg_set_validate_func(cfg, "chain|plugins", validate_plugins);
	cfg_set_validate_func(cfg, "chain|protocol_state", validate_states);
	cfg_set_validate_func(cfg, "default_action", validate_action);
	cfg_set_validate_func(cfg, "on_error", validate_action);
	cfg_set_validate_func(cfg, "socket_mode", validate_mode);
	cfg_set_validate_func(cfg, "socket_owner", validate_owner);
	cfg_set_validate_func(cfg, "user", validate_user);
	cfg_set_validate_func(cfg, "group", validate_group);
	cfg_set_validate_func(cfg, "syslog_facility", validate_facility);
	cfg_set_validate_func(cfg, "syslog_socket", validate_syslog_socket);
	cfg_set_validate_func(cfg, "idle_timeout", validate_range);
	cfg_set_validate_func(cfg, "request_timeout", validate_range);
	cfg_set_validate_func(cfg, "read_timeout", validate_range);
	cfg_set_validate_func(cfg, "metrics_listen", validate_metrics);
	cfg_set_validate_func(cfg, "threads", validate_range);
	cfg_set_validate_func(cfg, "io_threads", validate_range);
	cfg_set_validate_func(cfg, "max_line_length", validate_range);
	cfg_set_validate_func(cfg, "max_attributes", validate_range);
	cfg_set_validate_func(cfg, "max_request_size", validate_range);
	cfg_set_validate_func(cfg, "dns|cache_size", validate_range);
	cfg_set_validate_func(cfg, "dns|min_ttl", validate_range);
	cfg_set_validate_func(cfg, "dns|max_ttl", validate_range);
	cfg_set_validate_func(cfg, "dns|negative_ttl", validate_range);
	cfg_set_validate_func(cfg, "dns|timeout", validate_dns_timeout);
	cfg_set_validate_func(cfg, "dns|max_queries", validate_range);
	return cfg;
}

/* parse_text - run libconfuse over pass 1's text; 0 or -1 (errors logged) */
static int parse_text(cfg_t *cfg, const pd_scan *sc)
{
	int rc = cfg_parse_buf(cfg, sc->text);

	return rc == CFG_SUCCESS && ctx->errors == 0 ? 0 : -1;
}

/* resolve_search_path - make each directory of a colon list absolute */
static char *resolve_search_path(const char *dir, const char *list)
{
	char *copy = pd_xstrdup(list), *save = NULL;
	size_t cap = strlen(list) * 2 + strlen(dir) * 8 + 16, len = 0;
	char *out = pd_xmalloc(cap);

	out[0] = 0;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *abs = pd_path_resolve(dir, d);
		size_t al = strlen(abs);

		if (len + al + 2 > cap) {
			cap = (len + al + 2) * 2;
			out = pd_xrealloc(out, cap);
		}
		if (len)
			out[len++] = ':';
		memcpy(out + len, abs, al + 1);
		len += al;
		free(abs);
	}
	free(copy);
	return out;
}

/* add_listeners - collect a list of listeners for CHAIN */
static void add_listeners(pd_conf *c, cfg_t *sec, const char *chain)
{
	for (unsigned i = 0; i < cfg_size(sec, "listen"); i++) {
		const char *v = cfg_getnstr(sec, "listen", i);
		pd_endpoint ep;
		const char *why;
		pd_listen_conf *l;

		c->listen = pd_xrealloc(c->listen, (c->n_listen + 1) * sizeof(*c->listen));
		l = &c->listen[c->n_listen++];
		l->chain = pd_xstrdup(chain);
		if (pd_endpoint_parse(v, &ep, &why) == 0 && ep.is_unix && ep.path[0] != '/') {
			char *abs = pd_path_resolve(c->dir, ep.path);
			const char *flags = ep.close_after_reply ? " close_after_reply" : "";

			l->text = pd_xmalloc(strlen(abs) + strlen(flags) + 6);
			sprintf(l->text, "unix:%s%s", abs, flags);
			free(abs);
		} else {
			l->text = pd_xstrdup(v);
		}
	}
}

/* find_store - the store called NAME */
static pd_conf_store *find_store(pd_conf *c, const char *name)
{
	for (size_t i = 0; i < c->n_stores; i++)
		if (strcmp(c->stores[i]->name, name) == 0)
			return c->stores[i];
	return NULL;
}

/* build_instance - instance NAME of plugin M with the core's filters from its section SEC;
 * NULL (logged) when its store does not exist */
static pd_inst *build_instance(pd_conf *c, pd_module *m, const char *name, cfg_t *sec, int line, int verbose)
{
	pd_inst *in = pd_xcalloc(1, sizeof(*in));
	const char *store = cfg_getstr(sec, "store");

	in->store = find_store(c, store);
	if (!in->store) {
		pd_log(PD_LOG_ERR, "%s:%d: %s \"%s\": store \"%s\" is not defined (write a store \"%s\" { } section)",
		       c->file, line, m->name, name, store, store);
		free(in);
		return NULL;
	}
	if ((m->desc->flags & PD_PLUGIN_STATE) && pd_conf_store_overrides(sec)) {
		/* store settings in the plugin's section: a store of its own, the named one changed */
		pd_conf_store *own = pd_conf_store_derive(in->store->sec, sec, name, in->store->name, c->state_dir,
							  c->file, line);

		if (!own) {
			free(in);
			return NULL;
		}
		c->stores = pd_xrealloc(c->stores, (c->n_stores + 1) * sizeof(*c->stores));
		c->stores[c->n_stores++] = own;
		in->store = own;
	}
	if (m->desc->flags & PD_PLUGIN_STATE)
		in->store->used = 1; /* opened at start; a plugin that says nothing never touches it */
	in->mod = m;
	in->name = pd_xstrdup(name);
	in->pub.host = &pd_core_host;
	in->pub.name = in->name;
	in->pub.cfg = sec;
	in->pub.state_dir = c->state_dir;
	in->pub.verbose = verbose;
	in->pub.plugin = m->name;
	in->pub.blocking = 1; /* may wait unless its init says otherwise */
	in->pub.dns_timeout_ms = c->dns.timeout_ms;
	in->pub.dns_resolv_conf = c->dns.resolv_conf;
	in->pub.dns_cache = 1;
	in->pub.dns_max_ttl = c->dns.max_ttl;
	in->metric = pd_metrics_plugin(name);
	if (sec && cfg_size(sec, "protocol_state") > 0) {
		for (unsigned i = 0; i < cfg_size(sec, "protocol_state"); i++)
			in->states |= pd_state_bit(cfg_getnstr(sec, "protocol_state", i));
	} else {
		char buf[128], *save = NULL;

		snprintf(buf, sizeof(buf), "%s", m->desc->default_states ? m->desc->default_states : "RCPT");
		for (char *w = strtok_r(buf, ", ", &save); w; w = strtok_r(NULL, ", ", &save))
			in->states |= pd_state_bit(w);
		if (!in->states)
			in->states = PD_ST_RCPT;
	}
	in->skip_sasl = sec && cfg_size(sec, "skip_sasl") ? cfg_getbool(sec, "skip_sasl")
							   : !!(m->desc->flags & PD_PLUGIN_SKIP_SASL);
	in->optional = sec ? cfg_getbool(sec, "optional") : 0;
	in->observe = in->pub.observe = cfg_getbool(sec, "observe");
	in->timeout = sec ? (int)cfg_getint(sec, "timeout") : 0;
	in->n_nets = sec ? cfg_size(sec, "skip_networks") : 0;
	if (in->n_nets) {
		in->nets = pd_xcalloc(in->n_nets, sizeof(*in->nets));
		for (size_t i = 0; i < in->n_nets; i++)
			pd_cidr_parse(cfg_getnstr(sec, "skip_networks", (unsigned)i), &in->nets[i]);
	}
	return in;
}

/* find_inst - the instance called NAME */
static pd_inst *find_inst(pd_conf *c, const char *name)
{
	for (size_t i = 0; i < c->n_insts; i++)
		if (strcmp(c->insts[i]->pub.name, name) == 0)
			return c->insts[i];
	return NULL;
}

/* build_chain - NAME's plugins, in order; NULL (logged) if one is unknown */
static pd_chain *build_chain(pd_conf *c, const char *name, cfg_t *sec)
{
	pd_chain *ch = pd_xcalloc(1, sizeof(*ch));

	ch->name = pd_xstrdup(name);
	ch->n = cfg_size(sec, "plugins");
	ch->insts = pd_xcalloc(ch->n, sizeof(*ch->insts));
	for (size_t i = 0; i < ch->n; i++) {
		const char *pname = cfg_getnstr(sec, "plugins", (unsigned)i);

		ch->insts[i] = find_inst(c, pname);
		if (!ch->insts[i]) {
			/* the first pass (conf_scan.c) did not see it: never run a chain with a hole */
			pd_log(PD_LOG_ERR, "%s: chain %s names plugin \"%s\" in a form policyd cannot read; "
			       "write plugins = { \"a\", \"b\" }", c->file, name, pname);
			free(ch->name);
			free(ch->insts);
			free(ch);
			return NULL;
		}
	}
	return ch;
}

/* conf_dir - absolute directory of the config file */
static char *conf_dir(const char *file)
{
	char buf[PATH_MAX];
	char *slash;

	if (file[0] == '/') {
		snprintf(buf, sizeof(buf), "%s", file);
	} else {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd)))
			strcpy(cwd, "/");
		snprintf(buf, sizeof(buf), "%s/%s", cwd, file);
	}
	slash = strrchr(buf, '/');
	if (slash == buf)
		slash[1] = 0;
	else
		*slash = 0;
	return pd_xstrdup(buf);
}

/* load_modules - load every named plugin; errors carry file:line */
static int load_modules(pd_conf *c, const pd_scan *sc)
{
	char err[1024];

	for (size_t i = 0; i < sc->n; i++)
		if (!valid_plugin_name(sc->names[i])) {
			pd_log(PD_LOG_ERR, "%s:%d: plugins: \"%s\" is not an instance name (1 to 64 letters, digits, "
			       "'_' or '-')", c->file, sc->lines[i], sc->names[i]);
			return -1;
		}
	for (size_t i = 0; i < sc->n_sections; i++) {
		if (!valid_plugin_name(sc->sec_title[i])) {
			pd_log(PD_LOG_ERR, "%s:%d: %s \"%s\": not an instance name (1 to 64 letters, digits, '_' or '-')",
			       c->file, sc->sec_line[i], sc->sec_module[i], sc->sec_title[i]);
			return -1;
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(sc->sec_title[k], sc->sec_title[i]) != 0)
				continue;
			if (strcmp(sc->sec_module[k], sc->sec_module[i]) == 0)
				pd_log(PD_LOG_ERR, "%s:%d: %s \"%s\" is defined twice (first at line %d)", c->file,
				       sc->sec_line[i], sc->sec_module[i], sc->sec_title[i], sc->sec_line[k]);
			else
				pd_log(PD_LOG_ERR, "%s:%d: instance \"%s\" is already a %s instance (line %d): "
				       "instance names are unique across plugins", c->file, sc->sec_line[i],
				       sc->sec_title[i], sc->sec_module[k], sc->sec_line[k]);
			return -1;
		}
	}
	/* a section of a plugin no chain uses: its plugin is not loaded, so say why */
	for (size_t i = 0; i < sc->n_sections; i++) {
		int loaded = 0;

		for (size_t k = 0; k < sc->n_modules && !loaded; k++)
			loaded = strcmp(sc->modules[k], sc->sec_module[i]) == 0;
		if (!loaded) {
			pd_log(PD_LOG_ERR, "%s:%d: section %s%s%s%s: no plugins list names instance \"%s\", so plugin "
			       "\"%s\" is not loaded (name it in a plugins list, or remove or comment out the section)",
			       c->file, sc->sec_line[i], sc->sec_module[i],
			       strcmp(sc->sec_title[i], sc->sec_module[i]) ? " \"" : "",
			       strcmp(sc->sec_title[i], sc->sec_module[i]) ? sc->sec_title[i] : "",
			       strcmp(sc->sec_title[i], sc->sec_module[i]) ? "\"" : "", sc->sec_title[i],
			       sc->sec_module[i]);
			return -1;
		}
	}
	c->mods = pd_xcalloc(sc->n_modules ? sc->n_modules : 1, sizeof(*c->mods));
	for (size_t i = 0; i < sc->n_modules; i++) {
		pd_module *m;

		if (!valid_plugin_name(sc->modules[i])) {
			pd_log(PD_LOG_ERR, "%s:%d: \"%s\" is not a plugin name", c->file, sc->module_lines[i],
			       sc->modules[i]);
			return -1;
		}
		m = pd_module_open(c->plugin_dir, sc->modules[i], err, sizeof(err));
		if (!m) {
			pd_log(PD_LOG_ERR, "%s:%d: plugin \"%s\": %s", c->file, sc->module_lines[i], sc->modules[i],
			       err);
			return -1;
		}
		c->mods[c->n_mods++] = m;
	}
	return 0;
}

/* section_line - the line where instance NAME's section opens (pass 1), else DEF */
static int section_line(const pd_scan *sc, const char *name, int def)
{
	for (size_t i = 0; i < sc->n_sections; i++)
		if (strcmp(sc->sec_title[i], name) == 0)
			return sc->sec_line[i];
	return def;
}

/* validate_section - one instance's whole section, once parsed: its plugin's optional validate,
 * whose errors point at the line the section opens on */
static int validate_section(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned n = cfg_opt_size(opt);
	cfg_t *sec = n ? cfg_opt_getnsec(opt, n - 1) : NULL;

	(void)cfg;
	if (!sec || !ctx || !ctx->conf || !ctx->scan)
		return 0;
	for (size_t i = 0; i < ctx->conf->n_mods; i++) {
		pd_module *m = ctx->conf->mods[i];
		int line = sec->line, r;

		if (strcmp(m->name, opt->name) != 0 || !m->desc->validate)
			continue;
		sec->line = section_line(ctx->scan, cfg_title(sec), line);
		r = m->desc->validate(sec);
		sec->line = line;
		return r != 0 ? -1 : 0;
	}
	return 0;
}

/* full_options - global options plus one section per loaded plugin */
static cfg_opt_t *full_options(pd_conf *c, cfg_opt_t ***sub, const pd_scan *sc)
{
	size_t ng = count_opts(global_opts);
	cfg_opt_t *o = pd_xcalloc(ng + c->n_mods + 1, sizeof(*o));
	char err[512];

	memcpy(o, global_opts, ng * sizeof(*o));
	*sub = pd_xcalloc(c->n_mods + 1, sizeof(**sub));
	for (size_t i = 0; i < c->n_mods; i++) {
		/* MODULE "INSTANCE" { }, once per instance (pass 1 titled the untitled ones) */
		cfg_opt_t sec[] = {CFG_SEC("x", NULL, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES)};

		(*sub)[i] = plugin_section_opts(c->mods[i], err, sizeof(err));
		if (!(*sub)[i]) {
			pd_log(PD_LOG_ERR, "%s:%d: plugin \"%s\": %s", c->file, sc->module_lines[i], c->mods[i]->name,
			       err);
			free(o);
			return NULL;
		}
		sec[0].name = c->mods[i]->name;
		sec[0].subopts = (*sub)[i];
		o[ng + i] = sec[0];
	}
	return o;
}

/* pd_conf_load - both passes, modules, instances, chains */
pd_conf *pd_conf_load(const char *file, int verbose)
{
	load_ctx lc = {.file = file};
	pd_conf *c = pd_xcalloc(1, sizeof(*c));
	cfg_opt_t *opts, **sub = NULL;
	pd_scan sc;
	int ok = 0;

	ctx = &lc;
	lc.conf = c;
	c->file = pd_xstrdup(file);
	c->dir = conf_dir(file);

	/* a config any local user may change would hand them the daemon */
	{
		char why[PATH_MAX + 128];

		if (pd_path_safe(file, why, sizeof(why)) == -2) {
			pd_log(PD_LOG_ERR, "%s: %s", file, why);
			pd_conf_free(c);
			return NULL;
		}
	}
	/* pass 1: which plugins and instances, plugin_dir, titles filled in (see conf_scan.c) */
	if (pd_conf_scan(file, &sc) < 0) {
		pd_conf_free(c);
		return NULL;
	}
	lc.scan = &sc;
	c->plugin_dir = resolve_search_path(c->dir, sc.plugin_dir ? sc.plugin_dir : PD_PLUGIN_DIR);
	if (load_modules(c, &sc) < 0)
		goto out;

	/* pass 2: strict, with every plugin's section; a typo anywhere is an error */
	opts = c->opts = full_options(c, &sub, &sc);
	c->sub = sub;
	if (!opts)
		goto out;
	c->cfg = new_cfg(opts, CFGF_NONE);
	if (!c->cfg)
		goto out;
	for (size_t i = 0; i < c->n_mods; i++) {
		char path[160];

		snprintf(path, sizeof(path), "%s|protocol_state", c->mods[i]->name);
		cfg_set_validate_func(c->cfg, path, validate_states);
		snprintf(path, sizeof(path), "%s|skip_networks", c->mods[i]->name);
		cfg_set_validate_func(c->cfg, path, validate_networks);
		snprintf(path, sizeof(path), "%s|timeout", c->mods[i]->name);
		cfg_set_validate_func(c->cfg, path, validate_range);
		if (c->mods[i]->desc->validate) /* the section as a whole, right after its closing brace */
			cfg_set_validate_func(c->cfg, c->mods[i]->name, validate_section);
	}
	pd_conf_store_validators(c->cfg, "store");
	pd_route_validators(c->cfg, c->dir);
	for (size_t i = 0; i < c->n_mods; i++)
		if (c->mods[i]->desc->flags & PD_PLUGIN_STATE)
			pd_conf_store_validators(c->cfg, c->mods[i]->name);
	if (parse_text(c->cfg, &sc) < 0)
		goto out;

	/* settings */
	c->socket_mode = (unsigned)strtol(cfg_getstr(c->cfg, "socket_mode"), NULL, 8);
	parse_owner(cfg_getstr(c->cfg, "socket_owner"), &c->socket_uid, &c->socket_gid);
	c->user = pd_xstrdup(cfg_getstr(c->cfg, "user"));
	c->group = pd_xstrdup(cfg_getstr(c->cfg, "group"));
	c->pidfile = *cfg_getstr(c->cfg, "pidfile") ? pd_path_resolve(c->dir, cfg_getstr(c->cfg, "pidfile"))
						     : pd_xstrdup("");
	c->state_dir = pd_path_resolve(c->dir, cfg_getstr(c->cfg, "state_dir"));
	c->default_action = pd_xstrdup(cfg_getstr(c->cfg, "default_action"));
	c->on_error = pd_xstrdup(cfg_getstr(c->cfg, "on_error"));
	c->metrics_listen = pd_xstrdup(cfg_getstr(c->cfg, "metrics_listen"));
	c->idle_timeout = (int)cfg_getint(c->cfg, "idle_timeout");
	c->request_timeout = (int)cfg_getint(c->cfg, "request_timeout");
	c->read_timeout = (int)cfg_getint(c->cfg, "read_timeout");
	c->facility = pd_log_facility(cfg_getstr(c->cfg, "syslog_facility"));
	c->syslog_socket = pd_xstrdup(cfg_getstr(c->cfg, "syslog_socket"));
	c->threads = (int)cfg_getint(c->cfg, "threads");
	c->io_threads = (int)cfg_getint(c->cfg, "io_threads");
	c->supervise = cfg_getbool(c->cfg, "supervise");
	c->limits.max_line = (size_t)cfg_getint(c->cfg, "max_line_length");
	c->limits.max_attrs = (size_t)cfg_getint(c->cfg, "max_attributes");
	c->limits.max_request = (size_t)cfg_getint(c->cfg, "max_request_size");
	{
		cfg_t *d = cfg_getsec(c->cfg, "dns");

		c->dns_resolv_conf = pd_path_resolve(c->dir, cfg_getstr(d, "resolv_conf"));
		c->dns.resolv_conf = c->dns_resolv_conf;
		c->dns.cache_size = (size_t)cfg_getint(d, "cache_size");
		c->dns.min_ttl = (unsigned)cfg_getint(d, "min_ttl");
		c->dns.max_ttl = (unsigned)cfg_getint(d, "max_ttl");
		c->dns.negative_ttl = (unsigned)cfg_getint(d, "negative_ttl");
		c->dns.timeout_ms = (unsigned)cfg_getint(d, "timeout") * 1000u;
		c->dns.max_queries = (unsigned)cfg_getint(d, "max_queries");
		if (c->dns.min_ttl > c->dns.max_ttl) {
			pd_log(PD_LOG_ERR, "%s:%d: dns: min_ttl (%u) is longer than max_ttl (%u)", file, d->line,
			       c->dns.min_ttl, c->dns.max_ttl);
			goto out;
		}
	}

	if (pd_conf_stores_build(c->cfg, file, c->state_dir, &c->stores, &c->n_stores) < 0)
		goto out;

	/* instances (one per name in a plugins list), then chains: the default one first */
	c->insts = pd_xcalloc(sc.n ? sc.n : 1, sizeof(*c->insts));
	c->min_timeout = c->request_timeout;
	for (size_t i = 0; i < sc.n; i++) {
		const char *mod = pd_scan_module_of(&sc, sc.names[i]);
		pd_module *m = NULL;
		cfg_t *sec;
		pd_inst *in;

		for (size_t k = 0; k < c->n_mods && !m; k++)
			if (strcmp(c->mods[k]->name, mod) == 0)
				m = c->mods[k];
		sec = m ? cfg_gettsec(c->cfg, mod, sc.names[i]) : NULL;
		if (!sec) { /* pass 1 gives every named instance a section; never run one without */
			pd_log(PD_LOG_ERR, "%s:%d: instance \"%s\": no section found for it", file, sc.lines[i],
			       sc.names[i]);
			goto out;
		}
		in = build_instance(c, m, sc.names[i], sec, section_line(&sc, sc.names[i], sc.lines[i]), verbose);
		if (!in)
			goto out;
		c->insts[c->n_insts++] = in;
		if (in->timeout > 0 && in->timeout < c->min_timeout)
			c->min_timeout = in->timeout;
	}
	/* a titled section no plugins list names is configured for nothing: say so */
	for (size_t i = 0; i < sc.n_sections; i++)
		if (!find_inst(c, sc.sec_title[i]))
			pd_log(PD_LOG_WARNING, "%s:%d: %s \"%s\" { }: no plugins list names instance \"%s\"; it is not used",
			       file, sc.sec_line[i], sc.sec_module[i], sc.sec_title[i], sc.sec_title[i]);
	c->n_chains = 1 + cfg_size(c->cfg, "chain");
	c->chains = pd_xcalloc(c->n_chains, sizeof(*c->chains));
	c->chains[0] = build_chain(c, DEFAULT_CHAIN, c->cfg);
	if (!c->chains[0])
		goto out;
	add_listeners(c, c->cfg, DEFAULT_CHAIN);
	for (size_t i = 1; i < c->n_chains; i++) {
		cfg_t *sec = cfg_getnsec(c->cfg, "chain", (unsigned)i - 1);

		if (strcmp(cfg_title(sec), DEFAULT_CHAIN) == 0) {
			pd_log(PD_LOG_ERR, "%s:%d: chain \"default\" is reserved: the global plugins list is the default chain",
			       file, sec->line);
			goto out;
		}
		c->chains[i] = build_chain(c, cfg_title(sec), sec);
		if (!c->chains[i])
			goto out;
		c->chains[i]->n_listen = cfg_size(sec, "listen");
		add_listeners(c, sec, cfg_title(sec));
		if (pd_route_index_add(&c->routes, c->chains[i], sec, c->dir, file) < 0)
			goto out;
	}
	ok = 1;
out:
	pd_conf_scan_free(&sc);
	ctx = NULL;
	if (!ok) {
		pd_conf_free(c);
		return NULL;
	}
	return c;
}

/* pd_conf_state_dir - create the state directory and hand it to UID/GID
 * (unless -1): never through a symlink, never one that belongs to a third
 * user, never by path (fchown on the opened directory) */
int pd_conf_state_dir(const pd_conf *c, uid_t uid, gid_t gid)
{
	struct stat st;
	int fd;

	if (pd_mkdir_p(c->state_dir, 0750) < 0) {
		pd_log(PD_LOG_ERR, "state_dir %s: cannot create: %s", c->state_dir, strerror(errno));
		return -1;
	}
	fd = open(c->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || (lstat(c->state_dir, &st) == 0 && S_ISLNK(st.st_mode)))
			pd_log(PD_LOG_ERR, "state_dir %s: is a symbolic link; give the real directory instead",
			       c->state_dir);
		else
			pd_log(PD_LOG_ERR, "state_dir %s: %s", c->state_dir, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || (st.st_uid != 0 && st.st_uid != geteuid() && st.st_uid != uid)) {
		pd_log(PD_LOG_ERR, "state_dir %s: belongs to uid %ld, neither root nor the daemon's user; refusing it",
		       c->state_dir, (long)st.st_uid);
		close(fd);
		return -1;
	}
	if (uid != (uid_t)-1 && (st.st_uid != uid || (gid != (gid_t)-1 && st.st_gid != gid)) &&
	    fchown(fd, uid, gid) < 0) {
		pd_log(PD_LOG_ERR, "state_dir %s: cannot change owner: %s", c->state_dir, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* pd_conf_start - every plugin's init, in order */
int pd_conf_start(pd_conf *c)
{
	if (pd_conf_state_dir(c, (uid_t)-1, (gid_t)-1) < 0)
		return -1;
	if (pd_conf_stores_open(c->stores, c->n_stores) < 0) /* before init: host->store_remote */
		return -1;
	pd_dns_configure(&c->dns); /* before init: instances name their resolvers there */
	for (size_t i = 0; i < c->n_insts; i++) {
		pd_inst *in = c->insts[i];

		if (in->mod->desc->init(&in->pub) == 0) {
			in->started = 1;
			in->dns_resolver = pd_dns_resolver(in->pub.dns_resolv_conf,
							   in->pub.dns_cache ? in->pub.dns_max_ttl : 0);
			continue;
		}
		if (in->optional) {
			pd_log(PD_LOG_WARNING, "plugin \"%s\" (%s): init failed; disabled because it is optional",
			       in->pub.name, in->mod->path);
			continue;
		}
		pd_log(PD_LOG_ERR, "plugin \"%s\" (%s): init failed; not starting", in->pub.name, in->mod->path);
		return -1;
	}
	return 0;
}

/* pd_conf_chain - chain by name */
const pd_chain *pd_conf_chain(const pd_conf *c, const char *name)
{
	for (size_t i = 0; i < c->n_chains; i++)
		if (c->chains[i] && strcmp(c->chains[i]->name, name) == 0)
			return c->chains[i];
	return NULL;
}

/* pd_conf_free - fini, unload, free */
void pd_conf_free(pd_conf *c)
{
	if (!c)
		return;
	for (size_t i = c->n_insts; i-- > 0;) {
		pd_inst *in = c->insts[i];

		if (in->started)
			in->mod->desc->fini(&in->pub);
		free(in->nets);
		free(in->name);
		free(in);
	}
	pd_route_index_free(&c->routes);
	for (size_t i = 0; i < c->n_chains; i++)
		if (c->chains[i]) {
			free(c->chains[i]->name);
			free(c->chains[i]->insts);
			free(c->chains[i]);
		}
	pd_conf_stores_free(c->stores, c->n_stores);
	free(c->stores);
	if (c->cfg)
		cfg_free(c->cfg);
	for (size_t i = 0; i < c->n_mods; i++)
		pd_module_close(c->mods[i]);
	if (c->sub)
		for (size_t i = 0; i < c->n_mods; i++)
			free(c->sub[i]);
	free(c->sub);
	free(c->opts);
	for (size_t i = 0; i < c->n_listen; i++) {
		free(c->listen[i].text);
		free(c->listen[i].chain);
	}
	free(c->listen);
	free(c->chains);
	free(c->insts);
	free(c->mods);
	free(c->file);
	free(c->dir);
	free(c->user);
	free(c->group);
	free(c->pidfile);
	free(c->plugin_dir);
	free(c->state_dir);
	free(c->syslog_socket);
	free(c->default_action);
	free(c->on_error);
	free(c->metrics_listen);
	free(c->dns_resolv_conf);
	free(c);
}
