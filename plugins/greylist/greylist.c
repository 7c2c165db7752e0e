/* greylist.c - the greylist plugin: defer unknown (client network, sender, recipient) triplets */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A triplet seen for the first time is deferred (DEFER_IF_PERMIT); a retry
 * after `delay` seconds, within `retry_window`, passes and confirms the
 * triplet for `lifetime` seconds since it was last seen. A client network
 * with `auto_whitelist` successful deliveries passes without greylisting.
 * Storage: gl_store_ops (store_gdbm.c, store_redis.c). On GDBM check()
 * waits only for a short local-disk update under a mutex (and a leased
 * fcntl lock), so it runs on the network thread; expiry and fsync run in a
 * background thread that releases the lock between small batches. With
 * backend = "redis" the decision is one atomic script call (ops->update,
 * bounded by redis_timeout) and Redis TTLs do the expiry: no thread. That
 * call waits for the network, so a Redis instance says so at init
 * (inst->blocking = 1) and runs on the worker threads; a GDBM one runs on
 * the network threads.
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
#include <unistd.h>

#define DEF_TEXT GL_DEF_TEXT

/* Per-instance state. */
typedef struct gl_inst {
	pd_instance *inst;
	const gl_store_ops *ops;
	gl_store *st;
	gl_keyconf kc;
	gl_wl *cwl, *rwl;
	long delay, retry_window, lifetime, sync_interval, cleanup_interval, lock_timeout;
	long auto_whitelist;
	int add_header;
	char action[32];
	char text[PD_REPLY_MAX];
	char hostname[128];
	char dbpath[PATH_MAX];
	int redis;
	pthread_t thread;
	int thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	time_t last_compact;
} gl_inst;

/* ---- logging bridge for the store ---- */

/* store_log - route store messages to the host log */
static void store_log(void *ctx, int level, const char *fmt, ...)
{
	pd_instance *inst = ctx;
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	inst->host->log(inst, level, "%s", buf);
}

/* ---- recent messages: one X-Greylist header and one delivery count per message ---- */

#define RECENT_SLOTS 4096
#define RECENT_TTL 3600
#define RECENT_HEADER 1
#define RECENT_COUNTED 2

static struct {
	uint64_t h;
	time_t t;
	unsigned flags;
} recent[RECENT_SLOTS];
static pthread_mutex_t recent_mu = PTHREAD_MUTEX_INITIALIZER;

/* recent_mark - is FLAG unset for this message (always 1 without an id)? sets it when SET */
static int recent_mark(const char *client, const char *instance, unsigned flag, time_t now, int set)
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
	if (set)
		recent[slot].flags |= flag;
	pthread_mutex_unlock(&recent_mu);
	return fresh;
}

/* recent_claim - set FLAG for this message; 1 if it was not yet set (always 1 without an id) */
static int recent_claim(const char *client, const char *instance, unsigned flag, time_t now)
{
	return recent_mark(client, instance, flag, now, 1);
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

/* ---- background: sync and expiry ---- */

typedef struct expire_ctx {
	gl_inst *g;
	int64_t now;
} expire_ctx;

/* expire_one - iterate callback: delete expired records */
static int expire_one(void *arg, const unsigned char *key, size_t klen, const gl_rec *rec)
{
	expire_ctx *x = arg;

	return gl_rec_expired(rec, x->now, x->g->retry_window, x->g->lifetime) ? 1 : 0;
}

/* gl_expire - one expiry pass in small locked batches; returns records deleted or -1 */
static long gl_expire(gl_inst *g)
{
	expire_ctx x = {g, (int64_t)g->inst->host->now()};
	long deleted = 0, visited;

	visited = g->ops->iterate(g->st, 200, expire_one, &x, &deleted);
	if (visited < 0)
		return -1;
	g->inst->host->log(g->inst, deleted ? PD_LOG_INFO : PD_LOG_DEBUG,
			   "expiry: %ld of %ld records removed", deleted, visited);
	/* give space back when most of a large file was just freed, at most daily */
	if (deleted >= 10000 && deleted * 2 >= visited && x.now - g->last_compact >= 86400) {
		g->last_compact = x.now;
		g->ops->compact(g->st); /* logs its duration; requests meanwhile get on_error */
	}
	return deleted;
}

static const unsigned char meta_key[] = "M\0cleanup";

/* cleanup_due - claim the cleanup in the database so one process of many runs it */
static int cleanup_due(gl_inst *g)
{
	int64_t now = (int64_t)g->inst->host->now();
	gl_rec m;
	int r, due = 0;

	if (g->ops->begin(g->st) != 0)
		return 0;
	r = g->ops->get(g->st, meta_key, sizeof(meta_key) - 1, &m);
	if (r == 0 || (r == 1 && (now - m.last_seen >= g->cleanup_interval || m.last_seen > now))) {
		if (r == 0)
			m = (gl_rec){.type = GL_T_META, .first_seen = now};
		m.type = GL_T_META;
		m.last_seen = now;
		/* the first process only marks the time: no scan at every spawn-mode start */
		due = r == 1;
		if (g->ops->put(g->st, meta_key, sizeof(meta_key) - 1, &m) != 0)
			due = 0;
	}
	g->ops->end(g->st);
	return due;
}

/* bg_main - background thread: periodic fsync and expiry until fini */
static void *bg_main(void *arg)
{
	gl_inst *g = arg;
	struct timespec now, next_sync, next_check;
	long check_every = g->cleanup_interval < 60 ? g->cleanup_interval : 60;

	clock_gettime(CLOCK_MONOTONIC, &now);
	next_sync = now;
	next_sync.tv_sec += g->sync_interval;
	next_check = now;
	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		struct timespec wake = {0};

		if (g->sync_interval > 0)
			wake = next_sync;
		if (g->cleanup_interval > 0 && (!wake.tv_sec || next_check.tv_sec < wake.tv_sec))
			wake = next_check;
		if (!wake.tv_sec) {
			pthread_cond_wait(&g->cv, &g->mu);
			continue;
		}
		if (pthread_cond_timedwait(&g->cv, &g->mu, &wake) != ETIMEDOUT)
			continue;
		pthread_mutex_unlock(&g->mu);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (g->sync_interval > 0 && now.tv_sec >= next_sync.tv_sec) {
			g->ops->sync(g->st);
			next_sync.tv_sec = now.tv_sec + g->sync_interval;
		}
		if (g->cleanup_interval > 0 && now.tv_sec >= next_check.tv_sec) {
			if (cleanup_due(g))
				gl_expire(g);
			next_check.tv_sec = now.tv_sec + check_every;
		}
		pthread_mutex_lock(&g->mu);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
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

/* gl_free - free an instance's state (thread already stopped) */
static void gl_free(gl_inst *g)
{
	if (g->st)
		g->ops->close(g->st);
	gl_wl_free(g->cwl);
	gl_wl_free(g->rwl);
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
	free(g);
}

/* getl - an integer option, or its default without a section */
static long getl(cfg_t *cfg, const char *name, long def)
{
	return cfg ? cfg_getint(cfg, name) : def;
}

/* gl_init - read options and whitelists, open the database, start the background thread */
static int gl_init(pd_instance *inst)
{
	const pd_host *h = inst->host;
	cfg_t *cfg = inst->cfg;
	gl_inst *g = calloc(1, sizeof(*g));
	gl_logger lg = {store_log, inst};
	pthread_condattr_t ca;
	const char *s;

	if (!g) {
		h->log(inst, PD_LOG_ERR, "out of memory");
		return -1;
	}
	g->inst = inst;
	g->ops = &gl_store_gdbm;
	g->redis = cfg && !strcmp(cfg_getstr(cfg, "backend"), "redis");
	pthread_mutex_init(&g->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cv, &ca);
	pthread_condattr_destroy(&ca);

	g->delay = getl(cfg, "delay", 300);
	g->retry_window = getl(cfg, "retry_window", 2 * 86400);
	g->lifetime = getl(cfg, "lifetime", 35 * 86400);
	g->auto_whitelist = getl(cfg, "auto_whitelist", 5);
	g->sync_interval = getl(cfg, "sync_interval", 60);
	g->cleanup_interval = getl(cfg, "cleanup_interval", 3600);
	g->lock_timeout = getl(cfg, "lock_timeout", 1000);
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
	if (g->kc.privacy) {
		const char *secret = cfg ? cfg_getstr(cfg, "hash_key") : "";

		if (g->redis && !(secret && *secret)) {
			/* a key file is per host: the hosts sharing Redis would not agree */
			h->log(inst, PD_LOG_ERR, "privacy with backend \"redis\" needs hash_key "
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
	if (g->redis) {
#ifdef HAVE_HIREDIS
		gl_redis_conf rc;
		char err[400];

		if (gl_redis_conf_get(cfg, &rc, err, sizeof(err)) != 0) {
			h->log(inst, PD_LOG_ERR, "%s", err);
			goto fail;
		}
		g->ops = &gl_store_redis;
		if (rc.n_sentinels)
			snprintf(g->dbpath, sizeof(g->dbpath),
				 "redis master %s via %d sentinel%s (first %s:%d) db %ld prefix \"%s\"",
				 rc.master_name, rc.n_sentinels, rc.n_sentinels > 1 ? "s" : "",
				 rc.sentinels[0].host, rc.sentinels[0].port, rc.db, rc.prefix);
		else if (rc.path[0])
			snprintf(g->dbpath, sizeof(g->dbpath), "redis unix:%s db %ld prefix \"%s\"",
				 rc.path, rc.db, rc.prefix);
		else
			snprintf(g->dbpath, sizeof(g->dbpath), "redis %s:%d db %ld prefix \"%s\"",
				 rc.host, rc.port, rc.db, rc.prefix);
		g->st = gl_redis_open(&rc, &lg);
#else
		h->log(inst, PD_LOG_ERR, "backend \"redis\": built without hiredis");
		goto fail;
#endif
	} else
		g->st = g->ops->open(g->dbpath, GL_STORE_LEASE, &lg);
	if (!g->st)
		goto fail;
	if (g->ops->lock_timeout) /* checks run on network threads: never an unbounded wait */
		g->ops->lock_timeout(g->st, g->lock_timeout);
	if (!g->ops->self_expiring && (g->sync_interval > 0 || g->cleanup_interval > 0)) {
		if (pthread_create(&g->thread, NULL, bg_main, g) != 0) {
			h->log(inst, PD_LOG_ERR, "cannot start the expiry thread");
			goto fail;
		}
		g->thread_started = 1;
	}
	h->log(inst, PD_LOG_INFO,
	       "database %s, delay %lds, retry window %lds, lifetime %lds, %zu client and %zu "
	       "recipient whitelist entries", g->dbpath, g->delay, g->retry_window, g->lifetime,
	       gl_wl_count(g->cwl), gl_wl_count(g->rwl));
	inst->data = g;
	inst->blocking = g->redis; /* Redis: a network round trip per request, on the worker threads */
	return 0;
fail:
	gl_free(g);
	return -1;
}

/* gl_fini - stop the background thread, sync and close (shared handle: refcounted) */
static void gl_fini(pd_instance *inst)
{
	gl_inst *g = inst->data;

	if (!g)
		return;
	if (g->thread_started) {
		pthread_mutex_lock(&g->mu);
		g->stop = 1;
		pthread_cond_signal(&g->cv);
		pthread_mutex_unlock(&g->mu);
		pthread_join(g->thread, NULL);
	}
	if (g->st)
		g->ops->sync(g->st);
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

/* gl_check - the greylisting decision for one request */
static int gl_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	gl_inst *g = inst->data;
	const pd_host *h = inst->host;
	const char *addr = attr_or(inst, req, "client_address");
	const char *rcpt_raw = attr_or(inst, req, "recipient");
	const char *instance_id = h->attr(req, "instance");
	char net[80], sender[GL_ADDR_MAX + 1], rcpt[GL_ADDR_MAX + 1];
	unsigned char tkey[GL_KEY_MAX], ckey[GL_KEY_MAX];
	size_t tkl, ckl = 0;
	int64_t now = (int64_t)h->now();
	gl_rec t, c;
	int r, defer = 0, passed_now = 0, count_delivery = 0;
	long remaining = 0, delayed = 0;

	if (gl_wl_client(g->cwl, addr, h->attr(req, "client_name"))) /* verified name only */
		return PD_CHECK_OK; /* DUNNO: whitelisted client */
	if (gl_wl_recipient(g->rwl, rcpt_raw))
		return PD_CHECK_OK;
	if (gl_client_net(&g->kc, addr, net, sizeof(net)) != 0) {
		/* not an IP address (should not happen with Postfix): group by the raw text */
		gl_fold_addr(addr, net, 64 < sizeof(net) ? 64 : sizeof(net));
		for (char *p = net; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != ':' && *p != '-')
				*p = '_';
		if (!net[0])
			snprintf(net, sizeof(net), "unknown");
	}
	gl_norm_sender(&g->kc, attr_or(inst, req, "sender"), sender, sizeof(sender));
	/* at DATA Postfix sends no recipient when there were several: the triplet
	 * becomes (client network, sender, ""), one per message */
	gl_fold_addr(rcpt_raw, rcpt, sizeof(rcpt));
	tkl = gl_triplet_key(&g->kc, net, sender, rcpt, tkey, sizeof(tkey));
	if (g->auto_whitelist > 0)
		ckl = gl_client_key(&g->kc, net, ckey, sizeof(ckey));
	if (!tkl || (g->auto_whitelist > 0 && !ckl)) {
		h->log(inst, PD_LOG_ERR, "cannot build a key");
		return PD_CHECK_ERROR;
	}

	if (g->ops->update) {
		gl_upd in = {.tkey = tkey, .tkl = tkl, .ckey = ckey, .ckl = ckl, .now = now,
			     .delay = g->delay, .retry_window = g->retry_window, .lifetime = g->lifetime,
			     .auto_whitelist = g->auto_whitelist};
		gl_upd_res res;

		/* peek only: a deferred recipient must not use up the message's count */
		in.fresh = recent_mark(addr, instance_id, RECENT_COUNTED, (time_t)now, 0);
		if (g->ops->update(g->st, &in, &res) != 0)
			return PD_CHECK_ERROR;
		if (res.verdict != GL_UPD_DEFER)
			recent_claim(addr, instance_id, RECENT_COUNTED, (time_t)now);
		if (res.verdict == GL_UPD_CLIENT) {
			if (inst->verbose)
				h->log(inst, PD_LOG_INFO, "pass: client %s is auto-whitelisted", net);
			return PD_CHECK_OK;
		}
		defer = res.verdict == GL_UPD_DEFER;
		remaining = res.remaining;
		passed_now = res.verdict == GL_UPD_PASSED_NOW;
		delayed = res.delayed;
		goto decided;
	}
	if (g->ops->begin(g->st) != 0)
		return PD_CHECK_ERROR;
	if (ckl) {
		r = g->ops->get(g->st, ckey, ckl, &c);
		if (r < 0)
			goto fail;
		if (r == 1 && c.type == GL_T_CLIENT && c.count >= (uint32_t)g->auto_whitelist &&
		    !gl_rec_expired(&c, now, g->retry_window, g->lifetime)) {
			/* auto-whitelisted client: refresh hourly, count once per message */
			int counted = recent_claim(addr, instance_id, RECENT_COUNTED, (time_t)now);

			if (now - c.last_seen >= 3600 || counted || !c.passed_at) {
				c.last_seen = now;
				if (!c.passed_at)
					c.passed_at = now;
				if (counted && c.count < UINT32_MAX)
					c.count++;
				if (g->ops->put(g->st, ckey, ckl, &c) != 0)
					goto fail;
			}
			g->ops->end(g->st);
			if (inst->verbose)
				h->log(inst, PD_LOG_INFO, "pass: client %s is auto-whitelisted", net);
			return PD_CHECK_OK;
		}
		if (r == 0 || c.type != GL_T_CLIENT ||
		    gl_rec_expired(&c, now, g->retry_window, g->lifetime))
			c = (gl_rec){.type = GL_T_CLIENT, .first_seen = now, .last_seen = now};
	}
	r = g->ops->get(g->st, tkey, tkl, &t);
	if (r < 0)
		goto fail;
	if (r == 0 || (t.type != GL_T_PENDING && t.type != GL_T_PASSED) ||
	    gl_rec_expired(&t, now, g->retry_window, g->lifetime) || t.first_seen > now + 86400) {
		/* new (or forgotten) triplet */
		t = (gl_rec){.type = GL_T_PENDING, .first_seen = now, .last_seen = now};
		if (g->ops->put(g->st, tkey, tkl, &t) != 0)
			goto fail;
		defer = 1;
		remaining = g->delay;
	} else if (t.type == GL_T_PENDING && now - t.first_seen < g->delay) {
		defer = 1; /* early retry: nothing to write */
		remaining = g->delay - (long)(now - t.first_seen);
		if (remaining > g->delay) /* the clock went back a little */
			remaining = g->delay;
	} else {
		if (t.type == GL_T_PENDING) { /* first retry after the delay */
			t.type = GL_T_PASSED;
			t.passed_at = now;
			passed_now = 1;
			delayed = (long)(now - t.first_seen);
		}
		count_delivery = recent_claim(addr, instance_id, RECENT_COUNTED, (time_t)now);
		if (passed_now || count_delivery || now - t.last_seen >= 3600) {
			t.last_seen = now;
			if (t.count < UINT32_MAX)
				t.count++;
			if (g->ops->put(g->st, tkey, tkl, &t) != 0)
				goto fail;
		}
		if (ckl && count_delivery) {
			c.count++;
			c.last_seen = now;
			if (c.count >= (uint32_t)g->auto_whitelist && !c.passed_at)
				c.passed_at = now; /* whitelisted from now on (shown by the admin command) */
			if (g->ops->put(g->st, ckey, ckl, &c) != 0)
				goto fail;
		}
	}
	g->ops->end(g->st);

decided:
	if (defer) {
		char text[PD_REPLY_MAX];

		expand_text(g->text, remaining, g->delay, rcpt, text, sizeof(text));
		h->reply(reply, "%s %s", g->action, text);
		if (inst->verbose)
			h->log(inst, PD_LOG_INFO, "defer: client %s, %ld seconds left", net, remaining);
		return PD_CHECK_OK;
	}
	if (passed_now && g->add_header &&
	    recent_claim(addr, instance_id, RECENT_HEADER, (time_t)now)) {
		char date[64];

		rfc5322_date((time_t)now, date, sizeof(date));
		h->reply(reply, "PREPEND X-Greylist: delayed %ld seconds by policyd at %s; %s", delayed,
			 g->hostname, date);
	}
	if (inst->verbose)
		h->log(inst, PD_LOG_INFO, "pass: client %s%s", net, passed_now ? " (retried after the delay)" : "");
	return PD_CHECK_OK;
fail:
	g->ops->end(g->st);
	return PD_CHECK_ERROR;
}

const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "greylist",
    .version = "2.0",
    .description = "greylisting of (client network, sender, recipient) triplets on GDBM or Redis",
    .flags = PD_PLUGIN_SKIP_SASL,
    .default_states = "RCPT",
    .options = gl_options,
    .validate = gl_validate_section, /* the section as a whole, with file:line in errors (options.c) */
    .init = gl_init,
    .check = gl_check,
    .fini = gl_fini,
};
