/* state_cmd.c - policyd-state: list, show and delete the state service's entries, also while policyd runs */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * The stores come from policyd.conf (its store sections, as the daemon
 * reads them); the entries from the store library, on either backend, while
 * the daemon keeps working on the same file or server (GDBM: short holds
 * of the file's lock; Redis: SCAN). Keys are client data: every one printed
 * is escaped as \xHH where it is not printable.
 */
#include "config.h"
#include "conf.h"
#include "conf_store.h"
#include "escape.h"
#include "loader.h"
#include "log.h"
#include "store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int verbose;

/* usage - the command line */
static void usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: policyd-state [-c FILE] [-S STORE] [-v] COMMAND\n"
		"  list [INSTANCE]               every live entry (of one plugin instance)\n"
		"  count [INSTANCE]              entries per instance and kind\n"
		"  show INSTANCE KIND KEY        one entry (KIND: counter, value or members)\n"
		"  delete INSTANCE KIND KEY      delete one entry\n"
		"  -c FILE   policyd.conf (default %s/policyd.conf)\n"
		"  -S STORE  the store section to use (default \"default\")\n",
		PD_SYSCONFDIR);
	exit(rc);
}

/* cmd_log - the store's messages on stderr */
static void cmd_log(void *ctx, int level, const char *fmt, ...)
{
	va_list ap;

	(void)ctx;
	if (level > 5 && !verbose)
		return;
	fputs("policyd-state: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* kind_of - "counter", "value", "members" (or c, v, m) to the letter; 0 if unknown */
static int kind_of(const char *s)
{
	if (!strcmp(s, "counter") || !strcmp(s, "c"))
		return PD_STORE_COUNTER;
	if (!strcmp(s, "value") || !strcmp(s, "v"))
		return PD_STORE_VALUE;
	if (!strcmp(s, "members") || !strcmp(s, "m"))
		return PD_STORE_MEMBERS;
	return 0;
}

/* kind_name - the letter to its word */
static const char *kind_name(int k)
{
	return k == PD_STORE_COUNTER ? "counter" : k == PD_STORE_VALUE ? "value" : "members";
}

/* a listing's state */
typedef struct walk {
	const char *key; /* show: the one wanted */
	int kind;
	long found;
	struct {
		char ns[PD_STORE_NS_MAX + 1];
		long n[3];
	} per[256];
	size_t n_per;
} walk;

/* print_entry - one line: INSTANCE KIND KEY ttl=N CONTENT */
static int print_entry(void *arg, const pd_store_entry *e)
{
	walk *w = arg;
	char key[PD_STORE_KEY_MAX * 4 + 1];

	if (w->key && (e->kind != w->kind || strcmp(e->key, w->key) != 0))
		return 0;
	pd_esc(key, sizeof(key), e->key, strlen(e->key), PD_ESC_TOKEN);
	printf("%s %s %s ttl=%lld %s\n", e->ns, kind_name(e->kind), *key ? key : "\"\"", e->ttl, e->text);
	w->found++;
	return w->key ? 1 : 0;
}

/* count_entry - tally per namespace and kind */
static int count_entry(void *arg, const pd_store_entry *e)
{
	walk *w = arg;
	size_t i;
	int k = e->kind == PD_STORE_COUNTER ? 0 : e->kind == PD_STORE_VALUE ? 1 : 2;

	for (i = 0; i < w->n_per && strcmp(w->per[i].ns, e->ns) != 0; i++)
		;
	if (i == w->n_per) {
		if (w->n_per == sizeof(w->per) / sizeof(w->per[0]))
			return 0;
		snprintf(w->per[i].ns, sizeof(w->per[i].ns), "%s", e->ns);
		w->n_per++;
	}
	w->per[i].n[k]++;
	w->found++;
	return 0;
}

int main(int argc, char **argv)
{
	const char *file = PD_SYSCONFDIR "/policyd.conf", *store = PD_STORE_DEFAULT, *cmd;
	pd_conf_store *cs = NULL;
	pd_store_conf sc;
	pd_store *s;
	pd_conf *c;
	char err[512];
	walk w;
	int opt, rc = 0;
	long n;

	while ((opt = getopt(argc, argv, "c:S:vh")) != -1) {
		switch (opt) {
		case 'c':
			file = optarg;
			break;
		case 'S':
			store = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (optind >= argc)
		usage(2);
	cmd = argv[optind++];
	pd_log_open("policyd-state", pd_log_facility("mail"), 1, verbose);
	pd_log_set_socket(""); /* errors on stderr only */
	if (pd_loader_init() < 0)
		return 2;
	c = pd_conf_load(file, 0); /* the plugins are loaded for their sections, never started */
	if (!c)
		return 2;
	for (size_t i = 0; i < c->n_stores; i++)
		if (strcmp(c->stores[i]->name, store) == 0)
			cs = c->stores[i];
	if (!cs) {
		fprintf(stderr, "policyd-state: %s has no store \"%s\"\n", file, store);
		pd_conf_free(c);
		return 2;
	}
	sc = cs->sc;
	sc.flags = PD_STORE_NOCREATE; /* never create a file nor move one aside */
	sc.lock_timeout_ms = 10000;
	sc.log = cmd_log;
	s = pd_store_open(&sc, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "policyd-state: store \"%s\": %s\n", store, err);
		pd_conf_free(c);
		return 1;
	}
	memset(&w, 0, sizeof(w));
	if (!strcmp(cmd, "list") && argc - optind <= 1) {
		n = pd_store_scan(s, optind < argc ? argv[optind] : NULL, (int64_t)time(NULL), print_entry, &w);
		rc = n < 0 ? 1 : 0;
	} else if (!strcmp(cmd, "count") && argc - optind <= 1) {
		n = pd_store_scan(s, optind < argc ? argv[optind] : NULL, (int64_t)time(NULL), count_entry, &w);
		for (size_t i = 0; n >= 0 && i < w.n_per; i++)
			printf("%s counters=%ld values=%ld member_sets=%ld\n", w.per[i].ns, w.per[i].n[0], w.per[i].n[1],
			       w.per[i].n[2]);
		if (n >= 0)
			printf("total %ld\n", w.found);
		rc = n < 0 ? 1 : 0;
	} else if ((!strcmp(cmd, "show") || !strcmp(cmd, "delete")) && argc - optind == 3) {
		w.kind = kind_of(argv[optind + 1]);
		w.key = argv[optind + 2];
		if (!w.kind) {
			fprintf(stderr, "policyd-state: kind \"%s\": expected counter, value or members\n", argv[optind + 1]);
			rc = 2;
		} else if (!strcmp(cmd, "show")) {
			n = pd_store_scan(s, argv[optind], (int64_t)time(NULL), print_entry, &w);
			rc = n < 0 ? 1 : w.found ? 0 : 1;
			if (n >= 0 && !w.found)
				fprintf(stderr, "policyd-state: no live %s %s in %s\n", kind_name(w.kind), w.key, argv[optind]);
		} else {
			int r = pd_store_delete(s, argv[optind], w.kind, w.key);

			if (r == 1)
				printf("deleted %s %s %s\n", argv[optind], kind_name(w.kind), argv[optind + 2]);
			else if (r == 0)
				fprintf(stderr, "policyd-state: no %s %s in %s\n", kind_name(w.kind), w.key, argv[optind]);
			rc = r == 1 ? 0 : 1;
		}
	} else {
		pd_store_close(s);
		pd_conf_free(c);
		usage(2);
	}
	pd_store_close(s);
	pd_conf_free(c);
	return rc;
}
