/* access.c - the access plugin: lookup tables that decide on any request attribute (Postfix access(5) actions, score:+N) */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * access {
 *     table "clients" { attribute = "client_address" file = "/etc/policyd/access-clients" match = "cidr" }
 *     table "senders" { attribute = "sender" file = "/etc/policyd/access-senders" match = "exact" }
 * }
 * Each table is a lib/table of one kind (cidr, exact, suffix, regex) over
 * one attribute; the tables are asked in order and the first entry that
 * matches answers: its value is a Postfix access(5) action, sent as the
 * plugin's reply, or score:+N / score:-N, added to the request's score
 * (host->score_add) while the plugin answers DUNNO. Every value is checked
 * when its table loads. The tables are loaded by init and read-only after
 * it, so check() takes no lock and never waits (inst->blocking = 0). On
 * SIGHUP the core builds a new instance beside this one: its init reads
 * the files again, and if one is broken the init fails and the core keeps
 * the running configuration, tables and all. See policyd-access(5).
 */
#include "config.h"
#include "table.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <policyd/plugin.h>

#define ATTR_MAX 64     /* longest attribute name */
#define SCORE_MAX 1e6   /* largest |N| of score:+N */
#define LOG_VALUE 255   /* bytes of a looked-up value shown in a log line */

/* One table of a section: table "NAME" { attribute = ... file = ... match = ... } */
static cfg_opt_t table_opts[] = {
    CFG_STR("attribute", "", CFGF_NONE),
    CFG_STR("file", "", CFGF_NONE),
    CFG_STR("match", "", CFGF_NONE),
    CFG_END(),
};

static cfg_opt_t options[] = {
    CFG_SEC("table", table_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_END(),
};

/* one loaded table */
struct atable {
	char *name;      /* its title */
	char *attribute; /* the request attribute looked up */
	char *path;      /* the file, resolved */
	char *label;     /* score label: "INSTANCE:TABLE" */
	int null_sender; /* the attribute is "sender": its empty value is the null sender */
	pd_table *t;
};

/* per instance: the tables in order */
struct access {
	size_t n;
	struct atable *tab;
};

/* An action word of access(5) and whether it needs text after it. */
static const struct {
	const char *word;
	int arg; /* 1: text required, 0: optional, -1: none allowed */
} actions[] = {
    {"OK", -1},          {"DUNNO", -1},          {"REJECT", 0},       {"DEFER", 0},
    {"DEFER_IF_REJECT", 0}, {"DEFER_IF_PERMIT", 0}, {"BCC", 1},      {"DISCARD", 0},
    {"FILTER", 1},       {"HOLD", 0},            {"PREPEND", 1},      {"REDIRECT", 1},
    {"INFO", 0},         {"WARN", 0},
};

/* parse_score - "score:+N" or "score:-N" to N; 0, or -1 if V is not one */
static int parse_score(const char *v, double *out)
{
	char *end;
	double d;

	if (strncasecmp(v, "score:", 6) != 0)
		return -1;
	v += 6;
	if (*v != '+' && *v != '-')
		return -1;
	if (!isdigit((unsigned char)v[1]) && !(v[1] == '.' && isdigit((unsigned char)v[2])))
		return -1;
	errno = 0;
	d = strtod(v, &end);
	if (errno || *end || !isfinite(d) || fabs(d) > SCORE_MAX)
		return -1;
	*out = d;
	return 0;
}

/* is_score - does V start like a score value (so that its error says so) */
static int is_score(const char *v)
{
	return strncasecmp(v, "score:", 6) == 0;
}

/* check_value - a table value: an access(5) action or score:+N (lib/table calls it once per distinct value) */
static int check_value(const char *v, char *why, size_t whylen, void *arg)
{
	size_t w = strcspn(v, " \t");
	double d;

	(void)arg;
	if (is_score(v)) {
		if (parse_score(v, &d) == 0)
			return 0;
		snprintf(why, whylen, "\"%.60s\": a score is score:+N or score:-N (N a decimal number up to %g)", v,
			 SCORE_MAX);
		return -1;
	}
	if (strlen(v) > PD_REPLY_MAX) {
		snprintf(why, whylen, "action longer than %d bytes", PD_REPLY_MAX);
		return -1;
	}
	if (w == 3 && (v[0] == '4' || v[0] == '5') && isdigit((unsigned char)v[1]) && isdigit((unsigned char)v[2]))
		return 0; /* 4NN/5NN, with or without text */
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		if (strlen(actions[i].word) != w || strncasecmp(v, actions[i].word, w) != 0)
			continue;
		if (actions[i].arg < 0 && v[w]) {
			snprintf(why, whylen, "%s takes no text", actions[i].word);
			return -1;
		}
		if (actions[i].arg > 0 && !v[w]) {
			snprintf(why, whylen, "%s needs an argument", actions[i].word);
			return -1;
		}
		return 0;
	}
	snprintf(why, whylen,
		 "\"%.*s\" is not an action: expected OK, DUNNO, REJECT, DEFER, DEFER_IF_REJECT, DEFER_IF_PERMIT, "
		 "4NN or 5NN with text, BCC, DISCARD, FILTER, HOLD, PREPEND, REDIRECT, INFO, WARN, or score:+N",
		 (int)(w > 40 ? 40 : w), v);
	return -1;
}

/* valid_attribute - a request attribute name: letters, digits, '_', '-', '.' */
static int valid_attribute(const char *a)
{
	size_t n = strlen(a);

	return n > 0 && n <= ATTR_MAX &&
	       strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == n;
}

/* access_validate - every table has an attribute, a known match kind and a file */
static int access_validate(cfg_t *sec)
{
	unsigned n = cfg_size(sec, "table");

	if (n == 0) {
		cfg_error(sec, "access: no table; add table \"NAME\" { attribute = ... file = ... match = ... }");
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		cfg_t *t = cfg_getnsec(sec, "table", i);
		const char *attr = cfg_getstr(t, "attribute"), *file = cfg_getstr(t, "file");
		const char *match = cfg_getstr(t, "match");
		enum pd_table_kind kind;

		if (!valid_attribute(attr)) {
			cfg_error(t, "access: table \"%s\": attribute \"%.64s\": expected a request attribute name such "
				  "as client_address, sender, recipient, client_name", cfg_title(t), attr);
			return -1;
		}
		if (pd_table_kind_parse(match, &kind) < 0) {
			cfg_error(t, "access: table \"%s\": match \"%.32s\": expected cidr, exact, suffix or regex",
				  cfg_title(t), match);
			return -1;
		}
		if (!*file || strlen(file) >= PATH_MAX / 2) {
			cfg_error(t, "access: table \"%s\": file: give the table's file name", cfg_title(t));
			return -1;
		}
		if (file[0] != '/') { /* the daemon runs in "/": a relative path would surprise */
			cfg_error(t, "access: table \"%s\": file \"%s\": give an absolute path", cfg_title(t), file);
			return -1;
		}
	}
	return 0;
}

/* free_tables - everything an instance holds */
static void free_tables(struct access *ac)
{
	if (!ac)
		return;
	for (size_t i = 0; i < ac->n; i++) {
		pd_table_free(ac->tab[i].t);
		free(ac->tab[i].name);
		free(ac->tab[i].attribute);
		free(ac->tab[i].path);
		free(ac->tab[i].label);
	}
	free(ac->tab);
	free(ac);
}

/* elapsed - seconds since T0 (monotonic) */
static double elapsed(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* load_one - the table of section TSEC into AT; -1 after logging file:line */
static int load_one(pd_instance *inst, cfg_t *tsec, struct atable *at)
{
	const pd_host *h = inst->host;
	char err[PATH_MAX + 512];
	enum pd_table_kind kind;
	struct timespec t0;
	const char *first;
	size_t dups;

	at->name = strdup(cfg_title(tsec));
	at->attribute = strdup(cfg_getstr(tsec, "attribute"));
	if (!at->name || !at->attribute || pd_table_kind_parse(cfg_getstr(tsec, "match"), &kind) < 0) {
		h->log(inst, PD_LOG_ERR, "table \"%s\": out of memory or bad match kind", cfg_title(tsec));
		return -1;
	}
	at->null_sender = strcmp(at->attribute, "sender") == 0;
	if (!(at->path = strdup(cfg_getstr(tsec, "file")))) {
		h->log(inst, PD_LOG_ERR, "table \"%s\": out of memory", at->name);
		return -1;
	}
	at->label = malloc(strlen(inst->name) + strlen(at->name) + 2);
	at->t = pd_table_new(kind);
	if (!at->label || !at->t) {
		h->log(inst, PD_LOG_ERR, "table \"%s\": out of memory", at->name);
		return -1;
	}
	sprintf(at->label, "%s:%s", inst->name, at->name);
	pd_table_set_check(at->t, check_value, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (pd_table_load(at->t, at->path, 0, err, sizeof(err)) < 0) {
		h->log(inst, PD_LOG_ERR, "table \"%s\": %s", at->name, err);
		return -1;
	}
	h->log(inst, PD_LOG_INFO, "table \"%s\": %zu %s entries for %s from %s in %.2f s (%.1f MB)", at->name,
	       pd_table_size(at->t), pd_table_kind_name(kind), at->attribute, at->path, elapsed(&t0),
	       (double)pd_table_memory(at->t) / 1e6);
	if ((dups = pd_table_duplicates(at->t, &first)) > 0)
		h->log(inst, PD_LOG_WARNING, "table \"%s\": %zu duplicate key(s) ignored, the first entry wins; %s",
		       at->name, dups, first ? first : "");
	return 0;
}

/* access_init - load every table, in order; any error fails the init (on SIGHUP the old tables stay) */
static int access_init(pd_instance *inst)
{
	struct access *ac = calloc(1, sizeof(*ac));
	unsigned n = cfg_size(inst->cfg, "table");

	if (!ac || (n && !(ac->tab = calloc(n, sizeof(*ac->tab))))) {
		inst->host->log(inst, PD_LOG_ERR, "out of memory");
		free(ac);
		return -1;
	}
	if (n == 0) {
		inst->host->log(inst, PD_LOG_ERR, "no table configured");
		free_tables(ac);
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		ac->n = i + 1;
		if (load_one(inst, cfg_getnsec(inst->cfg, "table", i), &ac->tab[i]) < 0) {
			free_tables(ac);
			return -1;
		}
	}
	inst->data = ac;
	inst->blocking = 0; /* lookups in memory: check() never waits */
	return 0;
}

/* access_check - the tables in order; the first entry that matches answers */
static int access_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	const struct access *ac = inst->data;
	const pd_host *h = inst->host;

	for (size_t i = 0; i < ac->n; i++) {
		const struct atable *at = &ac->tab[i];
		const char *v = h->attr(req, at->attribute), *action;
		char esc[LOG_VALUE * 4 + 8];
		double score;

		if (!v || (!*v && !at->null_sender))
			continue; /* not in this request (or empty): this table has nothing to say */
		action = pd_table_match(at->t, v);
		if (!action)
			continue;
		h->escape(esc, sizeof(esc), v, LOG_VALUE);
		if (parse_score(action, &score) == 0) {
			h->score_add(req, at->label, score);
			h->log(inst, PD_LOG_INFO, "table \"%s\": %s=<%s> matched: score %+g", at->name, at->attribute, esc,
			       score);
			return PD_CHECK_OK; /* DUNNO: the score plugin decides */
		}
		h->log(inst, PD_LOG_INFO, "table \"%s\": %s=<%s> matched: %s", at->name, at->attribute, esc, action);
		h->reply(reply, "%s", action);
		return PD_CHECK_OK;
	}
	if (inst->verbose)
		h->log(inst, PD_LOG_DEBUG, "no table matched");
	return PD_CHECK_OK;
}

/* access_fini - free the tables */
static void access_fini(pd_instance *inst)
{
	free_tables(inst->data);
	inst->data = NULL;
}

const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "access",
    .version = "1.0",
    .description = "lookup tables (cidr, exact, suffix, regex) on any request attribute: access(5) actions or scores",
    .default_states = "RCPT",
    .options = options,
    .validate = access_validate,
    .init = access_init,
    .check = access_check,
    .fini = access_fini,
};
