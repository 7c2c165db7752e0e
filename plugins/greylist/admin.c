/* admin.c - policyd-greylist: list, count, delete greylist entries on the state service, also while policyd runs */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The greylist plugin keeps its records in the core's state service (the
 * instance's namespace, "greylist" or the name of greylist "NAME" { }).
 * This command finds them as policyd-state does: the instance's store from
 * policyd.conf (-c; store sections and the store settings of the greylist
 * section itself), or a local state file given with -d. It decodes the
 * plugin's records (keys and settings from the greylist section) where
 * policyd-state shows bytes; every key printed is escaped.
 */
#include "config.h"
#include "gl.h"

#include "chain.h"
#include "conf.h"
#include "conf_store.h"
#include "escape.h"
#include "loader.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef PD_STATE_DIR
#define PD_STATE_DIR "/var/lib/policyd"
#endif

/* What the command needs to know of the instance. */
typedef struct admin_conf {
	char ns[PD_STORE_NS_MAX + 1]; /* the instance: its namespace */
	char keypath[PATH_MAX];      /* privacy key file (database + ".key") */
	gl_keyconf kc;
	int have_key;
	int awl4, awl6;
} admin_conf;

static int verbose;

/* admin_log - the store's messages go to stderr */
static void admin_log(void *ctx, int level, const char *fmt, ...)
{
	va_list ap;

	(void)ctx;
	if (level > 5 && !verbose)
		return;
	fputs("policyd-greylist: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* usage - print the synopsis; exit 2 */
static void usage(void)
{
	fputs("usage: policyd-greylist [-c policyd.conf] [-d state.db] [-i instance] [-v] command [arguments]\n"
	      "commands:\n"
	      "  list                         every entry, one a line\n"
	      "  stats                        counts: greylisted, passed, clients, auto-whitelisted\n"
	      "  delete ADDRESS SENDER RECIPIENT   forget one triplet (\"\" for the null sender)\n"
	      "  delete-client ADDRESS        forget a client: the triplets of its network and the\n"
	      "                               auto-whitelist record of its address\n"
	      "  purge                        remove expired entries now (local store)\n",
	      stderr);
	exit(2);
}

/* fmt_time - "2026-11-23 22:13:13" (UTC) */
static const char *fmt_time(int64_t t, char *buf, size_t sz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, sz, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

/* keys of the namespace, collected by a scan (the store is not held while they are read) */
typedef struct keys {
	char **k;
	size_t n, cap;
} keys;

static int collect(void *arg, const pd_store_entry *e)
{
	keys *ks = arg;

	if (e->kind != PD_STORE_VALUE)
		return 0;
	if (ks->n == ks->cap) {
		size_t cap = ks->cap ? 2 * ks->cap : 256;
		char **k = realloc(ks->k, cap * sizeof(*k));

		if (!k)
			return 1;
		ks->k = k;
		ks->cap = cap;
	}
	ks->k[ks->n] = strdup(e->key);
	if (ks->k[ks->n])
		ks->n++;
	return 0;
}

static void keys_free(keys *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		free(ks->k[i]);
	free(ks->k);
}

/* type_name - what a record means for the admin */
static const char *type_name(const gl_rec *r)
{
	if (r->type == GL_T_PENDING)
		return "greylisted";
	if (r->type == GL_T_PASSED)
		return "passed";
	if (r->passed_at) /* set when the count reached auto_whitelist */
		return "auto-whitelisted";
	return "client";
}

/* get_rec - KEY's record now: 1, 0 (gone or not one of ours), -1 error */
static int get_rec(pd_store *s, const admin_conf *ac, const char *key, gl_rec *r)
{
	pd_store_val v;
	int got = pd_store_get(s, ac->ns, key, (int64_t)time(NULL), &v);

	if (got != 1)
		return got;
	got = gl_rec_decode(v.data, v.len, r) == 0 ? 1 : 0;
	free(v.data);
	return got;
}

/* need_key - privacy keys need the secret: hash_key from -c, or DATABASE.key */
static int need_key(admin_conf *ac)
{
	char err[PATH_MAX + 100];

	if (!ac->kc.privacy || ac->have_key)
		return 0;
	if (gl_key_file(ac->keypath, 0, ac->kc.hash_key, err, sizeof(err)) != 0) {
		fprintf(stderr, "policyd-greylist: privacy is on but %s\n", err);
		return -1;
	}
	return 0;
}

/* from_section - key settings of the greylist section SEC (state dir SD) */
static void from_section(admin_conf *ac, cfg_t *sec, const char *sd)
{
	const char *db = cfg_getstr(sec, "database");

	ac->kc.ipv4_prefix = (int)cfg_getint(sec, "ipv4_prefix");
	ac->kc.ipv6_prefix = (int)cfg_getint(sec, "ipv6_prefix");
	ac->kc.normalise_sender = cfg_getbool(sec, "normalise_sender");
	ac->kc.privacy = cfg_getbool(sec, "privacy");
	ac->awl4 = (int)cfg_getint(sec, "auto_whitelist_ipv4_prefix");
	ac->awl6 = (int)cfg_getint(sec, "auto_whitelist_ipv6_prefix");
	if (*cfg_getstr(sec, "hash_key")) {
		gl_key_from_secret(cfg_getstr(sec, "hash_key"), ac->kc.hash_key);
		ac->have_key = 1;
	}
	if (db[0] == '/')
		snprintf(ac->keypath, sizeof(ac->keypath), "%s.key", db);
	else
		snprintf(ac->keypath, sizeof(ac->keypath), "%s/%s.key", sd, db);
}

/* open_conf - the store of greylist instance AC->ns configured in FILE; NULL after saying why */
static pd_store *open_conf(const char *file, admin_conf *ac, pd_conf **cp)
{
	pd_conf *c;
	pd_inst *in = NULL;
	pd_store_conf sc;
	char err[512];
	pd_store *s;

	pd_log_open("policyd-greylist", pd_log_facility("mail"), 1, verbose);
	pd_log_set_socket(""); /* errors on stderr only */
	if (pd_loader_init() < 0)
		return NULL;
	c = pd_conf_load(file, 0); /* the plugins are loaded for their sections, never started */
	if (!c)
		return NULL;
	*cp = c;
	for (size_t i = 0; i < c->n_insts; i++)
		if (!strcmp(c->insts[i]->name, ac->ns) && !strcmp(c->insts[i]->mod->desc->name, "greylist"))
			in = c->insts[i];
	if (!in || !in->store) {
		fprintf(stderr, "policyd-greylist: %s has no greylist instance \"%s\"\n", file, ac->ns);
		return NULL;
	}
	from_section(ac, in->pub.cfg, c->state_dir);
	sc = in->store->sc;
	sc.flags = PD_STORE_NOCREATE; /* never create a file nor move one aside */
	sc.lock_timeout_ms = 10000;
	sc.log = admin_log;
	if (sc.path && (!sc.backend || !strcmp(sc.backend, "gdbm")) && access(sc.path, F_OK) != 0) {
		fprintf(stderr, "policyd-greylist: %s: %s\n", sc.path, strerror(errno));
		return NULL;
	}
	s = pd_store_open(&sc, err, sizeof(err));
	if (!s)
		fprintf(stderr, "policyd-greylist: store \"%s\": %s\n", in->store->name, err);
	return s;
}

/* open_file - the local state file PATH (the daemon's default: STATE_DIR/state.db). PATH
 * STATE_DIR/greylist.db, the plugin's own file before the state service (the README and
 * quickstart print that command), means the state file beside it, where its triplets went. */
static pd_store *open_file(const char *path, admin_conf *ac)
{
	pd_store_conf sc = {.backend = "gdbm", .path = path, .flags = PD_STORE_NOCREATE,
			    .lock_timeout_ms = 10000, .log = admin_log};
	char err[512], dir[PATH_MAX - 32], state[PATH_MAX];
	const char *slash = strrchr(path, '/');
	pd_store *s;

	if (!strcmp(slash ? slash + 1 : path, "greylist.db")) {
		snprintf(state, sizeof(state), "%.*sstate.db", slash ? (int)(slash + 1 - path) : 0, path);
		if (verbose)
			fprintf(stderr, "policyd-greylist: %s: the greylist's state is in %s now\n", path, state);
		sc.path = path = state;
		slash = strrchr(path, '/');
	}

	if (access(path, F_OK) != 0) {
		fprintf(stderr, "policyd-greylist: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	/* without policyd.conf: the defaults; privacy is on when its key file exists */
	if (snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".") >= (int)sizeof(dir)) {
		fprintf(stderr, "policyd-greylist: %s: path too long\n", path);
		return NULL;
	}
	snprintf(ac->keypath, sizeof(ac->keypath), "%s/greylist.db.key", dir);
	ac->kc.privacy = access(ac->keypath, F_OK) == 0;
	s = pd_store_open(&sc, err, sizeof(err));
	if (!s)
		fprintf(stderr, "policyd-greylist: %s\n", err);
	return s;
}

/* addr_net - the network of ADDRESS for triplets (BITS4/6 0: the triplets' own prefixes) */
static void addr_net(const admin_conf *ac, const char *addr, int awl, char *net, size_t sz)
{
	int r = awl ? gl_addr_net(addr, ac->awl4, ac->awl6, net, sz) : gl_client_net(&ac->kc, addr, net, sz);

	if (r != 0)
		gl_fold_addr(addr, net, sz < 64 ? sz : 64);
}

int main(int argc, char **argv)
{
	admin_conf ac = {.ns = "greylist", .kc = {.ipv4_prefix = 24, .ipv6_prefix = 64, .normalise_sender = 1},
			 .awl4 = 32, .awl6 = 128};
	const char *conf = NULL, *db = NULL, *cmd;
	pd_conf *pc = NULL;
	pd_store *st;
	keys ks = {0};
	int c, rc = 0;

	while ((c = getopt(argc, argv, "c:d:i:vh")) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 'd': db = optarg; break;
		case 'i': snprintf(ac.ns, sizeof(ac.ns), "%s", optarg); break;
		case 'v': verbose++; break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	cmd = argv[optind++];
	if (!strcmp(cmd, "list") || !strcmp(cmd, "stats") || !strcmp(cmd, "purge")) {
		if (optind != argc)
			usage();
	} else if (!strcmp(cmd, "delete")) {
		if (argc - optind != 3)
			usage();
	} else if (!strcmp(cmd, "delete-client")) {
		if (argc - optind != 1)
			usage();
	} else {
		usage();
	}
	if (db)
		st = open_file(db, &ac);
	else
		st = open_conf(conf ? conf : PD_SYSCONFDIR "/policyd.conf", &ac, &pc);
	if (!st) {
		if (pc)
			pd_conf_free(pc);
		return 3;
	}
	if (!strcmp(cmd, "list") || !strcmp(cmd, "stats") || !strcmp(cmd, "delete-client")) {
		if (pd_store_scan(st, ac.ns, (int64_t)time(NULL), collect, &ks) < 0)
			rc = 3;
	}
	if (rc) {
		/* the scan failed: said by the store */
	} else if (!strcmp(cmd, "list")) {
		for (size_t i = 0; i < ks.n && !rc; i++) {
			char k[GL_KEY_MAX * 4 + 8], a[32], b[32];
			gl_rec r;
			int got = get_rec(st, &ac, ks.k[i], &r);

			if (got < 0)
				rc = 3;
			if (got != 1)
				continue;
			pd_esc(k, sizeof(k), ks.k[i] + 2 * (ks.k[i][0] && ks.k[i][1] == ':'), strlen(ks.k[i]), 0);
			printf("%-16s first=%s last=%s count=%u  %s\n", type_name(&r), fmt_time(r.first_seen, a, sizeof(a)),
			       fmt_time(r.last_seen, b, sizeof(b)), r.count, k);
		}
	} else if (!strcmp(cmd, "stats")) {
		long greylisted = 0, passed = 0, clients = 0, awl = 0;

		for (size_t i = 0; i < ks.n && !rc; i++) {
			gl_rec r;
			int got = get_rec(st, &ac, ks.k[i], &r);

			if (got < 0)
				rc = 3;
			else if (got == 1) {
				greylisted += r.type == GL_T_PENDING;
				passed += r.type == GL_T_PASSED;
				clients += r.type == GL_T_CLIENT;
				awl += r.type == GL_T_CLIENT && r.passed_at;
			}
		}
		if (!rc)
			printf("greylisted: %ld\npassed: %ld\nclients: %ld\nauto-whitelisted: %ld\n", greylisted, passed,
			       clients, awl);
	} else if (!strcmp(cmd, "purge")) {
		long deleted = 0, r;
		int done = 0;

		for (int i = 0; i < 1000000 && !done; i++) { /* bounded: 200 entries a step */
			r = pd_store_expire(st, (int64_t)time(NULL), 200, &done);
			if (r < 0) {
				rc = 3;
				break;
			}
			deleted += r;
		}
		if (!rc)
			printf("purged: %ld%s\n", deleted,
			       pd_store_remote(st) ? " (nothing to do: Redis expires entries by their TTL)" : "");
	} else if (!strcmp(cmd, "delete")) {
		char net[80], sender[GL_ADDR_MAX + 1], rcpt[GL_ADDR_MAX + 1], key[GL_KEY_MAX + 1];
		char es[GL_ADDR_MAX * 4 + 1], er[GL_ADDR_MAX * 4 + 1];
		int found;

		if (need_key(&ac) != 0) {
			rc = 3;
			goto out;
		}
		addr_net(&ac, argv[optind], 0, net, sizeof(net));
		gl_norm_sender(&ac.kc, argv[optind + 1], sender, sizeof(sender));
		gl_fold_addr(argv[optind + 2], rcpt, sizeof(rcpt));
		if (!gl_triplet_key(&ac.kc, net, sender, rcpt, key, sizeof(key))) {
			rc = 3;
			goto out;
		}
		found = pd_store_delete(st, ac.ns, PD_STORE_VALUE, key);
		pd_esc(es, sizeof(es), sender, strlen(sender), 0);
		pd_esc(er, sizeof(er), rcpt, strlen(rcpt), 0);
		if (found < 0)
			rc = 3;
		else {
			printf("%s: %s <%s> <%s>\n", found ? "deleted" : "not found", net, es, er);
			rc = found ? 0 : 1;
		}
	} else { /* delete-client */
		char net[80], who[80], pre[GL_KEY_MAX + 1], ck[GL_KEY_MAX + 1];
		size_t pl;
		long deleted = 0;
		int r;

		if (need_key(&ac) != 0) {
			rc = 3;
			goto out;
		}
		addr_net(&ac, argv[optind], 0, net, sizeof(net));
		addr_net(&ac, argv[optind], 1, who, sizeof(who));
		pl = gl_client_prefix(&ac.kc, net, pre, sizeof(pre));
		if (!pl || !gl_client_key(&ac.kc, who, ck, sizeof(ck))) {
			rc = 3;
			goto out;
		}
		for (size_t i = 0; i < ks.n && !rc; i++)
			if (!strncmp(ks.k[i], pre, pl) || !strcmp(ks.k[i], ck)) {
				r = pd_store_delete(st, ac.ns, PD_STORE_VALUE, ks.k[i]);
				if (r < 0)
					rc = 3;
				deleted += r == 1;
			}
		if (!rc)
			printf("deleted: %ld records of %s\n", deleted, net);
	}
out:
	keys_free(&ks);
	pd_store_close(st);
	if (pc)
		pd_conf_free(pc);
	return rc;
}
