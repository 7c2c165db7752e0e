/* greylist.c - the greylist plugin: defer unknown (client network, sender, recipient) triplets */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A triplet seen for the first time is deferred (DEFER_IF_PERMIT); a retry
 * after `delay` seconds, within `retry_window`, passes and confirms the
 * triplet for `lifetime` seconds since it was last seen. A client address
 * with `auto_whitelist` counted deliveries passes without greylisting
 * (decide.c says how they are counted).
 *
 * State: the core's state service only (PD_PLUGIN_STATE), in the
 * instance's namespace: one record per triplet changed by one atomic
 * host->store_update (decide.c), and one per client address, read with
 * host->store_get and counted with store_update. The store is local GDBM
 * or a Redis server as the admin configured it (store { } sections, or the
 * store settings in the greylist section itself); expiry, fsync and
 * locking are the core's. The instance runs on the worker threads when its
 * store waits for the network (host->store_remote), else on the network
 * threads. A database of the plugin before the state service
 * (`database`, greylist.db) is imported once at start (legacy.c).
 */
#include <policyd/plugin.h>

#include "gl.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEF_TEXT GL_DEF_TEXT

/* Per-instance state. */
typedef struct gl_inst {
	pd_instance *inst;
	gl_keyconf kc;
	gl_wl *cwl, *rwl;
	long delay, retry_window, lifetime;
	long auto_whitelist, awl_interval;
	int awl_prefix4, awl_prefix6;
	int add_header;
	int use_min_score; /* min_score set: only requests scored at least that are greylisted */
	double min_score;
	char action[32];
	char text[PD_REPLY_MAX];
	char hostname[128];
	char dbpath[PATH_MAX];
} gl_inst;

/* ---- recent messages: one X-Greylist header per message ---- */

#define RECENT_SLOTS 4096
#define RECENT_TTL 3600
#define RECENT_HEADER 1

static struct {
	uint64_t h;
	time_t t;
	unsigned flags;
} recent[RECENT_SLOTS];
static pthread_mutex_t recent_mu = PTHREAD_MUTEX_INITIALIZER;

/* recent_claim - set FLAG for this message; 1 if it was not yet set (always 1 without an id) */
static int recent_claim(const char *client, const char *instance, unsigned flag, time_t now)
{
	static const uint8_t k[16] = "greylist-recent!";
	char buf[256];
	uint8_t hb[8];
	uint64_t h = 0;
	size_t slot;
	int fresh;

	if (!instance || !*instance)
		return 1;
	snprintf(buf, sizeof(buf), "%.100s|%.100s", client ? client : "", instance);
	pd_siphash(k, buf, strlen(buf), hb);
	for (int i = 7; i >= 0; i--)
		h = (h << 8) | hb[i];
	slot = (size_t)(h % RECENT_SLOTS);
	pthread_mutex_lock(&recent_mu);
	if (recent[slot].h != h || now - recent[slot].t > RECENT_TTL || recent[slot].t > now) {
		recent[slot].h = h;
		recent[slot].flags = 0;
	}
	recent[slot].t = now;
	fresh = !(recent[slot].flags & flag);
	recent[slot].flags |= flag;
	pthread_mutex_unlock(&recent_mu);
	return fresh;
}

/* ---- reply and header ---- */

/* expand_text - copy TEXT replacing %s %d %r %%; client data is copied, never interpreted */
static void expand_text(const char *text, long remaining, long delay, const char *rcpt, char *out,
			size_t outsz)
{
	size_t n = 0;
	char num[32], dom[72];
	const char *at = rcpt ? strrchr(rcpt, '@') : NULL;
	size_t dn = 0;

	for (const char *p = at ? at + 1 : ""; *p && dn < 64; p++)
		if (isalnum((unsigned char)*p) || *p == '.' || *p == '-')
			dom[dn++] = (char)tolower((unsigned char)*p);
	dom[dn] = 0;
	for (const char *p = text; *p && n + 1 < outsz; p++) {
		const char *ins = NULL;

		if (*p == '%' && p[1]) {
			p++;
			switch (*p) {
			case 's':
				snprintf(num, sizeof(num), "%ld", remaining);
				ins = num;
				break;
			case 'd':
				snprintf(num, sizeof(num), "%ld", delay);
				ins = num;
				break;
			case 'r':
				ins = dom;
				break;
			default:
				ins = "%";
				break;
			}
			for (; *ins && n + 1 < outsz; ins++)
				out[n++] = *ins;
			continue;
		}
		out[n++] = *p;
	}
	out[n] = 0;
}

/* rfc5322_date - "Mon, 23 Nov 2026 22:13:13 +0000" (locale-independent, UTC) */
static void rfc5322_date(time_t t, char *out, size_t outsz)
{
	static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, outsz, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday], tm.tm_mday,
		 mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- init / fini ---- */

/* resolve - PATH relative to BASE_FILE's directory (or to DIR when BASE_FILE is NULL) */
static int resolve(const char *path, const char *base_file, const char *dir, char *out, size_t outsz)
{
	int n;

	if (path[0] == '/' || (!base_file && !dir))
		n = snprintf(out, outsz, "%s", path);
	else if (base_file) {
		const char *slash = strrchr(base_file, '/');

		if (slash)
			n = snprintf(out, outsz, "%.*s/%s", (int)(slash - base_file), base_file, path);
		else
			n = snprintf(out, outsz, "%s", path);
	} else
		n = snprintf(out, outsz, "%s/%s", dir, path);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/* load_lists - read every configured whitelist file; -1 after logging file:line */
static int load_lists(gl_inst *g, const char *opt, int clients, gl_wl **out)
{
	pd_instance *inst = g->inst;
	cfg_t *cfg = inst->cfg;
	unsigned n = cfg ? cfg_size(cfg, opt) : 0;

	*out = gl_wl_new();
	if (!*out)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		char path[PATH_MAX], err[PATH_MAX + 300];

		/* relative paths are relative to the config file; without its name
		 * (the core does not give it for sections) refuse them rather than
		 * guess: the daemon runs in "/" */
		if (cfg_getnstr(cfg, opt, i)[0] != '/' && !cfg->filename) {
			inst->host->log(inst, PD_LOG_ERR, "%s: \"%s\": give an absolute path", opt,
					cfg_getnstr(cfg, opt, i));
			return -1;
		}
		if (resolve(cfg_getnstr(cfg, opt, i), cfg->filename, NULL, path, sizeof(path)) != 0) {
			inst->host->log(inst, PD_LOG_ERR, "%s: path too long", opt);
			return -1;
		}
		if (gl_wl_load(*out, path, clients, err, sizeof(err)) != 0) {
			inst->host->log(inst, PD_LOG_ERR, "%s: %s", opt, err);
			return -1;
		}
	}
	return 0;
}

/* gl_free - free an instance's state */
static void gl_free(gl_inst *g)
{
	gl_wl_free(g->cwl);
	gl_wl_free(g->rwl);
	free(g);
}

/* getl - an integer option, or its default without a section */
static long getl(cfg_t *cfg, const char *name, long def)
{
	return cfg ? cfg_getint(cfg, name) : def;
}

/* ---- the database of before the state service ---- */

typedef struct import_ctx {
	gl_inst *g;
	const gl_rec *rec;
	unsigned ttl;
} import_ctx;

/* import_rec - store update: the old record, unless the store has one for the key already */
static int import_rec(void *arg, const void *old, size_t oldlen, void *new, size_t *newlen, unsigned *ttl)
{
	import_ctx *x = arg;

	(void)oldlen;
	if (old)
		return PD_STORE_KEEP; /* newer than the old file's */
	gl_rec_encode(x->rec, new);
	*newlen = GL_REC_SIZE;
	*ttl = x->ttl;
	return PD_STORE_WRITE;
}

/* import_one - one live triplet of the old file into the instance's store */
static int import_one(void *arg, const char *key, const gl_rec *rec, unsigned ttl)
{
	import_ctx x = {arg, rec, ttl};
	gl_inst *g = arg;
	int r;

	return g->inst->host->store_update(g->inst, key, import_rec, &x, &r);
}

/* import_legacy - the old greylist.db, if there is one: its live triplets into the store, then
 * renamed PATH.imported so that it is read once; 0, or -1 after logging (the start stops) */
static int import_legacy(gl_inst *g)
{
	pd_instance *inst = g->inst;
	char err[PATH_MAX + 200], done[PATH_MAX + 16];
	long triplets, skipped, n;
	struct stat sb;

	if (stat(g->dbpath, &sb) != 0) {
		if (errno == ENOENT)
			return 0;
		inst->host->log(inst, PD_LOG_ERR, "database %s: %s", g->dbpath, strerror(errno));
		return -1;
	}
	n = gl_legacy_import(g->dbpath, &g->kc, (int64_t)inst->host->now(), g->retry_window, g->lifetime,
			     import_one, g, &triplets, &skipped, err, sizeof(err));
	if (n < 0 && stat(g->dbpath, &sb) != 0 && errno == ENOENT) {
		/* policyd -s: another process imported and renamed it meanwhile (imports are idempotent) */
		inst->host->log(inst, PD_LOG_INFO, "database %s: imported by another process", g->dbpath);
		return 0;
	}
	if (n < 0) {
		inst->host->log(inst, PD_LOG_ERR, "cannot import the greylist database of before the state "
				"service: %s (the file is left as it is)", err);
		return -1;
	}
	snprintf(done, sizeof(done), "%s.imported", g->dbpath);
	if (rename(g->dbpath, done) != 0) {
		if (errno == ENOENT) {
			inst->host->log(inst, PD_LOG_INFO, "database %s: imported (%ld triplets), renamed by "
					"another process", g->dbpath, triplets);
			return 0;
		}
		inst->host->log(inst, PD_LOG_ERR, "imported %s, but cannot rename it to %s: %s", g->dbpath, done,
				strerror(errno));
		return -1;
	}
	inst->host->log(inst, PD_LOG_NOTICE, "imported %ld triplets of %ld records from %s into the state "
			"service (%ld expired or client records left out); the file is now %s", triplets, n,
			g->dbpath, skipped, done);
	return 0;
}

/* gl_init - read options and whitelists, import an old database */
static int gl_init(pd_instance *inst)
{
	const pd_host *h = inst->host;
	cfg_t *cfg = inst->cfg;
	gl_inst *g = calloc(1, sizeof(*g));
	const char *s;

	if (!g) {
		h->log(inst, PD_LOG_ERR, "out of memory");
		return -1;
	}
	g->inst = inst;
	g->delay = getl(cfg, "delay", 300);
	g->retry_window = getl(cfg, "retry_window", 2 * 86400);
	g->lifetime = getl(cfg, "lifetime", 35 * 86400);
	g->auto_whitelist = getl(cfg, "auto_whitelist", 5);
	g->awl_interval = getl(cfg, "auto_whitelist_interval", 3600);
	g->awl_prefix4 = (int)getl(cfg, "auto_whitelist_ipv4_prefix", 32);
	g->awl_prefix6 = (int)getl(cfg, "auto_whitelist_ipv6_prefix", 128);
	if (cfg && cfg_size(cfg, "min_score") > 0) {
		g->use_min_score = 1;
		g->min_score = cfg_getfloat(cfg, "min_score");
		h->log(inst, PD_LOG_INFO, "greylisting only requests whose score is at least %.2f (min_score)",
		       g->min_score);
	}
	g->kc.ipv4_prefix = (int)getl(cfg, "ipv4_prefix", 24);
	g->kc.ipv6_prefix = (int)getl(cfg, "ipv6_prefix", 64);
	g->kc.normalise_sender = cfg ? cfg_getbool(cfg, "normalise_sender") : 1;
	g->kc.privacy = cfg ? cfg_getbool(cfg, "privacy") : 0;
	g->add_header = cfg ? cfg_getbool(cfg, "add_header") : 1;
	snprintf(g->action, sizeof(g->action), "%s", cfg ? cfg_getstr(cfg, "action") : "DEFER_IF_PERMIT");
	snprintf(g->text, sizeof(g->text), "%s", cfg ? cfg_getstr(cfg, "reply_text") : DEF_TEXT);
	if (g->retry_window <= g->delay) {
		h->log(inst, PD_LOG_ERR, "retry_window (%lds) must be longer than delay (%lds)",
		       g->retry_window, g->delay);
		goto fail;
	}
	if (g->lifetime < g->retry_window) {
		h->log(inst, PD_LOG_ERR, "lifetime (%lds) must not be shorter than retry_window (%lds)",
		       g->lifetime, g->retry_window);
		goto fail;
	}
	if (gethostname(g->hostname, sizeof(g->hostname) - 1) != 0 || !g->hostname[0])
		snprintf(g->hostname, sizeof(g->hostname), "localhost");
	for (char *p = g->hostname; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
			*p = '-';

	if (load_lists(g, "client_whitelist", 1, &g->cwl) != 0 ||
	    load_lists(g, "recipient_whitelist", 0, &g->rwl) != 0)
		goto fail;

	s = cfg ? cfg_getstr(cfg, "database") : "greylist.db";
	if (resolve(s, NULL, inst->state_dir, g->dbpath, sizeof(g->dbpath)) != 0) {
		h->log(inst, PD_LOG_ERR, "database: path too long");
		goto fail;
	}
	/* Redis: a network round trip per request, on the worker threads */
	inst->blocking = h->store_remote(inst);
	if (g->kc.privacy) {
		const char *secret = cfg ? cfg_getstr(cfg, "hash_key") : "";

		if (inst->blocking && !(secret && *secret)) {
			/* a key file is per host: the hosts sharing Redis would not agree */
			h->log(inst, PD_LOG_ERR, "privacy with a shared (Redis) store needs hash_key "
			       "(the same secret on every host sharing the database)");
			goto fail;
		}
		if (secret && *secret) {
			gl_key_from_secret(secret, g->kc.hash_key);
		} else {
			char kp[PATH_MAX + 8], err[PATH_MAX + 100];

			snprintf(kp, sizeof(kp), "%s.key", g->dbpath);
			if (gl_key_file(kp, 1, g->kc.hash_key, err, sizeof(err)) != 0) {
				h->log(inst, PD_LOG_ERR, "privacy key: %s", err);
				goto fail;
			}
		}
	}
	if (import_legacy(g) != 0)
		goto fail;
	h->log(inst, PD_LOG_INFO,
	       "state service (%s), delay %lds, retry window %lds, lifetime %lds, auto-whitelist after %ld "
	       "deliveries (per /%d, /%d, counted once per %lds), %zu client and %zu recipient whitelist "
	       "entries", inst->blocking ? "shared" : "local", g->delay, g->retry_window, g->lifetime,
	       g->auto_whitelist, g->awl_prefix4, g->awl_prefix6, g->awl_interval, gl_wl_count(g->cwl),
	       gl_wl_count(g->rwl));
	inst->data = g;
	return 0;
fail:
	gl_free(g);
	return -1;
}

/* gl_fini - free the instance (the store is the core's) */
static void gl_fini(pd_instance *inst)
{
	gl_inst *g = inst->data;

	if (!g)
		return;
	gl_free(g);
	inst->data = NULL;
}

/* ---- check ---- */

/* attr_or - attribute value or "" */
static const char *attr_or(const pd_instance *inst, pd_request *req, const char *name)
{
	const char *v = inst->host->attr(req, name);

	return v ? v : "";
}

/* raw_net - a client address that is not an IP (should not happen with Postfix): its text, tamed */
static void raw_net(const char *addr, char *net, size_t sz)
{
	gl_fold_addr(addr, net, 64 < sz ? 64 : sz);
	for (char *p = net; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != ':' && *p != '-')
			*p = '_';
	if (!net[0])
		snprintf(net, sz, "unknown");
}

/* client_listed - is the client address auto-whitelisted? 1 yes, 0 no (*DUE: its delivery may
 * be counted now), -1 error (logged by the core) */
static int client_listed(gl_inst *g, const char *ckey, const char *who, int64_t now, int *due)
{
	pd_instance *inst = g->inst;
	pd_store_value v;
	gl_rec c;
	int r = inst->host->store_get(inst, ckey, &v);

	*due = 1;
	if (r <= 0)
		return r;
	if (gl_rec_decode(v.data, v.len, &c) != 0 || c.type != GL_T_CLIENT)
		return 0;
	if (!gl_client_listed(&c, now, g->auto_whitelist, g->lifetime)) {
		*due = !c.last_seen || now - c.last_seen >= g->awl_interval || c.last_seen > now;
		return 0;
	}
	if (now - c.last_seen >= g->awl_interval || c.last_seen > now) {
		/* refresh the record (and count, for statistics) once per interval */
		gl_cdec d = {.now = now, .interval = g->awl_interval, .lifetime = g->lifetime,
			     .needed = g->auto_whitelist, .refresh = 1};

		if (inst->host->store_update(inst, ckey, gl_client_update, &d, &r) != 0)
			return -1;
	}
	if (inst->verbose)
		inst->host->log(inst, PD_LOG_INFO, "pass: client %s is auto-whitelisted (%u deliveries)", who,
				(unsigned)c.count);
	return 1;
}

/* count_delivery - a triplet of the client passed for the first time: count it */
static int count_delivery(gl_inst *g, const char *ckey, const char *who, int64_t now)
{
	pd_instance *inst = g->inst;
	gl_cdec d = {.now = now, .interval = g->awl_interval, .lifetime = g->lifetime,
		     .needed = g->auto_whitelist};
	int r;

	if (inst->host->store_update(inst, ckey, gl_client_update, &d, &r) != 0)
		return -1;
	if (d.whitelisted_now)
		inst->host->log(inst, PD_LOG_NOTICE, "client %s auto-whitelisted after %u deliveries", who,
				(unsigned)d.count);
	else if (inst->verbose && r == PD_STORE_WRITE)
		inst->host->log(inst, PD_LOG_INFO, "client %s: delivery %u of %ld counted for the auto-whitelist",
				who, (unsigned)d.count, g->auto_whitelist);
	return 0;
}

/* read_first - on a remote store (Redis), where an update costs three round trips (WATCH and
 * GET, then UNWATCH or MULTI/SET/EXEC) and a read one: read the triplet's record and, when the
 * decision writes nothing (a known triplet, an early retry), take it from the read: the same
 * pure function of the same record, as if this request came just before any concurrent writer.
 * 1 decided (D filled), 0 a write is needed (update), -1 error */
static int read_first(pd_instance *inst, const char *tkey, gl_tdec *d)
{
	unsigned char scratch[PD_STORE_RECORD_MAX];
	pd_store_value v;
	size_t len;
	unsigned ttl;
	int r = inst->host->store_get(inst, tkey, &v);

	if (r <= 0)
		return r; /* none: a new triplet, written by the update */
	return gl_triplet_update(d, v.data, v.len, scratch, &len, &ttl) == PD_STORE_KEEP;
}

/* gl_check - the greylisting decision for one request */
static int gl_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	gl_inst *g = inst->data;
	const pd_host *h = inst->host;
	const char *addr = attr_or(inst, req, "client_address");
	const char *rcpt_raw = attr_or(inst, req, "recipient");
	const char *instance_id = h->attr(req, "instance");
	char net[80], who[80], sender[GL_ADDR_MAX + 1], rcpt[GL_ADDR_MAX + 1];
	char tkey[GL_KEY_MAX + 1], ckey[GL_KEY_MAX + 1];
	int64_t now = (int64_t)h->now();
	gl_tdec d;
	int r, due = 0;

	if (g->use_min_score) { /* greylist only doubtful mail: the plugins before us scored it */
		double sum = h->score_sum(req);

		if (sum < g->min_score) {
			if (inst->verbose)
				h->log(inst, PD_LOG_INFO, "pass: score %.2f below min_score %.2f", sum, g->min_score);
			return PD_CHECK_OK;
		}
	}
	if (gl_wl_client(g->cwl, addr, h->attr(req, "client_name"))) { /* verified name only */
		if (inst->verbose)
			h->log(inst, PD_LOG_INFO, "pass: client in client_whitelist");
		return PD_CHECK_OK; /* DUNNO: whitelisted client */
	}
	if (gl_wl_recipient(g->rwl, rcpt_raw)) {
		if (inst->verbose)
			h->log(inst, PD_LOG_INFO, "pass: recipient in recipient_whitelist");
		return PD_CHECK_OK;
	}
	if (gl_client_net(&g->kc, addr, net, sizeof(net)) != 0)
		raw_net(addr, net, sizeof(net));
	if (gl_addr_net(addr, g->awl_prefix4, g->awl_prefix6, who, sizeof(who)) != 0)
		raw_net(addr, who, sizeof(who));
	gl_norm_sender(&g->kc, attr_or(inst, req, "sender"), sender, sizeof(sender));
	/* at DATA Postfix sends no recipient when there were several: the triplet
	 * becomes (client network, sender, ""), one per message */
	gl_fold_addr(rcpt_raw, rcpt, sizeof(rcpt));
	if (!gl_triplet_key(&g->kc, net, sender, rcpt, tkey, sizeof(tkey)) ||
	    (g->auto_whitelist > 0 && !gl_client_key(&g->kc, who, ckey, sizeof(ckey)))) {
		h->log(inst, PD_LOG_ERR, "cannot build a key");
		return PD_CHECK_ERROR;
	}
	if (g->auto_whitelist > 0) {
		r = client_listed(g, ckey, who, now, &due);
		if (r < 0)
			return PD_CHECK_ERROR;
		if (r == 1)
			return PD_CHECK_OK;
	}
	d = (gl_tdec){.in = {.now = now, .delay = g->delay, .retry_window = g->retry_window,
			     .lifetime = g->lifetime}};
	r = inst->blocking ? read_first(inst, tkey, &d) : 0;
	if (r < 0)
		return PD_CHECK_ERROR;
	if (r == 0 && h->store_update(inst, tkey, gl_triplet_update, &d, &r) != 0)
		return PD_CHECK_ERROR;
	if (d.out.verdict == GL_V_DEFER) {
		char text[PD_REPLY_MAX];

		expand_text(g->text, d.out.remaining, g->delay, rcpt, text, sizeof(text));
		h->reply(reply, "%s %s", g->action, text);
		if (inst->verbose)
			h->log(inst, PD_LOG_INFO, "defer: client %s, %s triplet, %ld seconds left", net,
			       d.out.fresh ? "new" : "early retry of a", d.out.remaining);
		return PD_CHECK_OK;
	}
	if (d.out.verdict == GL_V_PASSED_NOW && g->auto_whitelist > 0 && due &&
	    count_delivery(g, ckey, who, now) != 0)
		return PD_CHECK_ERROR;
	if (d.out.verdict == GL_V_PASSED_NOW && g->add_header &&
	    recent_claim(addr, instance_id, RECENT_HEADER, (time_t)now)) {
		char date[64];

		rfc5322_date((time_t)now, date, sizeof(date));
		h->reply(reply, "PREPEND X-Greylist: delayed %ld seconds by policyd at %s; %s", d.out.delayed,
			 g->hostname, date);
	}
	if (inst->verbose)
		h->log(inst, PD_LOG_INFO, "pass: client %s%s", net,
		       d.out.verdict == GL_V_PASSED_NOW ? " (retried after the delay)" : ", known triplet");
	return PD_CHECK_OK;
}

const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "greylist",
    .version = "3.0",
    .description = "greylisting of (client network, sender, recipient) triplets on the state service",
    .flags = PD_PLUGIN_SKIP_SASL | PD_PLUGIN_STATE,
    .default_states = "RCPT",
    .options = gl_options,
    .validate = gl_validate_section, /* the section as a whole, with file:line in errors (options.c) */
    .init = gl_init,
    .check = gl_check,
    .fini = gl_fini,
};
