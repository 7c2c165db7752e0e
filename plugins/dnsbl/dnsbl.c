/* dnsbl.c - the dnsbl plugin: DNS block and allow lists for the client address, sender domain, HELO and client name */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Every configured zone is asked in parallel through the core's DNS
 * service (host->dns), so one request costs one round trip whatever the
 * number of zones, and the core's deadline (the section's timeout, for all
 * zones together) bounds the wait. An answer scores by the zone's codes
 * ("127.0.0.2-127.0.0.3=4.35"); an answer in no range, and the lists'
 * error codes 127.255.255.0/24, never hit. Each zone's RFC 5782 test
 * entries are asked beside the request's own names every canary_interval:
 * a zone that lists 127.0.0.1 (or INVALID), or lacks 127.0.0.2 (or TEST),
 * is disabled until a later check finds it healthy. A zone that timed out
 * timeout_limit times in a row is skipped for timeout_skip seconds.
 * Contributions go to the request's score ("dnsbl:zone"); the plugin
 * rejects alone when its own sum reaches reject_score (0: never, a score
 * plugin later in the chain decides).
 *
 * A check that waits for DNS changes nothing and logs nothing: all zone
 * state is updated, and every line logged, by the run that decides.
 */
#include <policyd/plugin.h>

#include "cidr.h"
#include "duration.h"
#include "template.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_ZONES     32  /* zones per instance */
#define MAX_CODES     32  /* codes entries per zone */
#define NAME_MAX_LEN  253 /* longest DNS name we ask */
#define LOG_EVERY     60  /* seconds between two "odd answer" lines of one zone */
#define TEXT_MAX      400 /* longest reject_text */

enum ztype { Z_CLIENT, Z_SENDER, Z_HELO, Z_CLIENT_NAME };

static const char *const ztype_names[] = {"client", "sender_domain", "helo", "client_name", NULL};

/* Why a zone is disabled by its canary (0: it is not). */
enum canary_state { C_OK, C_LISTS_ALL, C_NO_TEST, C_REFUSES };

/* One codes entry: answers LO..HI (host order) add WEIGHT. */
struct code {
	uint32_t lo, hi;
	double weight;
	char text[48];
};

/* One zone and its run-time state. */
struct zone {
	char *name;
	char label[96]; /* "instance:zone", the score label */
	enum ztype type;
	struct code codes[MAX_CODES];
	size_t ncodes;
	double miss_score;
	int canary;
	/* state shared by the checks (lock for the canary, atomics for the rest) */
	int cstate;              /* enum canary_state, under lock */
	time_t canary_at;        /* last time the canary answered, under lock */
	atomic_uint timeouts;    /* in a row */
	atomic_llong skip_until; /* not asked before this time */
	atomic_llong odd_logged[2]; /* last "odd answer" line: [0] no range, [1] error code */
	atomic_ulong odd_quiet[2];  /* odd answers not logged since */
};

struct dnsbl {
	struct zone zones[MAX_ZONES];
	size_t nzones;
	double reject_score;
	char *reject_text;
	unsigned timeout_limit;
	long timeout_skip, canary_interval;
	pthread_mutex_t lock;
};

/* ------------------------------------------------------------ options */

/* parse_ip4 - dotted quad TEXT (LEN bytes) in host order; 0 or -1 */
static int parse_ip4(const char *text, size_t len, uint32_t *out)
{
	char buf[16];
	struct in_addr a;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len);
	buf[len] = 0;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

/* parse_code - "A=W", "A-B=W" or "A/N=W" into C; NULL, or why not */
static const char *parse_code(const char *v, struct code *c)
{
	const char *eq = strrchr(v, '='), *dash, *slash;
	char *end;
	double w;

	if (!eq)
		return "needs =WEIGHT (e.g. \"127.0.0.2-127.0.0.3=4.35\")";
	errno = 0;
	w = strtod(eq + 1, &end);
	if (eq[1] == 0 || *end || errno || !isfinite(w) || fabs(w) > 1000)
		return "the weight is not a number from -1000 to 1000";
	dash = memchr(v, '-', (size_t)(eq - v));
	slash = memchr(v, '/', (size_t)(eq - v));
	if (slash) {
		pd_cidr net;
		char buf[32];
		size_t n = (size_t)(eq - v);

		if (n >= sizeof(buf))
			return "not an IPv4 network";
		memcpy(buf, v, n);
		buf[n] = 0;
		if (pd_cidr_parse_strict(buf, &net, NULL) != 0 || net.family != AF_INET)
			return "not an IPv4 network (such as 127.0.0.0/24)";
		c->lo = (uint32_t)net.addr[0] << 24 | (uint32_t)net.addr[1] << 16 | (uint32_t)net.addr[2] << 8 |
			net.addr[3];
		c->hi = c->lo | (net.prefix ? (uint32_t)((1ull << (32 - net.prefix)) - 1) : 0xffffffffu);
	} else if (dash) {
		if (parse_ip4(v, (size_t)(dash - v), &c->lo) || parse_ip4(dash + 1, (size_t)(eq - dash - 1), &c->hi))
			return "not an IPv4 range (such as 127.0.0.2-127.0.0.3)";
		if (c->hi < c->lo)
			return "the range ends before it starts";
	} else {
		if (parse_ip4(v, (size_t)(eq - v), &c->lo))
			return "not an IPv4 address (such as 127.0.0.2)";
		c->hi = c->lo;
	}
	c->weight = w;
	snprintf(c->text, sizeof(c->text), "%.*s", (int)(eq - v), v);
	return NULL;
}

/* cb_code - one codes entry, checked while parsing (file:line) */
static int cb_code(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	struct code c;
	const char *why = parse_code(value, &c);

	if (why) {
		cfg_error(cfg, "%s: \"%.100s\": %s", opt->name, value, why);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/* cb_type - a zone's type */
static int cb_type(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	for (int i = 0; ztype_names[i]; i++)
		if (strcmp(value, ztype_names[i]) == 0) {
			*(const char **)result = value;
			return 0;
		}
	cfg_error(cfg, "%s: \"%.100s\" must be client, sender_domain, helo or client_name", opt->name, value);
	return -1;
}

/* cb_text - reject_text: printable, bounded, known placeholders */
static int cb_text(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *why = NULL;

	if (strlen(value) > TEXT_MAX)
		why = "longer than 400 characters";
	for (const char *p = value; *p && !why; p++) {
		if ((unsigned char)*p < 32 || *p == 127)
			why = "contains a control character";
		else if (*p == '%' && (++p, *p != 'a' && *p != 'z' && *p != 's' && *p != '%'))
			why = "unknown placeholder (use %a client address, %z zones, %s score, %% a percent sign)";
	}
	if (!why && !*value)
		why = "must not be empty";
	if (why) {
		cfg_error(cfg, "%s: %s", opt->name, why);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

static cfg_opt_t zone_opts[] = {
    CFG_STR_CB("type", "client", CFGF_NONE, cb_type),
    CFG_STR_LIST_CB("codes", NULL, CFGF_NODEFAULT, cb_code),
    CFG_FLOAT("miss_score", 0, CFGF_NONE),
    CFG_BOOL("canary", cfg_true, CFGF_NONE),
    CFG_END(),
};

static cfg_opt_t options[] = {
    CFG_SEC("zone", zone_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_FLOAT("reject_score", 5, CFGF_NONE),
    CFG_STR_CB("reject_text", "554 5.7.1 Service unavailable; client [%a] blocked using %z", CFGF_NONE, cb_text),
    CFG_INT("timeout_limit", 3, CFGF_NONE),
    CFG_INT_CB("timeout_skip", 300, CFGF_NONE, pd_cfg_duration),
    CFG_INT_CB("canary_interval", 900, CFGF_NONE, pd_cfg_duration),
    CFG_END(),
};

/* valid_zone_name - a DNS name of letters, digits, '-', '_' and dots */
static int valid_zone_name(const char *z)
{
	size_t n = strlen(z), label = 0;

	if (!n || n > 200 || z[0] == '.' || z[n - 1] == '.')
		return 0;
	for (const char *p = z; *p; p++) {
		if (*p == '.') {
			if (!label)
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return 1;
}

/* dnsbl_validate - the section as a whole: zones, their codes, the numbers */
static int dnsbl_validate(cfg_t *sec)
{
	unsigned nz = cfg_size(sec, "zone");
	double rs = cfg_getfloat(sec, "reject_score");
	long tl = cfg_getint(sec, "timeout_limit");

	if (nz == 0) {
		cfg_error(sec, "dnsbl: no zone configured (zone \"zen.spamhaus.org\" { type = \"client\" codes = {...} })");
		return -1;
	}
	if (nz > MAX_ZONES) {
		cfg_error(sec, "dnsbl: %u zones: at most %d", nz, MAX_ZONES);
		return -1;
	}
	for (unsigned i = 0; i < nz; i++) {
		cfg_t *z = cfg_getnsec(sec, "zone", i);
		const char *name = cfg_title(z);
		double miss = cfg_getfloat(z, "miss_score");

		if (!valid_zone_name(name)) {
			cfg_error(z, "zone \"%.100s\": not a DNS zone name", name);
			return -1;
		}
		if (cfg_size(z, "codes") == 0) {
			cfg_error(z, "zone \"%s\": codes missing (e.g. codes = { \"127.0.0.2=1\" }): "
				     "which answers are listings is the list's documentation's to say",
				  name);
			return -1;
		}
		if (cfg_size(z, "codes") > MAX_CODES) {
			cfg_error(z, "zone \"%s\": at most %d codes", name, MAX_CODES);
			return -1;
		}
		if (!isfinite(miss) || fabs(miss) > 1000) {
			cfg_error(z, "zone \"%s\": miss_score must be from -1000 to 1000", name);
			return -1;
		}
	}
	if (!isfinite(rs) || rs < 0 || rs > 1000) {
		cfg_error(sec, "reject_score = %g: must be from 0 (never reject alone) to 1000", rs);
		return -1;
	}
	if (tl < 1 || tl > 1000) {
		cfg_error(sec, "timeout_limit = %ld: must be from 1 to 1000", tl);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ lifecycle */

/* dnsbl_free - free per-instance data */
static void dnsbl_free(struct dnsbl *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nzones; i++)
		free(d->zones[i].name);
	free(d->reject_text);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* dnsbl_init - the zones and settings of the section */
static int dnsbl_init(pd_instance *inst)
{
	const pd_host *h = inst->host;
	cfg_t *sec = inst->cfg;
	struct dnsbl *d = calloc(1, sizeof(*d));
	long timeout = cfg_getint(sec, "timeout");

	if (!d) {
		h->log(inst, PD_LOG_ERR, "out of memory");
		return -1;
	}
	pthread_mutex_init(&d->lock, NULL);
	d->reject_score = cfg_getfloat(sec, "reject_score");
	d->reject_text = strdup(cfg_getstr(sec, "reject_text"));
	d->timeout_limit = (unsigned)cfg_getint(sec, "timeout_limit");
	d->timeout_skip = cfg_getint(sec, "timeout_skip");
	d->canary_interval = cfg_getint(sec, "canary_interval");
	if (!d->reject_text)
		goto oom;
	for (unsigned i = 0; i < cfg_size(sec, "zone") && i < MAX_ZONES; i++) {
		cfg_t *zs = cfg_getnsec(sec, "zone", i);
		struct zone *z = &d->zones[d->nzones];
		const char *type = cfg_getstr(zs, "type");

		if (!(z->name = strdup(cfg_title(zs))))
			goto oom;
		d->nzones++;
		for (int t = 0; ztype_names[t]; t++)
			if (strcmp(type, ztype_names[t]) == 0)
				z->type = (enum ztype)t;
		snprintf(z->label, sizeof(z->label), "%s:%s", inst->name, z->name);
		z->miss_score = cfg_getfloat(zs, "miss_score");
		z->canary = cfg_getbool(zs, "canary");
		for (unsigned k = 0; k < cfg_size(zs, "codes") && k < MAX_CODES; k++) {
			const char *why = parse_code(cfg_getnstr(zs, "codes", k), &z->codes[z->ncodes]);

			if (why) { /* cb_code let it pass: cannot happen */
				h->log(inst, PD_LOG_ERR, "zone %s: codes: %s", z->name, why);
				dnsbl_free(d);
				return -1;
			}
			z->ncodes++;
		}
	}
	if (d->nzones == 0) {
		h->log(inst, PD_LOG_ERR, "no zone configured");
		dnsbl_free(d);
		return -1;
	}
	if (timeout > 0) /* the section's timeout: the deadline of all zones together */
		inst->dns_timeout_ms = (unsigned)timeout * 1000u;
	inst->blocking = 0; /* DNS through the core only: runs on the network threads */
	inst->data = d;
	h->log(inst, PD_LOG_INFO, "%zu zone(s), deadline %u ms for all, %s", d->nzones, inst->dns_timeout_ms,
	       d->reject_score > 0 ? "rejects alone at its reject_score" : "adds scores only (reject_score = 0)");
	return 0;
oom:
	h->log(inst, PD_LOG_ERR, "out of memory");
	dnsbl_free(d);
	return -1;
}

/* dnsbl_fini - free per-instance data */
static void dnsbl_fini(pd_instance *inst)
{
	dnsbl_free(inst->data);
}

/* ------------------------------------------------------------ checks */

/* What one request asks of one zone. */
struct ask {
	int skip;                      /* nothing to ask (no key, skipped, disabled) */
	int st;                        /* status of the listing query */
	const pd_dns_answer *ans;
	int canary;                    /* canary asked this time */
	int st_bad, st_good;           /* canary: must-not-be-listed, must-be-listed */
	const pd_dns_answer *bad, *good;
	char key[NAME_MAX_LEN + 1];    /* the name asked */
};

/* The request's keys, one per zone type ("" when it has none). */
struct keys {
	char k[4][NAME_MAX_LEN + 1];
	char addr[64]; /* client address as text (for %a and the log) */
};

/* valid_domain - a name we may ask: letters, digits, '-', '_', dots, no empty label */
static int valid_domain(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (!label)
				return 0;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return 1;
}

/* domain_key - lower-cased copy of domain S (a final dot dropped) into OUT, or "" */
static void domain_key(char *out, const char *s)
{
	size_t n;

	out[0] = 0;
	if (!s)
		return;
	n = strlen(s);
	if (n && s[n - 1] == '.')
		n--;
	if (!valid_domain(s, n))
		return;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[n] = 0;
}

/* request_keys - the client's reversed address, sender domain, HELO and name */
static void request_keys(const pd_host *h, pd_request *req, struct keys *k)
{
	const char *caddr = h->attr(req, "client_address");
	const char *sender = h->attr(req, "sender");
	const char *helo = h->attr(req, "helo_name");
	const char *cname = h->attr(req, "client_name");
	unsigned char a[16];
	int fam;

	memset(k, 0, sizeof(*k));
	if (caddr && pd_addr_parse(caddr, &fam, a) == 0) {
		if (fam == AF_INET) {
			snprintf(k->k[Z_CLIENT], sizeof(k->k[0]), "%u.%u.%u.%u", a[3], a[2], a[1], a[0]);
			inet_ntop(AF_INET, a, k->addr, sizeof(k->addr));
		} else {
			static const char hex[] = "0123456789abcdef";
			char *p = k->k[Z_CLIENT];

			for (int i = 15; i >= 0; i--) { /* nibbles, least significant first (RFC 5782 2.4) */
				*p++ = hex[a[i] & 15];
				*p++ = '.';
				*p++ = hex[a[i] >> 4];
				*p++ = i ? '.' : 0;
			}
			inet_ntop(AF_INET6, a, k->addr, sizeof(k->addr));
		}
	}
	if (sender && *sender) {
		const char *at = strrchr(sender, '@');

		if (at)
			domain_key(k->k[Z_SENDER], at + 1);
	}
	if (helo && *helo && helo[0] != '[' && pd_addr_parse(helo, &fam, a) != 0)
		domain_key(k->k[Z_HELO], helo);
	if (cname && strcmp(cname, "unknown") != 0)
		domain_key(k->k[Z_CLIENT_NAME], cname);
}

/* lookup - host->dns for KEY under ZONE; the status, *ANS set (NULL if pending) */
static int lookup(const pd_host *h, pd_request *req, const char *key, const char *zone, char *buf, size_t cap,
		  const pd_dns_answer **ans)
{
	int n = snprintf(buf, cap, "%s.%s", key, zone);

	*ans = NULL;
	if (n < 0 || (size_t)n >= cap || n > NAME_MAX_LEN)
		return PD_DNS_BADNAME;
	return h->dns(req, buf, PD_DNS_A, ans);
}

/* listed - does answer A hold an A record (a listing of some kind)? */
static int listed(int st, const pd_dns_answer *a)
{
	return st == PD_DNS_OK && a && a->n > 0;
}

/* rr_ip - an A record's address in host order */
static uint32_t rr_ip(const pd_dns_rr *rr)
{
	return (uint32_t)rr->addr[0] << 24 | (uint32_t)rr->addr[1] << 16 | (uint32_t)rr->addr[2] << 8 | rr->addr[3];
}

/* is_error_code - 127.255.255.0/24: the list's "you may not ask" answers */
static int is_error_code(uint32_t ip)
{
	return (ip >> 8) == 0x7fffffu;
}

/* ip_text - dotted quad of IP into BUF */
static const char *ip_text(uint32_t ip, char *buf, size_t cap)
{
	snprintf(buf, cap, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
	return buf;
}

/* canary_verdict - what the canary's answers say of zone Z: C_*, or -1 unknown */
static int canary_verdict(const struct ask *q)
{
	if (listed(q->st_bad, q->bad))
		return C_LISTS_ALL;
	if (q->st_good == PD_DNS_NXDOMAIN || (q->st_good == PD_DNS_OK && q->good && q->good->n == 0))
		return q->st_bad == PD_DNS_NXDOMAIN || q->st_bad == PD_DNS_OK ? C_NO_TEST : -1;
	if (listed(q->st_good, q->good)) {
		for (size_t i = 0; i < q->good->n; i++)
			if (!is_error_code(rr_ip(&q->good->rr[i])))
				return q->st_bad == PD_DNS_NXDOMAIN || q->st_bad == PD_DNS_OK ? C_OK : -1;
		return C_REFUSES;
	}
	return -1; /* SERVFAIL, timeout: we do not know */
}

/* apply_canary - take the canary's verdict for Z; returns 1 if Z is usable */
static int apply_canary(pd_instance *inst, struct dnsbl *d, struct zone *z, const struct ask *q, time_t now)
{
	static const char *const why[] = {
	    "",
	    "it lists the RFC 5782 test entry that must never be listed (a wildcard, or a dead list answering "
	    "everything)",
	    "its RFC 5782 test entry that must be listed is missing (a dead list?)",
	    "it answers its RFC 5782 test entry with an error code 127.255.255.x (it refuses our queries: "
	    "check the list's terms and the resolver)",
	};
	int v = q->canary ? canary_verdict(q) : -1;
	int usable;

	pthread_mutex_lock(&d->lock);
	if (v >= 0) {
		z->canary_at = now;
		if (v != z->cstate) {
			if (v == C_OK)
				inst->host->log(inst, PD_LOG_NOTICE, "zone %s enabled again: its RFC 5782 test entries "
								     "answer as they must",
						z->name);
			else
				inst->host->log(inst, PD_LOG_WARNING, "zone %s disabled: %s", z->name, why[v]);
			z->cstate = v;
		}
	}
	usable = z->cstate == C_OK;
	pthread_mutex_unlock(&d->lock);
	return usable;
}

/* odd_answer - log an answer that is no listing (rate-limited per zone) */
static void odd_answer(pd_instance *inst, struct zone *z, const char *key, uint32_t ip, time_t now)
{
	char esc[300], ipb[16];
	int kind = is_error_code(ip);
	long long last = atomic_load_explicit(&z->odd_logged[kind], memory_order_relaxed);
	unsigned long quiet;

	if ((last && now - last < LOG_EVERY) ||
	    !atomic_compare_exchange_strong_explicit(&z->odd_logged[kind], &last, (long long)now,
						     memory_order_relaxed, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&z->odd_quiet[kind], 1, memory_order_relaxed);
		return;
	}
	quiet = atomic_exchange_explicit(&z->odd_quiet[kind], 0, memory_order_relaxed);
	inst->host->log(inst, PD_LOG_WARNING, "zone %s answered %s for %s: %s, no hit (%lu more such answers not logged)",
			z->name, ip_text(ip, ipb, sizeof(ipb)), inst->host->escape(esc, sizeof(esc), key, 200),
			kind ? "an error code (the list refuses the query: check its terms and the "
					    "resolver)"
					  : "in none of the zone's codes",
			quiet);
}

/* score_zone - the weight of Z's answer A for KEY; sets *HIT; appends the codes to HITS */
static double score_zone(pd_instance *inst, struct zone *z, const char *key, const pd_dns_answer *a, time_t now,
			 int *hit, char *hits, size_t cap)
{
	uint32_t used = 0;
	double sum = 0;

	*hit = 0;
	for (size_t i = 0; i < a->n; i++) {
		uint32_t ip = rr_ip(&a->rr[i]);
		int matched = 0;

		if (a->rr[i].type != PD_DNS_A)
			continue;
		if (!is_error_code(ip))
			for (size_t c = 0; c < z->ncodes; c++)
				if (ip >= z->codes[c].lo && ip <= z->codes[c].hi) {
					matched = 1;
					if (!(used & (1u << c))) { /* an entry counts once per request */
						char ipb[16];
						size_t len = strlen(hits);

						used |= 1u << c;
						sum += z->codes[c].weight;
						snprintf(hits + len, cap - len, "%s%s=%s(%+g)", len ? " " : "", z->name,
							 ip_text(ip, ipb, sizeof(ipb)), z->codes[c].weight);
					}
				}
		if (!matched)
			odd_answer(inst, z, key, ip, now);
		else
			*hit = 1;
	}
	return sum;
}

/* format_text - FMT with %a, %z, %s, %% filled in, into OUT (CAP) */
static void format_text(const char *fmt, const char *addr, const char *zones, double score, char *out, size_t cap)
{
	char sc[32];
	const char *values[3];

	snprintf(sc, sizeof(sc), "%.2f", score);
	values[0] = addr;
	values[1] = zones;
	values[2] = sc;
	pd_template(out, cap, fmt, "azs", values);
}

/* dnsbl_check - ask every zone at once; score, and reject alone at reject_score */
static int dnsbl_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	struct dnsbl *d = inst->data;
	const pd_host *h = inst->host;
	struct ask q[MAX_ZONES];
	struct keys k;
	time_t now = h->now();
	int pending = 0;
	char hits[PD_REPLY_MAX], zones[PD_REPLY_MAX], name[NAME_MAX_LEN + 64], esc[200];
	double total = 0;
	int any = 0;

	request_keys(h, req, &k);
	/* 1. ask everything (listing and due canaries) without changing anything */
	for (size_t i = 0; i < d->nzones; i++) {
		struct zone *z = &d->zones[i];
		const char *key = k.k[z->type];
		int due, off;

		memset(&q[i], 0, sizeof(q[i]));
		q[i].skip = 1;
		if (now < (time_t)atomic_load_explicit(&z->skip_until, memory_order_relaxed))
			continue; /* it kept timing out: not waited on for a while */
		pthread_mutex_lock(&d->lock);
		due = z->canary && (z->canary_at == 0 || now - z->canary_at >= d->canary_interval);
		if (!z->canary)
			z->cstate = C_OK;
		off = z->cstate != C_OK;
		pthread_mutex_unlock(&d->lock);
		if (due) {
			int dom = z->type != Z_CLIENT;

			q[i].canary = 1;
			q[i].st_bad = lookup(h, req, dom ? "invalid" : "1.0.0.127", z->name, name, sizeof(name), &q[i].bad);
			q[i].st_good = lookup(h, req, dom ? "test" : "2.0.0.127", z->name, name, sizeof(name), &q[i].good);
			pending |= q[i].st_bad == PD_DNS_PENDING || q[i].st_good == PD_DNS_PENDING;
		}
		if (!*key || (off && !due))
			continue; /* nothing to ask, or disabled until its next canary */
		q[i].skip = 0;
		snprintf(q[i].key, sizeof(q[i].key), "%s", key);
		q[i].st = lookup(h, req, key, z->name, name, sizeof(name), &q[i].ans);
		pending |= q[i].st == PD_DNS_PENDING;
	}
	if (pending)
		return PD_CHECK_WAIT; /* the core runs us again when the answers are in, or at the deadline */

	/* 2. every answer is in (or timed out): update the zones, score, decide */
	hits[0] = zones[0] = 0;
	for (size_t i = 0; i < d->nzones; i++) {
		struct zone *z = &d->zones[i];
		int usable, hit = 0;
		double s = 0;

		if (q[i].skip && !q[i].canary)
			continue;
		usable = apply_canary(inst, d, z, &q[i], now);
		if (q[i].skip)
			continue;
		if (q[i].st == PD_DNS_TIMEOUT) {
			unsigned n = atomic_fetch_add_explicit(&z->timeouts, 1, memory_order_relaxed) + 1;

			if (n >= d->timeout_limit) {
				atomic_store_explicit(&z->skip_until, (long long)(now + d->timeout_skip),
						      memory_order_relaxed);
				atomic_store_explicit(&z->timeouts, 0, memory_order_relaxed);
				h->log(inst, PD_LOG_WARNING, "zone %s timed out %u time(s) in a row: skipped for %ld s",
				       z->name, n, d->timeout_skip);
			} else if (inst->verbose) {
				h->log(inst, PD_LOG_DEBUG, "zone %s timed out (%u in a row)", z->name, n);
			}
			continue;
		}
		if (q[i].st == PD_DNS_OK || q[i].st == PD_DNS_NXDOMAIN)
			atomic_store_explicit(&z->timeouts, 0, memory_order_relaxed);
		if (!usable)
			continue; /* disabled by its canary: its answers mean nothing */
		if (listed(q[i].st, q[i].ans))
			s = score_zone(inst, z, q[i].key, q[i].ans, now, &hit, hits, sizeof(hits));
		if (hit) {
			size_t len = strlen(zones);

			if (s > 0)
				snprintf(zones + len, sizeof(zones) - len, "%s%s", len ? ", " : "", z->name);
			h->score_add(req, z->label, s);
			total += s;
			any = 1;
		} else if (z->miss_score != 0 && (q[i].st == PD_DNS_NXDOMAIN ||
						  (q[i].st == PD_DNS_OK && q[i].ans && q[i].ans->n == 0))) {
			/* not listed (SERVFAIL and timeouts never count as a miss) */
			h->score_add(req, z->label, z->miss_score);
			total += z->miss_score;
		}
	}
	h->escape(esc, sizeof(esc), h->attr(req, "helo_name") ? h->attr(req, "helo_name") : "", 100);
	if (d->reject_score > 0 && total >= d->reject_score && zones[0]) {
		char text[PD_REPLY_MAX + 1];

		format_text(d->reject_text, k.addr, zones, total, text, sizeof(text));
		if (isdigit((unsigned char)text[0]))
			h->reply(reply, "%s", text);
		else
			h->reply(reply, "REJECT %s", text);
		/* one line per decision: what listed it and why that decides */
		h->log(inst, PD_LOG_NOTICE, "reject client [%s] helo=<%s>: listed: %s; score %.2f >= reject_score %.2f",
		       k.addr, esc, hits, total, d->reject_score);
		return PD_CHECK_OK;
	}
	if (any)
		h->log(inst, PD_LOG_INFO, "client [%s] helo=<%s> listed: %s; score %.2f", k.addr, esc, hits, total);
	if (inst->verbose && !any)
		h->log(inst, PD_LOG_DEBUG, "client [%s] not listed; score %.2f", k.addr, total);
	return PD_CHECK_OK;
}

/* The one export. */
const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "dnsbl",
    .version = "1.0",
    .description = "DNS block and allow lists (client address, sender domain, HELO, client name) in parallel",
    .flags = PD_PLUGIN_SKIP_SASL,
    .default_states = "RCPT",
    .options = options,
    .validate = dnsbl_validate,
    .init = dnsbl_init,
    .check = dnsbl_check,
    .fini = dnsbl_fini,
};
