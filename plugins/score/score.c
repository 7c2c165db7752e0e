/* score.c - the score plugin: decide by the request's score (host->score_*), highest threshold first */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Placed after the plugins that add scores (dnsbl, helo: with their
 * reject_score = 0 so that they only add), it sums the request's
 * contributions and answers the action of the highest threshold the sum
 * reaches ("15=REJECT 5.7.1 ..."). Below every threshold it prepends one
 * header (header_name, "X-Policyd-Score" by default) listing what scored,
 * once per message: the later recipients of the same message (Postfix's
 * instance attribute, with the client address) get DUNNO instead, so a
 * message with three recipients carries one header. Scores are per
 * request: a recipient's request never adds to another's.
 */
#include <policyd/plugin.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_THRESHOLDS 16
#define MSG_SLOTS      8192 /* messages remembered (header sent), 2-way sets */
#define MSG_TTL        3600 /* seconds a message is remembered */
#define ACTION_MAX     400  /* longest threshold action */

struct threshold {
	double at;
	char *action; /* "REJECT 5.7.1 ...", may hold %s (the score) */
};

/* A message whose header was sent. */
struct msg {
	unsigned hash;
	time_t expires;
	char key[160];
};

struct score {
	struct threshold t[MAX_THRESHOLDS];
	size_t n;
	int header;
	char *header_name;
	pthread_mutex_t lock;
	struct msg *msgs;
};

/* parse_threshold - "NUMBER=ACTION text" into *AT and *ACTION (in V); NULL or why not */
static const char *parse_threshold(const char *v, double *at, const char **action)
{
	const char *eq = strchr(v, '=');
	char num[64], *end;
	size_t n;

	if (!eq)
		return "needs SCORE=ACTION (e.g. \"15=REJECT 5.7.1 spam score %s\")";
	n = (size_t)(eq - v);
	if (n == 0 || n >= sizeof(num))
		return "the score before = is missing or too long";
	memcpy(num, v, n);
	num[n] = 0;
	errno = 0;
	*at = strtod(num, &end);
	if (*end || errno || !isfinite(*at) || fabs(*at) > 100000)
		return "the score before = is not a number";
	*action = eq + 1;
	while (**action == ' ')
		(*action)++;
	if (!**action)
		return "the action after = is empty";
	if (strlen(*action) > ACTION_MAX)
		return "the action is longer than 400 characters";
	for (const char *p = *action; *p; p++) {
		if ((unsigned char)*p < 32 || *p == 127)
			return "the action contains a control character";
		if (*p == '%' && (++p, *p != 's' && *p != '%'))
			return "unknown placeholder in the action (use %s the score, %% a percent sign)";
	}
	if (!strncasecmp(*action, "DUNNO", 5) || !strncasecmp(*action, "OK", 2) ||
	    !strncasecmp(*action, "PREPEND", 7))
		return "the action must decide (REJECT, DEFER_IF_PERMIT, 4xx/5xx, HOLD, DISCARD ...), "
		       "not DUNNO, OK or PREPEND";
	return NULL;
}

/* cb_threshold - one thresholds entry, checked while parsing (file:line) */
static int cb_threshold(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	double at;
	const char *action, *why = parse_threshold(value, &at, &action);

	if (why) {
		cfg_error(cfg, "%s: \"%.100s\": %s", opt->name, value, why);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/* cb_header_name - a header field name: printable, no colon or space */
static int cb_header_name(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	size_t n = strlen(value);

	for (const char *p = value; *p; p++)
		if ((unsigned char)*p <= 32 || (unsigned char)*p >= 127 || *p == ':')
			n = 0;
	if (n == 0 || n > 64) {
		cfg_error(cfg, "%s: \"%.100s\" is not a header name (1 to 64 printable characters, no colon)",
			  opt->name, value);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

static cfg_opt_t options[] = {
    CFG_STR_LIST_CB("thresholds", "{}", CFGF_NONE, cb_threshold),
    CFG_BOOL("header", cfg_true, CFGF_NONE),
    CFG_STR_CB("header_name", "X-Policyd-Score", CFGF_NONE, cb_header_name),
    CFG_END(),
};

/* score_validate - at most MAX_THRESHOLDS, no score twice */
static int score_validate(cfg_t *sec)
{
	unsigned n = cfg_size(sec, "thresholds");
	double at[MAX_THRESHOLDS];

	if (n > MAX_THRESHOLDS) {
		cfg_error(sec, "thresholds: %u entries, at most %d", n, MAX_THRESHOLDS);
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		const char *action;

		if (parse_threshold(cfg_getnstr(sec, "thresholds", i), &at[i], &action))
			return -1; /* cb_threshold said why */
		for (unsigned k = 0; k < i; k++)
			if (at[k] == at[i]) {
				cfg_error(sec, "thresholds: score %g given twice", at[i]);
				return -1;
			}
	}
	return 0;
}

/* by_score_desc - qsort: highest threshold first */
static int by_score_desc(const void *a, const void *b)
{
	const struct threshold *x = a, *y = b;

	return x->at < y->at ? 1 : x->at > y->at ? -1 : 0;
}

/* score_free - free per-instance data */
static void score_free(struct score *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->t[i].action);
	free(s->header_name);
	free(s->msgs);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* score_init - the thresholds, sorted highest first */
static int score_init(pd_instance *inst)
{
	const pd_host *h = inst->host;
	struct score *s = calloc(1, sizeof(*s));

	if (!s)
		goto oom;
	pthread_mutex_init(&s->lock, NULL);
	s->header = cfg_getbool(inst->cfg, "header");
	s->header_name = strdup(cfg_getstr(inst->cfg, "header_name"));
	s->msgs = calloc(MSG_SLOTS, sizeof(*s->msgs));
	if (!s->header_name || !s->msgs)
		goto oom;
	for (unsigned i = 0; i < cfg_size(inst->cfg, "thresholds") && i < MAX_THRESHOLDS; i++) {
		const char *action;

		if (parse_threshold(cfg_getnstr(inst->cfg, "thresholds", i), &s->t[s->n].at, &action)) {
			h->log(inst, PD_LOG_ERR, "thresholds: entry %u is invalid", i + 1);
			score_free(s);
			return -1;
		}
		if (!(s->t[s->n].action = strdup(action)))
			goto oom;
		s->n++;
	}
	qsort(s->t, s->n, sizeof(s->t[0]), by_score_desc);
	if (!s->n && !s->header)
		h->log(inst, PD_LOG_WARNING, "no thresholds and header = false: this instance does nothing");
	inst->data = s;
	inst->blocking = 0; /* no waiting at all */
	h->log(inst, PD_LOG_INFO, "%zu threshold(s)%s%s", s->n, s->header ? ", header " : "",
	       s->header ? s->header_name : "");
	return 0;
oom:
	h->log(inst, PD_LOG_ERR, "out of memory");
	score_free(s);
	return -1;
}

/* score_fini - free per-instance data */
static void score_fini(pd_instance *inst)
{
	score_free(inst->data);
}

/* key_hash - FNV-1a of KEY */
static unsigned key_hash(const char *key)
{
	unsigned h = 2166136261u;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h;
}

/* first_header - 1 the first time KEY's header is asked for (and remembered), 0 after */
static int first_header(struct score *s, const char *key, time_t now)
{
	unsigned h = key_hash(key);
	struct msg *set = &s->msgs[(h % (MSG_SLOTS / 2)) * 2], *m;
	int first = 1;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < 2; i++)
		if (set[i].hash == h && set[i].expires > now && strcmp(set[i].key, key) == 0)
			first = 0;
	if (first) { /* into the free or older slot of the set */
		m = set[0].expires <= set[1].expires ? &set[0] : &set[1];
		m->hash = h;
		m->expires = now + MSG_TTL;
		snprintf(m->key, sizeof(m->key), "%s", key);
	}
	pthread_mutex_unlock(&s->lock);
	return first;
}

/* list_scores - "label=value label=value" of the request into OUT (CAP), cut with "..." */
static void list_scores(const pd_host *h, pd_request *req, char *out, size_t cap)
{
	const char *label;
	double v;
	size_t n = 0;

	out[0] = 0;
	for (size_t i = 0; h->score_at(req, i, &label, &v) == 0; i++) {
		char item[160];
		int len = snprintf(item, sizeof(item), "%s%s=%.2f", n ? " " : "", label, v);

		if (len < 0 || n + (size_t)len + 4 >= cap) {
			snprintf(out + n, cap - n, "%s...", n ? " " : "");
			return;
		}
		for (int k = 0; k < len; k++) /* a label cannot break the header */
			if ((unsigned char)item[k] < 32 || (unsigned char)item[k] >= 127)
				item[k] = '?';
		memcpy(out + n, item, (size_t)len + 1);
		n += (size_t)len;
	}
}

/* fill_score - ACTION with %s (the score) and %% filled in, into OUT (CAP) */
static void fill_score(const char *action, double sum, char *out, size_t cap)
{
	char num[32];
	size_t n = 0;

	snprintf(num, sizeof(num), "%.2f", sum);
	for (const char *p = action; *p && n + 1 < cap; p++) {
		if (*p == '%' && p[1] == 's') {
			for (const char *q = num; *q && n + 1 < cap; q++)
				out[n++] = *q;
			p++;
		} else if (*p == '%' && p[1] == '%') {
			out[n++] = '%';
			p++;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = 0;
}

/* score_check - the highest threshold reached decides; else one header per message */
static int score_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	struct score *s = inst->data;
	const pd_host *h = inst->host;
	double sum = h->score_sum(req);
	const char *caddr = h->attr(req, "client_address");
	const char *msgid = h->attr(req, "instance");
	char list[PD_REPLY_MAX], esc[128];

	list_scores(h, req, list, sizeof(list));
	h->escape(esc, sizeof(esc), caddr ? caddr : "", 64);
	for (size_t i = 0; i < s->n; i++)
		if (sum >= s->t[i].at) {
			char act[PD_REPLY_MAX + 1];

			fill_score(s->t[i].action, sum, act, sizeof(act));
			h->reply(reply, "%s", act);
			h->log(inst, PD_LOG_NOTICE, "client [%s] score %.2f >= %g: %s (%s)", esc, sum, s->t[i].at, act,
			       list[0] ? list : "nothing scored");
			return PD_CHECK_OK;
		}
	if (s->header) {
		char key[160], hv[PD_REPLY_MAX];

		if (msgid && *msgid) {
			snprintf(key, sizeof(key), "%.100s/%.50s", msgid, caddr ? caddr : "");
			if (!first_header(s, key, h->now())) {
				if (inst->verbose)
					h->log(inst, PD_LOG_DEBUG, "client [%s] score %.2f: header already prepended for "
								   "this message",
					       esc, sum);
				return PD_CHECK_OK;
			}
		}
		snprintf(hv, sizeof(hv), "%.2f%s%.*s%s", sum, list[0] ? " (" : "", 400, list, list[0] ? ")" : "");
		h->reply(reply, "PREPEND %s: %s", s->header_name, hv);
		h->log(inst, PD_LOG_INFO, "client [%s] score %.2f: below every threshold, header %s: %s", esc, sum,
		       s->header_name, hv);
		return PD_CHECK_OK;
	}
	h->log(inst, PD_LOG_INFO, "client [%s] score %.2f: below every threshold (%s)", esc, sum,
	       list[0] ? list : "nothing scored");
	return PD_CHECK_OK;
}

/* The one export. */
const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "score",
    .version = "1.0",
    .description = "decides by the request's score (dnsbl, helo ...), highest threshold first; one header per message",
    .default_states = "RCPT",
    .options = options,
    .validate = score_validate,
    .init = score_init,
    .check = score_check,
    .fini = score_fini,
};
