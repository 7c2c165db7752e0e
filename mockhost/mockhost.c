/* mockhost.c - the mock host: unit-test a policyd plugin without the daemon */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * A test double, installed for plugin authors (pkg-config policyd-mockhost):
 * requests are arrays of strings, DNS answers come from a table the test
 * fills, scores are a list, the log goes to stderr, the state service is
 * the daemon's own store code on a private file (mockstore.c). Nothing
 * here talks to the network or needs the daemon.
 */
#include <policyd/mockhost.h>
#include "mockstore.h"
#include "store_host.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ATTRS 256
#define MAX_ANSWERS 64 /* per request */
#define MAX_WANTS 32
#define MAX_SCORES 64
#define MAX_PASSES 16 /* checks of one request in mock_check */
#define MAX_INSTANCES 64 /* instances whose section mock_instance_init parsed */

/* An answer the test gave (the table), or one a request used. */
typedef struct canned {
	struct canned *next;
	char name[256];
	unsigned type;
	pd_dns_answer a;
	pd_dns_rr *rr;
	char **text;
	size_t ntext;
} canned;

struct pd_request {
	size_t n;
	char *name[MAX_ATTRS];
	char *value[MAX_ATTRS];
	const canned *used[MAX_ANSWERS]; /* answers this request got */
	size_t n_used;
	struct {
		char name[256];
		unsigned type;
	} want[MAX_WANTS];
	size_t n_want;
	struct {
		char label[96];
		double value;
	} score[MAX_SCORES];
	size_t n_score;
};

struct pd_reply {
	char text[PD_REPLY_MAX + 1];
};

time_t mock_clock = 1700000000;
static struct {
	pd_instance *inst;
	cfg_t *cfg;
} parsed[MAX_INSTANCES];
/* instances whose init succeeded: only they get fini, as in the core */
static const pd_instance *started[MAX_INSTANCES];
/* instances whose plugin did not declare PD_PLUGIN_STATE: the store refuses them, as the core does */
static const pd_instance *stateless[MAX_INSTANCES];

/* mockstore_allowed - may INST use the state service? */
int mockstore_allowed(const pd_instance *inst)
{
	for (int i = 0; i < MAX_INSTANCES; i++)
		if (stateless[i] == inst)
			return 0;
	return 1;
}
static canned *table;
static int wait_first = 1;
static unsigned long asked;

/* mock_log - print "[level] name: message" to stderr */
static void mock_log(const pd_instance *inst, int level, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[%d] %s: ", level, inst && inst->name ? inst->name : "?");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* mock_escape - the daemon's rule: control characters, quotes, backslash, space, <> as \xHH */
static const char *mock_escape(char *dst, size_t cap, const char *src, size_t max)
{
	size_t o = 0;

	if (!cap)
		return dst;
	for (size_t i = 0; src && src[i] && i < max && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c < 0x20 || c == 0x7f || strchr("\"\\ <>", c))
			o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
		else
			dst[o++] = (char)c;
	}
	dst[o] = 0;
	return dst;
}

/* mock_now - the test's clock */
static time_t mock_now(void)
{
	return mock_clock;
}

/* mock_attr - NAME's value, the last one wins */
static const char *mock_attr(const pd_request *req, const char *name)
{
	for (size_t i = req->n; i-- > 0;)
		if (strcmp(req->name[i], name) == 0)
			return req->value[i];
	return NULL;
}

/* mock_attr_count - number of attributes */
static size_t mock_attr_count(const pd_request *req)
{
	return req->n;
}

/* mock_attr_at - the I-th attribute */
static int mock_attr_at(const pd_request *req, size_t i, const char **name, const char **value)
{
	if (i >= req->n)
		return -1;
	*name = req->name[i];
	*value = req->value[i];
	return 0;
}

/* mock_reply - like the core: control characters become spaces, capped */
static void mock_reply(pd_reply *reply, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reply->text, sizeof(reply->text), fmt, ap);
	va_end(ap);
	for (char *p = reply->text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

/* norm - a lower-case name without its final dot */
static void norm(const char *in, char out[256])
{
	size_t n = strlen(in);

	if (n && in[n - 1] == '.')
		n--;
	if (n > 255)
		n = 255;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[n] = 0;
}

/* find - the canned answer for NAME/TYPE, or NULL */
static const canned *find(const char *name, unsigned type)
{
	for (const canned *c = table; c; c = c->next)
		if (c->type == type && strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* nxdomain - the answer for names nobody gave one for */
static const canned *nxdomain(void)
{
	static canned c = {.a = {.status = PD_DNS_NXDOMAIN, .ttl = 300}};

	return &c;
}

/* mock_dns - host->dns: what the request got, a canned answer at once (wait
 * off), or PENDING until mock_check gives it */
static int mock_dns(pd_request *req, const char *name, unsigned type, const pd_dns_answer **ans)
{
	char n[256];
	const canned *c;

	norm(name ? name : "", n);
	*ans = NULL;
	if (!*n) {
		static canned bad = {.a = {.status = PD_DNS_BADNAME}};

		*ans = &bad.a;
		return PD_DNS_BADNAME;
	}
	for (size_t i = 0; i < req->n_used; i++)
		if (req->used[i]->type == type && strcmp(req->used[i]->name, n) == 0) {
			*ans = &req->used[i]->a;
			return (*ans)->status;
		}
	c = find(n, type);
	if (!wait_first && req->n_used < MAX_ANSWERS) {
		asked++;
		if (!c) {
			*ans = &nxdomain()->a;
			return PD_DNS_NXDOMAIN;
		}
		req->used[req->n_used++] = c;
		*ans = &c->a;
		return c->a.status;
	}
	for (size_t i = 0; i < req->n_want; i++)
		if (req->want[i].type == type && strcmp(req->want[i].name, n) == 0)
			return PD_DNS_PENDING;
	if (req->n_want < MAX_WANTS) {
		memcpy(req->want[req->n_want].name, n, sizeof(n));
		req->want[req->n_want++].type = type;
	}
	return PD_DNS_PENDING;
}

/* mock_score_add - add or replace LABEL's contribution */
static void mock_score_add(pd_request *req, const char *label, double value)
{
	for (size_t i = 0; i < req->n_score; i++)
		if (strcmp(req->score[i].label, label) == 0) {
			req->score[i].value = value;
			return;
		}
	if (req->n_score < MAX_SCORES) {
		snprintf(req->score[req->n_score].label, sizeof(req->score[0].label), "%s", label);
		req->score[req->n_score++].value = value;
	}
}

/* mock_score_sum - the request's score */
static double mock_score_sum(const pd_request *req)
{
	double s = 0;

	for (size_t i = 0; i < req->n_score; i++)
		s += req->score[i].value;
	return s;
}

/* mock_score_at - the I-th contribution */
static int mock_score_at(const pd_request *req, size_t i, const char **label, double *value)
{
	if (i >= req->n_score)
		return -1;
	*label = req->score[i].label;
	*value = req->score[i].value;
	return 0;
}

const pd_host mock_host = {
    .api = PD_PLUGIN_API,
    .log = mock_log,
    .escape = mock_escape,
    .now = mock_now,
    .attr = mock_attr,
    .attr_count = mock_attr_count,
    .attr_at = mock_attr_at,
    .reply = mock_reply,
    .dns = mock_dns,
    .score_add = mock_score_add,
    .score_sum = mock_score_sum,
    .score_at = mock_score_at,
    .store_remote = mockstore_remote,
    PD_STORE_HOST_ENTRIES,
};

/* mock_dns_answer - the test's answer for NAME/TYPE */
void mock_dns_answer(const char *name, unsigned type, int status, const char *const *records, unsigned ttl)
{
	canned *c = calloc(1, sizeof(*c));
	size_t n = 0;

	if (!c)
		abort();
	while (records && records[n])
		n++;
	norm(name, c->name);
	c->type = type;
	c->rr = calloc(n ? n : 1, sizeof(*c->rr));
	c->text = calloc(n ? n : 1, sizeof(*c->text));
	if (!c->rr || !c->text)
		abort();
	for (size_t i = 0; i < n; i++) {
		const char *r = records[i];
		pd_dns_rr *rr = &c->rr[i];

		rr->type = type;
		if (type == PD_DNS_A)
			inet_pton(AF_INET, r, rr->addr);
		else if (type == PD_DNS_AAAA)
			inet_pton(AF_INET6, r, rr->addr);
		if (type == PD_DNS_MX) {
			rr->pref = (unsigned)strtoul(r, (char **)&r, 10);
			while (*r == ' ')
				r++;
		}
		c->text[i] = strdup(r);
		rr->text = c->text[i];
		rr->len = strlen(r);
	}
	c->ntext = n;
	c->a.status = status;
	c->a.ttl = ttl;
	c->a.n = status == PD_DNS_OK ? n : 0;
	c->a.rr = c->rr;
	c->next = table;
	table = c;
}

/* mock_dns_reset - forget every answer and the count */
void mock_dns_reset(void)
{
	while (table) {
		canned *c = table;

		table = c->next;
		for (size_t i = 0; i < c->ntext; i++)
			free(c->text[i]);
		free(c->text);
		free(c->rr);
		free(c);
	}
	asked = 0;
}

/* mock_dns_wait - answers after a PD_CHECK_WAIT (on), or at once */
void mock_dns_wait(int on)
{
	wait_first = on;
}

/* mock_dns_asked - lookups answered so far */
unsigned long mock_dns_asked(void)
{
	return asked;
}

/* give - the answers REQ asked for */
static void give(pd_request *req)
{
	for (size_t i = 0; i < req->n_want && req->n_used < MAX_ANSWERS; i++) {
		const canned *c = find(req->want[i].name, req->want[i].type);
		static canned nx[MAX_WANTS];

		asked++;
		if (!c) { /* NXDOMAIN for NAME/TYPE */
			canned *x = &nx[i];

			snprintf(x->name, sizeof(x->name), "%s", req->want[i].name);
			x->type = req->want[i].type;
			x->a.status = PD_DNS_NXDOMAIN;
			x->a.ttl = 300;
			c = x;
		}
		req->used[req->n_used++] = c;
	}
	req->n_want = 0;
}

/* mock_check - check REQ like the daemon, waiting included */
int mock_check(const pd_plugin_desc *p, pd_instance *inst, pd_request *req, pd_reply *reply)
{
	for (int pass = 0; pass < MAX_PASSES; pass++) {
		int rc;

		reply->text[0] = 0;
		rc = p->check(inst, req, reply);
		pd_store_host_release();
		if (rc != PD_CHECK_WAIT)
			return rc;
		if (!req->n_want) {
			mock_log(inst, PD_LOG_ERR, "check returned PD_CHECK_WAIT without a pending lookup");
			return PD_CHECK_ERROR;
		}
		give(req);
	}
	mock_log(inst, PD_LOG_ERR, "check still waits after %d passes", MAX_PASSES);
	return PD_CHECK_ERROR;
}

/* mock_request_set - add or replace an attribute */
void mock_request_set(pd_request *req, const char *name, const char *value)
{
	for (size_t i = 0; i < req->n; i++)
		if (strcmp(req->name[i], name) == 0) {
			free(req->value[i]);
			req->value[i] = strdup(value);
			return;
		}
	if (req->n < MAX_ATTRS) {
		req->name[req->n] = strdup(name);
		req->value[req->n++] = strdup(value);
	}
}

/* mock_request_new - a request from "name=value" strings */
pd_request *mock_request_new(const char *first, ...)
{
	pd_request *req = calloc(1, sizeof(*req));
	va_list ap;

	if (!req)
		abort();
	va_start(ap, first);
	for (const char *s = first; s; s = va_arg(ap, const char *)) {
		const char *eq = strchr(s, '=');
		char name[129];

		if (!eq || (size_t)(eq - s) >= sizeof(name))
			continue;
		memcpy(name, s, (size_t)(eq - s));
		name[eq - s] = 0;
		mock_request_set(req, name, eq + 1);
	}
	va_end(ap);
	return req;
}

/* mock_request_free - free it */
void mock_request_free(pd_request *req)
{
	if (!req)
		return;
	for (size_t i = 0; i < req->n; i++) {
		free(req->name[i]);
		free(req->value[i]);
	}
	free(req);
}

/* mock_reply_new - an empty reply */
pd_reply *mock_reply_new(void)
{
	pd_reply *r = calloc(1, sizeof(*r));

	if (!r)
		abort();
	return r;
}

/* mock_reply_text - what the plugin set */
const char *mock_reply_text(const pd_reply *reply)
{
	return reply->text;
}

/* mock_reply_clear - empty again */
void mock_reply_clear(pd_reply *reply)
{
	reply->text[0] = 0;
}

/* mock_reply_free - free it */
void mock_reply_free(pd_reply *reply)
{
	free(reply);
}

/* mock_section - parse a section body with OPTIONS */
cfg_t *mock_section(cfg_opt_t *options, const char *text)
{
	/* the core's observe filter is in every section, as in the daemon (inst->observe) */
	cfg_opt_t core[] = {CFG_BOOL("observe", cfg_false, CFGF_NONE), CFG_END()};
	size_t n = 0;
	cfg_opt_t *all;
	cfg_t *cfg;

	while (options && options[n].name)
		n++;
	all = calloc(n + 2, sizeof(*all));
	if (!all)
		return NULL;
	if (n)
		memcpy(all, options, n * sizeof(*all));
	all[n] = core[0];
	cfg = cfg_init(all, CFGF_NONE); /* libconfuse copies the table */
	free(all);
	if (!cfg)
		return NULL;
	if (cfg_parse_buf(cfg, text ? text : "") != CFG_SUCCESS) {
		cfg_free(cfg);
		return NULL;
	}
	return cfg;
}

/* mock_instance_init - an instance as the core makes it, then init */
int mock_instance_init(pd_instance *inst, const pd_plugin_desc *p, const char *name, cfg_t *cfg,
		       const char *state_dir)
{
	memset(inst, 0, sizeof(*inst));
	inst->host = &mock_host;
	inst->name = name ? name : p->name;
	inst->plugin = p->name;
	inst->cfg = cfg ? cfg : mock_section(p->options, "");
	inst->observe = inst->cfg && cfg_getopt(inst->cfg, "observe") ? cfg_getbool(inst->cfg, "observe") : 0;
	for (int i = 0; !cfg && inst->cfg && i < MAX_INSTANCES; i++)
		if (!parsed[i].inst) { /* ours to free */
			parsed[i].inst = inst;
			parsed[i].cfg = inst->cfg;
			break;
		}
	inst->state_dir = state_dir ? state_dir : "/tmp";
	for (int i = 0; i < MAX_INSTANCES; i++) {
		if (stateless[i] == inst)
			stateless[i] = NULL;
		if (!(p->flags & PD_PLUGIN_STATE) && !stateless[i]) {
			stateless[i] = inst;
			break;
		}
	}
	inst->blocking = 1;
	inst->dns_timeout_ms = 5000;
	inst->dns_cache = 1;
	inst->dns_max_ttl = 86400;
	if (!inst->cfg)
		return -1;
	if (p->init(inst) != 0)
		return -1;
	for (int i = 0; i < MAX_INSTANCES; i++)
		if (!started[i]) {
			started[i] = inst;
			break;
		}
	return 0;
}

/* mock_instance_fini - fini, and the section mock_instance_init parsed */
void mock_instance_fini(pd_instance *inst, const pd_plugin_desc *p)
{
	for (int i = 0; i < MAX_INSTANCES; i++)
		if (started[i] == inst) { /* as the core: fini only after an init that succeeded */
			started[i] = NULL;
			p->fini(inst);
		}
	for (int i = 0; i < MAX_INSTANCES; i++)
		if (stateless[i] == inst)
			stateless[i] = NULL;
	for (int i = 0; i < MAX_INSTANCES; i++)
		if (parsed[i].inst == inst) {
			cfg_free(parsed[i].cfg);
			parsed[i].inst = NULL;
		}
}
