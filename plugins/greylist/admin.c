/* admin.c - policyd-greylist: list, count, delete and purge greylist entries, also while policyd runs */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "gl.h"

#include <ctype.h>
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

/* Settings taken from policyd.conf (or defaults) that decide keys and expiry. */
typedef struct admin_conf {
	char dbpath[PATH_MAX];
	gl_keyconf kc;
	int have_key;
	long retry_window, lifetime;
	int redis;         /* backend = "redis" in the config */
	gl_redis_conf rc;  /* its settings */
} admin_conf;

static int verbose;

/* admin_log - the store's messages go to stderr */
static void admin_log(void *ctx, int level, const char *fmt, ...)
{
	va_list ap;

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
	fputs("usage: policyd-greylist [-c policyd.conf] [-d database] [-v] command [arguments]\n"
	      "commands:\n"
	      "  list                         every entry, one a line\n"
	      "  stats                        counts: greylisted, passed, clients, auto-whitelisted\n"
	      "  delete ADDRESS SENDER RECIPIENT   forget one triplet (\"\" for the null sender)\n"
	      "  delete-client ADDRESS        forget a client network: its triplets and its\n"
	      "                               auto-whitelist record\n"
	      "  purge                        remove expired entries now\n",
	      stderr);
	exit(2);
}

/* skip_space - skip blanks and libconfuse comments (#, //, slash-star) */
static const char *skip_space(const char *p, const char *end)
{
	while (p < end) {
		if (isspace((unsigned char)*p)) {
			p++;
		} else if (*p == '#' || (*p == '/' && p + 1 < end && p[1] == '/')) {
			while (p < end && *p != '\n')
				p++;
		} else if (*p == '/' && p + 1 < end && p[1] == '*') {
			const char *q = p + 2;

			while (q + 1 < end && !(q[0] == '*' && q[1] == '/'))
				q++;
			p = q + 2 < end ? q + 2 : end;
		} else {
			break;
		}
	}
	return p;
}

/* skip_string - past a quoted string starting at P */
static const char *skip_string(const char *p, const char *end)
{
	char q = *p++;

	while (p < end && *p != q) {
		if (*p == '\\' && p + 1 < end)
			p++;
		p++;
	}
	return p < end ? p + 1 : end;
}

/* find_top - the top-level "greylist { ... }" body and state_dir value of a policyd.conf text */
static int find_top(const char *text, size_t len, char **section, char *state_dir, size_t sdsz)
{
	const char *p = text, *end = text + len;
	int depth = 0;

	*section = NULL;
	while ((p = skip_space(p, end)) < end) {
		if (*p == '"' || *p == '\'') {
			p = skip_string(p, end);
		} else if (*p == '{') {
			depth++;
			p++;
		} else if (*p == '}') {
			depth--;
			p++;
		} else if (isalpha((unsigned char)*p) || *p == '_') {
			const char *w = p;
			size_t wl;

			while (p < end && (isalnum((unsigned char)*p) || *p == '_' || *p == '-'))
				p++;
			wl = (size_t)(p - w);
			if (depth != 0)
				continue;
			p = skip_space(p, end);
			if (wl == 8 && !strncmp(w, "greylist", 8) && p < end && *p == '{') {
				const char *b = ++p, *close = NULL;
				int d = 1;

				while (!close && (p = skip_space(p, end)) < end) {
					if (*p == '"' || *p == '\'') {
						p = skip_string(p, end);
					} else {
						d += *p == '{' ? 1 : *p == '}' ? -1 : 0;
						if (d == 0)
							close = p;
						p++;
					}
				}
				if (!close)
					return -1;
				*section = strndup(b, (size_t)(close - b));
			} else if (wl == 9 && !strncmp(w, "state_dir", 9) && p < end && *p == '=') {
				p = skip_space(p + 1, end);
				if (p < end && *p == '"') {
					const char *s = p + 1, *e = skip_string(p, end) - 1;

					snprintf(state_dir, sdsz, "%.*s", (int)(e - s), s);
					p = e + 1;
				}
			}
		} else {
			p++;
		}
	}
	return 0;
}

/* read_conf - take the greylist settings from policyd.conf; -1 after a message */
static int read_conf(const char *file, admin_conf *ac, const char *dbopt)
{
	FILE *f = fopen(file, "r");
	char *text, *section = NULL, sd[PATH_MAX] = "", base[PATH_MAX];
	size_t n, nopt = 0;
	cfg_opt_t *opts;
	cfg_t *cfg;
	const char *slash;
	int rc = -1;

	if (!f) {
		fprintf(stderr, "policyd-greylist: %s: %s\n", file, strerror(errno));
		return -1;
	}
	text = malloc(1 << 20);
	n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (!text)
		return -1;
	text[n] = 0;
	if (find_top(text, n, &section, sd, sizeof(sd)) != 0) {
		fprintf(stderr, "policyd-greylist: %s: unbalanced braces\n", file);
		free(text);
		return -1;
	}
	free(text);
	slash = strrchr(file, '/');
	snprintf(base, sizeof(base), "%.*s", slash ? (int)(slash - file) : 1, slash ? file : ".");
	if (!sd[0])
		snprintf(sd, sizeof(sd), "%s", PD_STATE_DIR);
	else if (sd[0] != '/') {
		char t[PATH_MAX];

		if (snprintf(t, sizeof(t), "%s/%s", base, sd) >= (int)sizeof(t)) {
			fprintf(stderr, "policyd-greylist: state_dir: path too long\n");
			free(section);
			return -1;
		}
		memcpy(sd, t, sizeof(sd));
	}
	while (gl_options[nopt].name)
		nopt++;
	opts = calloc(nopt + 6, sizeof(*opts));
	if (!opts) {
		free(section);
		return -1;
	}
	memcpy(opts, gl_options, nopt * sizeof(*opts));
	/* the core's filter options of every plugin section, and anything newer */
	opts[nopt++] = (cfg_opt_t)CFG_STR_LIST("protocol_state", "{}", CFGF_NONE);
	opts[nopt++] = (cfg_opt_t)CFG_BOOL("skip_sasl", cfg_true, CFGF_NONE);
	opts[nopt++] = (cfg_opt_t)CFG_STR_LIST("skip_networks", "{}", CFGF_NONE);
	opts[nopt++] = (cfg_opt_t)CFG_BOOL("optional", cfg_false, CFGF_NONE);
	opts[nopt++] = (cfg_opt_t)CFG_STR("__unknown", NULL, CFGF_NONE);
	opts[nopt] = (cfg_opt_t)CFG_END();
	cfg = cfg_init(opts, CFGF_IGNORE_UNKNOWN);
	if (!cfg || cfg_parse_buf(cfg, section ? section : "") != CFG_SUCCESS) {
		fprintf(stderr, "policyd-greylist: %s: cannot parse the greylist section\n", file);
		goto out;
	}
	ac->kc.ipv4_prefix = (int)cfg_getint(cfg, "ipv4_prefix");
	ac->kc.ipv6_prefix = (int)cfg_getint(cfg, "ipv6_prefix");
	ac->kc.normalise_sender = cfg_getbool(cfg, "normalise_sender");
	ac->kc.privacy = cfg_getbool(cfg, "privacy");
	ac->retry_window = cfg_getint(cfg, "retry_window");
	ac->lifetime = cfg_getint(cfg, "lifetime");
	if (!dbopt) {
		const char *db = cfg_getstr(cfg, "database");

		if (db[0] == '/')
			snprintf(ac->dbpath, sizeof(ac->dbpath), "%s", db);
		else
			if (snprintf(ac->dbpath, sizeof(ac->dbpath), "%s/%s", sd, db) >=
			    (int)sizeof(ac->dbpath)) {
				fprintf(stderr, "policyd-greylist: database: path too long\n");
				goto out;
			}
	}
	if (*cfg_getstr(cfg, "hash_key")) {
		gl_key_from_secret(cfg_getstr(cfg, "hash_key"), ac->kc.hash_key);
		ac->have_key = 1;
	}
	if (!dbopt && !strcmp(cfg_getstr(cfg, "backend"), "redis")) {
		char err[400];

		if (gl_redis_conf_get(cfg, &ac->rc, err, sizeof(err)) != 0) {
			fprintf(stderr, "policyd-greylist: %s: %s\n", file, err);
			goto out;
		}
		if (ac->kc.privacy && !ac->have_key) {
			fprintf(stderr, "policyd-greylist: %s: privacy with redis needs hash_key\n", file);
			goto out;
		}
		ac->redis = 1;
	}
	rc = 0;
out:
	if (cfg)
		cfg_free(cfg);
	free(opts);
	free(section);
	return rc;
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

/* type_name - what a record means for the admin */
static const char *type_name(const admin_conf *ac, const gl_rec *r)
{
	if (r->type == GL_T_PENDING)
		return "greylisted";
	if (r->type == GL_T_PASSED)
		return "passed";
	if (r->passed_at) /* set by the plugin when the count reached auto_whitelist */
		return "auto-whitelisted";
	return "client";
}

/* list_one - print one record */
static int list_one(void *arg, const unsigned char *key, size_t klen, const gl_rec *rec)
{
	const admin_conf *ac = arg;
	char k[GL_KEY_MAX * 2 + 8], a[32], b[32];

	if (rec->type == GL_T_META)
		return 0;
	gl_describe_key(key, klen, k, sizeof(k));
	printf("%-16s first=%s last=%s count=%u  %s\n", type_name(ac, rec),
	       fmt_time(rec->first_seen, a, sizeof(a)), fmt_time(rec->last_seen, b, sizeof(b)),
	       rec->count, k);
	return 0;
}

typedef struct stats {
	const admin_conf *ac;
	long greylisted, passed, clients, awl;
} stats;

/* count_one - tally one record */
static int count_one(void *arg, const unsigned char *key, size_t klen, const gl_rec *rec)
{
	stats *s = arg;

	if (rec->type == GL_T_PENDING)
		s->greylisted++;
	else if (rec->type == GL_T_PASSED)
		s->passed++;
	else if (rec->type == GL_T_CLIENT) {
		s->clients++;
		if (rec->passed_at)
			s->awl++;
	}
	return 0;
}

typedef struct prefix_del {
	unsigned char p[GL_KEY_MAX];
	size_t pl;
} prefix_del;

/* del_prefix - iterate callback: delete records whose key starts with the client prefix */
static int del_prefix(void *arg, const unsigned char *key, size_t klen, const gl_rec *rec)
{
	prefix_del *d = arg;

	return klen >= d->pl && memcmp(key, d->p, d->pl) == 0;
}

typedef struct purge_ctx {
	const admin_conf *ac;
	int64_t now;
} purge_ctx;

/* purge_one - iterate callback: delete expired records */
static int purge_one(void *arg, const unsigned char *key, size_t klen, const gl_rec *rec)
{
	purge_ctx *p = arg;

	return gl_rec_expired(rec, p->now, p->ac->retry_window, p->ac->lifetime);
}

/* client_net - the network key part of ADDRESS under the configured prefixes */
static void client_net(const admin_conf *ac, const char *addr, char *net, size_t sz)
{
	if (gl_client_net(&ac->kc, addr, net, sz) != 0)
		gl_fold_addr(addr, net, sz < 64 ? sz : 64);
}

/* need_key - privacy keys need the secret: hash_key from -c, or DBFILE.key */
static int need_key(admin_conf *ac)
{
	char kp[PATH_MAX + 8], err[PATH_MAX + 100];

	if (!ac->kc.privacy || ac->have_key)
		return 0;
	snprintf(kp, sizeof(kp), "%s.key", ac->dbpath);
	if (gl_key_file(kp, 0, ac->kc.hash_key, err, sizeof(err)) != 0) {
		fprintf(stderr, "policyd-greylist: privacy is on but %s\n", err);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	admin_conf ac = {.kc = {.ipv4_prefix = 24, .ipv6_prefix = 64, .normalise_sender = 1},
			 .retry_window = 2 * 86400, .lifetime = 35 * 86400};
	const gl_store_ops *ops = &gl_store_gdbm;
	const char *conf = NULL, *db = NULL, *cmd;
	gl_logger lg = {admin_log, NULL};
	gl_store *st;
	int c, rc = 0;

	while ((c = getopt(argc, argv, "c:d:vh")) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 'd': db = optarg; break;
		case 'v': verbose++; break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	cmd = argv[optind++];
	snprintf(ac.dbpath, sizeof(ac.dbpath), "%s/greylist.db", PD_STATE_DIR);
	if (conf && read_conf(conf, &ac, db) != 0)
		return 3;
	if (db)
		snprintf(ac.dbpath, sizeof(ac.dbpath), "%s", db);
	if (!conf) { /* without policyd.conf: privacy is on when its key file exists */
		char kp[PATH_MAX + 8];

		snprintf(kp, sizeof(kp), "%s.key", ac.dbpath);
		ac.kc.privacy = access(kp, F_OK) == 0;
	}

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
	if (ac.redis) {
#ifdef HAVE_HIREDIS
		if (!strcmp(cmd, "purge")) {
			printf("purged: 0 (nothing to do: Redis expires entries by their TTL)\n");
			return 0;
		}
		ops = &gl_store_redis;
		st = gl_redis_open(&ac.rc, &lg);
#else
		fprintf(stderr, "policyd-greylist: backend \"redis\": built without hiredis\n");
		return 3;
#endif
	} else {
		if (access(ac.dbpath, F_OK) != 0) {
			fprintf(stderr, "policyd-greylist: %s: %s\n", ac.dbpath, strerror(errno));
			return 3;
		}
		/* never create files (they would belong to the wrong user) nor move any aside */
		st = ops->open(ac.dbpath, GL_STORE_NOCREATE, &lg);
	}
	if (!st)
		return 3;

	if (!strcmp(cmd, "list")) {
		if (ops->iterate(st, 100, list_one, &ac, NULL) < 0)
			rc = 3;
	} else if (!strcmp(cmd, "stats")) {
		stats s = {.ac = &ac};

		if (ops->iterate(st, 500, count_one, &s, NULL) < 0)
			rc = 3;
		else
			printf("greylisted: %ld\npassed: %ld\nclients: %ld\nauto-whitelisted: %ld\n",
			       s.greylisted, s.passed, s.clients, s.awl);
	} else if (!strcmp(cmd, "purge")) {
		purge_ctx p = {&ac, (int64_t)time(NULL)};
		long deleted = 0;

		if (ops->iterate(st, 200, purge_one, &p, &deleted) < 0)
			rc = 3;
		else
			printf("purged: %ld\n", deleted);
	} else if (!strcmp(cmd, "delete")) {
		char net[80], sender[GL_ADDR_MAX + 1], rcpt[GL_ADDR_MAX + 1];
		unsigned char key[GL_KEY_MAX];
		size_t kl;
		gl_rec r;
		int found = 0;

		if (need_key(&ac) != 0) {
			ops->close(st);
			return 3;
		}
		client_net(&ac, argv[optind], net, sizeof(net));
		gl_norm_sender(&ac.kc, argv[optind + 1], sender, sizeof(sender));
		gl_fold_addr(argv[optind + 2], rcpt, sizeof(rcpt));
		kl = gl_triplet_key(&ac.kc, net, sender, rcpt, key, sizeof(key));
		if (!kl || ops->begin(st) != 0) {
			rc = 3;
		} else {
			found = ops->get(st, key, kl, &r);
			if (found == 1 && ops->del(st, key, kl) != 0)
				rc = 3;
			ops->end(st);
			if (found < 0)
				rc = 3;
			else if (!rc) {
				printf("%s: %s <%s> <%s>\n", found ? "deleted" : "not found", net, sender, rcpt);
				rc = found ? 0 : 1;
			}
		}
	} else { /* delete-client */
		char net[80];
		unsigned char key[GL_KEY_MAX];
		size_t kl;
		prefix_del d;
		long deleted = 0;

		if (need_key(&ac) != 0) {
			ops->close(st);
			return 3;
		}
		client_net(&ac, argv[optind], net, sizeof(net));
		kl = gl_client_key(&ac.kc, net, key, sizeof(key));
		d.pl = gl_client_prefix(&ac.kc, net, d.p, sizeof(d.p));
		if (!kl || !d.pl || ops->begin(st) != 0) {
			rc = 3;
		} else {
			gl_rec r;
			int found = ops->get(st, key, kl, &r);

			if (found == 1 && ops->del(st, key, kl) != 0)
				found = -1;
			ops->end(st);
			if (found < 0 || ops->iterate(st, 200, del_prefix, &d, &deleted) < 0)
				rc = 3;
			else
				printf("deleted: %ld records of %s\n", deleted + (found == 1), net);
		}
	}
	ops->close(st);
	return rc;
}
