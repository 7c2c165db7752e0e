/* rules.c - the ratelimit plugin's options: rules, limits ("100/1h"), warn_at, overrides files */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "action.h"
#include "duration.h"
#include "table.h"
#include "rl.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEF_ACTION "DEFER_IF_PERMIT 4.7.1 Rate limit exceeded, try again later"
#define AMOUNT_MAX (1LL << 53) /* the store's counters are exact up to 2^53 (Lua numbers on Redis) */
#define WINDOW_MAX 315360000L  /* the store's longest window: 3650 days */

static cfg_opt_t rule_opts[] = {
    CFG_STR_LIST("key", "{}", CFGF_NONE),
    CFG_STR("count", "messages", CFGF_NONE),
    CFG_STR_LIST("limits", "{}", CFGF_NONE),
    CFG_STR("action", DEF_ACTION, CFGF_NONE),
    CFG_INT("ipv4_prefix", 32, CFGF_NONE),
    CFG_INT("ipv6_prefix", 64, CFGF_NONE),
    CFG_STR_LIST("warn_at", "{\"80%\"}", CFGF_NONE),
    CFG_STR("overrides", "", CFGF_NONE),
    CFG_END(),
};

cfg_opt_t rl_options[] = {
    CFG_SEC("rule", rule_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_STR_LIST("exempt_recipients", "{\"postmaster@\", \"abuse@\"}", CFGF_NONE),
    CFG_STR("count_state", "END-OF-MESSAGE", CFGF_NONE),
    CFG_END(),
};

static const char *const count_names[] = {"messages", "recipients", "bytes", "requests"};

/* rl_count_name - "messages" ... */
const char *rl_count_name(enum rl_count c)
{
	return count_names[c];
}

/* parse_count - "messages" ... to C; 0 or -1 */
static int parse_count(const char *s, enum rl_count *c)
{
	for (unsigned i = 0; i < sizeof(count_names) / sizeof(count_names[0]); i++)
		if (!strcasecmp(s, count_names[i])) {
			*c = (enum rl_count)i;
			return 0;
		}
	return -1;
}

/* rl_parse_limit - "100/1h" (BYTES: "10M/1d", k/M/G = 1024^n) into OUT; 0, or -1 with WHY */
int rl_parse_limit(const char *text, int bytes, struct rl_limit *out, const char **why)
{
	const char *slash = strchr(text, '/');
	char *end;
	long long n, mul = 1;
	long w;

	*why = "expected MAX/WINDOW, e.g. \"100/1h\" or \"1000/1d\"";
	if (!slash || !isdigit((unsigned char)text[0]))
		return -1;
	errno = 0;
	n = strtoll(text, &end, 10);
	if (errno || end == text)
		return -1;
	if (end < slash && bytes) {
		switch (*end++) {
		case 'k': case 'K': mul = 1024; break;
		case 'm': case 'M': mul = 1024 * 1024; break;
		case 'g': case 'G': mul = 1024LL * 1024 * 1024; break;
		default: *why = "a size takes k, M or G (1024-based), e.g. \"50M/1d\""; return -1;
		}
	}
	if (end != slash)
		return -1;
	if (n < 1 || n > AMOUNT_MAX / mul) {
		*why = "the maximum must be 1 to 2^53";
		return -1;
	}
	if (pd_duration_parse(slash + 1, &w) != 0 || w < 1 || w > WINDOW_MAX) {
		*why = "the window must be a duration of 1s to 3650d (e.g. 60, 10m, 1h, 1d, 1w)";
		return -1;
	}
	out->max = n * mul;
	out->window = (unsigned)w;
	return 0;
}

/* rl_parse_fraction - "80%" or "0.8", above 0 and below 1; 0 or -1 */
int rl_parse_fraction(const char *text, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text)
		return -1;
	if (*end == '%') {
		v /= 100;
		end++;
	}
	if (*end || !(v > 0 && v < 1))
		return -1;
	*out = v;
	return 0;
}

/* rl_action_error - a reply that limits: DEFER*, REJECT, HOLD, DISCARD or a 4NN/5NN code, then text; NULL or why not */
const char *rl_action_error(const char *v)
{
	static const char *const words[] = {"REJECT", "DEFER", "DEFER_IF_PERMIT", "HOLD", "DISCARD", NULL};

	_Static_assert(PD_ACTION_MAX == PD_REPLY_MAX, "lib/action.h and plugin.h agree on a reply's length");
	return pd_action_error(v, words, "expected DEFER_IF_PERMIT, DEFER, REJECT, HOLD, DISCARD or a 4NN/5NN code, with text");
}

/* name_ok - a rule name: 1 to 64 of A-Z a-z 0-9 _ . - (it is part of the store's keys) */
static int name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 64)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* parse_key - "sasl_username+client_address" into K; 0, or -1 with WHY */
static int parse_key(const char *text, struct rl_key *k, const char **why)
{
	const char *p = text;

	memset(k, 0, sizeof(*k));
	*why = "expected request attribute names joined by '+', e.g. \"sasl_username\" or \"sender+client_address\"";
	for (;;) {
		size_t n = strcspn(p, "+");
		char name[65];

		if (n == 0 || n >= sizeof(name) || k->n == RL_PARTS_MAX) {
			if (k->n == RL_PARTS_MAX)
				*why = "at most 4 attributes joined by '+'";
			goto fail;
		}
		memcpy(name, p, n);
		name[n] = 0;
		if (!rl_key_attr_ok(name))
			goto fail;
		if (!(k->part[k->n++] = strdup(name)))
			goto fail;
		if (!p[n])
			break;
		p += n + 1;
	}
	if ((k->text = strdup(text)))
		return 0;
fail:
	for (size_t i = 0; i < k->n; i++)
		free(k->part[i]);
	memset(k, 0, sizeof(*k));
	return -1;
}

/* cmp_over - overrides by key */
static int cmp_over(const void *a, const void *b)
{
	return strcmp(((const struct rl_override *)a)->key, ((const struct rl_override *)b)->key);
}

/* free_over - N overrides */
static void free_over(struct rl_override *o, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(o[i].key);
	free(o);
}

/* parse_limits - the words of LINE after its key ("100/1h 1000/1d" or "unlimited") into L; 0, or -1 with WHY */
static int parse_limits(char *words, int bytes, struct rl_limits *l, const char **why)
{
	char *save = NULL;

	memset(l, 0, sizeof(*l));
	for (char *w = strtok_r(words, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (!strcasecmp(w, "unlimited") && !l->n && !l->unlimited) {
			l->unlimited = 1;
			continue;
		}
		if (l->unlimited) {
			*why = "\"unlimited\" stands alone";
			return -1;
		}
		if (l->n == RL_LIMITS_MAX) {
			*why = "at most 8 limits";
			return -1;
		}
		if (rl_parse_limit(w, bytes, &l->l[l->n], why) < 0)
			return -1;
		l->n++;
	}
	if (!l->n && !l->unlimited) {
		*why = "no limits: expected KEY MAX/WINDOW... (e.g. \"alice 500/1h 5000/1d\") or KEY unlimited";
		return -1;
	}
	return 0;
}

/* rl_overrides_load - PATH's "KEY LIMITS..." lines into R (replacing its overrides); 0, or -1 with "PATH:LINE: why" */
int rl_overrides_load(struct rl_rule *r, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[RL_LINE_MAX + 2];
	struct rl_override *o = NULL;
	size_t n = 0, cap = 0;
	unsigned ln = 0;
	const char *why;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		char *p = line, *k;
		struct rl_limits lim;

		ln++;
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes", path, ln, RL_LINE_MAX);
			goto fail;
		}
		while (len && strchr("\r\n \t", line[len - 1]))
			line[--len] = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		k = p;
		p += strcspn(p, " \t");
		if (*p)
			*p++ = 0;
		if (parse_limits(p, r->count == RL_BYTES, &lim, &why) < 0) {
			snprintf(err, errlen, "%s:%u: key \"%.100s\": %s", path, ln, k, why);
			goto fail;
		}
		if (n == cap) {
			struct rl_override *no = realloc(o, (cap = cap ? cap * 2 : 64) * sizeof(*o));

			if (!no) {
				snprintf(err, errlen, "%s:%u: out of memory", path, ln);
				goto fail;
			}
			o = no;
		}
		for (char *c = k; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (!(o[n].key = strdup(k))) {
			snprintf(err, errlen, "%s:%u: out of memory", path, ln);
			goto fail;
		}
		o[n++].limits = lim;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto fail;
	}
	fclose(f);
	f = NULL;
	if (n)
		qsort(o, n, sizeof(*o), cmp_over);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(o[i - 1].key, o[i].key)) {
			snprintf(err, errlen, "%s: key \"%.100s\" given twice", path, o[i].key);
			goto fail;
		}
	free_over(r->over, r->nover);
	r->over = o;
	r->nover = n;
	return 0;
fail:
	if (f)
		fclose(f);
	free_over(o, n);
	return -1;
}

/* rl_limits_for - the override of VALUE, or the rule's limits */
const struct rl_limits *rl_limits_for(const struct rl_rule *r, const char *value)
{
	struct rl_override k = {.key = (char *)value}, *o;

	if (!r->nover)
		return &r->limits;
	o = bsearch(&k, r->over, r->nover, sizeof(*r->over), cmp_over);
	return o ? &o->limits : &r->limits;
}

/* rl_rule_free - what a rule holds (not R itself) */
void rl_rule_free(struct rl_rule *r)
{
	free(r->name);
	for (size_t i = 0; i < r->nkeys; i++) {
		free(r->keys[i].text);
		for (size_t j = 0; j < r->keys[i].n; j++)
			free(r->keys[i].part[j]);
	}
	free(r->action);
	free(r->overrides_path);
	free_over(r->over, r->nover);
	memset(r, 0, sizeof(*r));
}

/* rl_rule_load - rule section RSEC into R (overrides file included); 0, or -1 with ERR (R freed) */
int rl_rule_load(struct rl_rule *r, cfg_t *rsec, char *err, size_t errlen)
{
	const char *title = cfg_title(rsec), *why, *ov = cfg_getstr(rsec, "overrides");
	const char *count = cfg_getstr(rsec, "count");
	long p4 = cfg_getint(rsec, "ipv4_prefix"), p6 = cfg_getint(rsec, "ipv6_prefix");

	memset(r, 0, sizeof(*r));
	if (!title || !name_ok(title)) {
		snprintf(err, errlen, "rule \"%.64s\": a rule's name is 1 to 64 letters, digits, '_', '.' or '-'",
			 title ? title : "");
		return -1;
	}
	if (!(r->name = strdup(title)))
		goto oom;
	if (parse_count(count, &r->count) < 0) {
		snprintf(err, errlen, "rule \"%s\": count \"%.32s\": expected messages, recipients, bytes or requests",
			 title, count);
		goto fail;
	}
	r->nkeys = 0;
	if (cfg_size(rsec, "key") == 0 || cfg_size(rsec, "key") > RL_KEYS_MAX) {
		snprintf(err, errlen, "rule \"%s\": key: give 1 to %d keys, e.g. key = { \"sasl_username\", \"sender\" }",
			 title, RL_KEYS_MAX);
		goto fail;
	}
	for (unsigned i = 0; i < cfg_size(rsec, "key"); i++) {
		const char *k = cfg_getnstr(rsec, "key", i);

		if (parse_key(k, &r->keys[r->nkeys], &why) < 0) {
			snprintf(err, errlen, "rule \"%s\": key \"%.100s\": %s", title, k, why);
			goto fail;
		}
		r->nkeys++;
	}
	if (cfg_size(rsec, "limits") == 0 || cfg_size(rsec, "limits") > RL_LIMITS_MAX) {
		snprintf(err, errlen, "rule \"%s\": limits: give 1 to %d limits, e.g. limits = { \"100/1h\", \"1000/1d\" }",
			 title, RL_LIMITS_MAX);
		goto fail;
	}
	for (unsigned i = 0; i < cfg_size(rsec, "limits"); i++) {
		const char *l = cfg_getnstr(rsec, "limits", i);

		if (rl_parse_limit(l, r->count == RL_BYTES, &r->limits.l[i], &why) < 0) {
			snprintf(err, errlen, "rule \"%s\": limits \"%.64s\": %s", title, l, why);
			goto fail;
		}
		for (unsigned j = 0; j < i; j++)
			if (r->limits.l[j].window == r->limits.l[i].window) {
				snprintf(err, errlen, "rule \"%s\": limits \"%.64s\": a second limit over the same window",
					 title, l);
				goto fail;
			}
		r->limits.n++;
	}
	if ((why = rl_action_error(cfg_getstr(rsec, "action")))) {
		snprintf(err, errlen, "rule \"%s\": action: %s", title, why);
		goto fail;
	}
	if (!(r->action = strdup(cfg_getstr(rsec, "action"))))
		goto oom;
	if (p4 < 1 || p4 > 32 || p6 < 1 || p6 > 128) {
		snprintf(err, errlen, "rule \"%s\": ipv4_prefix must be 1 to 32 and ipv6_prefix 1 to 128 (got %ld and %ld)",
			 title, p4, p6);
		goto fail;
	}
	r->prefix4 = (int)p4;
	r->prefix6 = (int)p6;
	if (cfg_size(rsec, "warn_at") > RL_WARN_MAX) {
		snprintf(err, errlen, "rule \"%s\": warn_at: at most %d fractions", title, RL_WARN_MAX);
		goto fail;
	}
	for (unsigned i = 0; i < cfg_size(rsec, "warn_at"); i++) {
		const char *w = cfg_getnstr(rsec, "warn_at", i);

		if (rl_parse_fraction(w, &r->warn[i]) < 0) {
			snprintf(err, errlen, "rule \"%s\": warn_at \"%.32s\": expected a fraction of the limit above 0 "
				 "and below 1, e.g. \"80%%\" or \"0.8\"", title, w);
			goto fail;
		}
		r->nwarn++;
	}
	if (*ov && ov[0] != '/') {
		snprintf(err, errlen, "rule \"%s\": overrides \"%.200s\": give an absolute path", title, ov);
		goto fail;
	}
	if (!(r->overrides_path = strdup(ov)))
		goto oom;
	if (*ov) {
		char why2[PATH_MAX + 300];

		if (rl_overrides_load(r, ov, why2, sizeof(why2)) < 0) {
			snprintf(err, errlen, "rule \"%s\": overrides: %s", title, why2);
			goto fail;
		}
	}
	return 0;
oom:
	snprintf(err, errlen, "rule \"%s\": out of memory", title);
fail:
	rl_rule_free(r);
	return -1;
}

/* has_opt - does SEC have option NAME (the core's filters are in a daemon's sections, not in every test's)? */
static int has_opt(cfg_t *sec, const char *name)
{
	for (unsigned i = 0; sec->opts[i].name; i++)
		if (!strcmp(sec->opts[i].name, name))
			return 1;
	return 0;
}

/* rl_validate - every rule loads (overrides files too), count_state, exempt_recipients, protocol_state */
int rl_validate(cfg_t *sec)
{
	const char *cs = cfg_getstr(sec, "count_state");
	int counts_mail = 0;
	char err[PATH_MAX + 600];

	if (cfg_size(sec, "rule") == 0) {
		cfg_error(sec, "ratelimit: no rules; add rule \"NAME\" { key = { \"sasl_username\" } limits = { \"100/1h\" } }");
		return -1;
	}
	for (unsigned i = 0; i < cfg_size(sec, "rule"); i++) {
		cfg_t *rs = cfg_getnsec(sec, "rule", i);
		struct rl_rule r;

		if (rl_rule_load(&r, rs, err, sizeof(err)) < 0) {
			cfg_error(rs, "ratelimit: %s", err);
			return -1;
		}
		counts_mail |= r.count != RL_REQUESTS;
		rl_rule_free(&r);
	}
	if (strcasecmp(cs, "END-OF-MESSAGE") && strcasecmp(cs, "DATA")) {
		cfg_error(sec, "ratelimit: count_state \"%.32s\": expected END-OF-MESSAGE or DATA", cs);
		return -1;
	}
	for (unsigned i = 0; i < cfg_size(sec, "exempt_recipients"); i++) {
		const char *e = cfg_getnstr(sec, "exempt_recipients", i);
		pd_table *t = pd_table_new(PD_TABLE_EXACT);
		int bad = !t || pd_table_add(t, e, NULL, err, sizeof(err)) < 0;

		pd_table_free(t);
		if (bad) {
			cfg_error(sec, "ratelimit: exempt_recipients \"%.100s\": %s", e, t ? err : "out of memory");
			return -1;
		}
	}
	if (counts_mail && has_opt(sec, "protocol_state") && cfg_size(sec, "protocol_state") > 0) {
		int has = 0;

		for (unsigned i = 0; i < cfg_size(sec, "protocol_state"); i++)
			has |= !strcasecmp(cfg_getnstr(sec, "protocol_state", i), cs);
		if (!has) {
			cfg_error(sec, "ratelimit: protocol_state lacks %s (count_state): no message would ever be counted",
				  cs);
			return -1;
		}
	}
	return 0;
}
