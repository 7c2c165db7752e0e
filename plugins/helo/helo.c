/* helo.c - the helo plugin: HELO randomisation prevention, our own names refused, scored HELO DNS checks */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * In this order, for each request with a HELO name:
 *   1. a client blocked earlier (HRP, or own_block) is refused while its
 *      block lasts (the state service, so every MX host sharing it agrees);
 *   2. a HELO that is one of our own names or addresses (own_names, and the
 *      server_address the client connected to) is refused, and the client
 *      blocked for own_block when that is set;
 *   3. scored checks, each a named contribution to the request's score
 *      ("helo:not_fqdn"): a bare IP address, not a FQDN, the name does not
 *      resolve, resolves but not to the client, resolves to the client,
 *      the client's name is the HELO. A SERVFAIL or timeout never counts
 *      against the sender: no resolution score without both answers;
 *   4. HELO randomisation prevention: the distinct HELO names of a client
 *      are kept hrp_window in the state service; more than hrp_limit block
 *      it for hrp_block; the block starts a new history generation, so the
 *      client starts afresh when it ends (host->store_del removes values,
 *      not member sets).
 * It rejects alone when its own score reaches reject_score (0: never, a
 * score plugin later in the chain decides). The A/AAAA lookups go through
 * the core; a check that waits changes and logs nothing: the state service
 * is written only by the run that decides.
 */
#include <policyd/plugin.h>

#include "cidr.h"
#include "duration.h"
#include "template.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define HELO_MAX 255 /* longest HELO name we look at */
#define TEXT_MAX 400 /* longest reply text */

/* The scored checks: option names and score labels. */
enum chk { C_BARE_IP, C_NOT_FQDN, C_UNRESOLVED, C_MISMATCH, C_MATCH, C_NAME_MATCH, C_N };

static const char *const chk_opt[C_N] = {"bare_ip_score",  "not_fqdn_score", "unresolved_score",
					 "mismatch_score", "match_score",    "name_match_score"};
static const char *const chk_label[C_N] = {"bare_ip", "not_fqdn", "unresolved", "mismatch", "match", "name_match"};

struct helo {
	double score[C_N];
	double reject_score;
	char *reject_text, *own_text, *block_text;
	char **own;
	size_t nown;
	long hrp_limit, hrp_window, hrp_block, own_block;
	int use_store;
};

/* ------------------------------------------------------------ options */

/* cb_text - a reply text: printable, bounded, known placeholders */
static int cb_text(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char *why = !*value ? "must not be empty" : strlen(value) > TEXT_MAX ? "longer than 400 characters" : NULL;

	for (const char *p = value; *p && !why; p++) {
		if ((unsigned char)*p < 32 || *p == 127)
			why = "contains a control character";
		else if (*p == '%' && (++p, *p != 'a' && *p != 'h' && *p != 's' && *p != '%'))
			why = "unknown placeholder (use %a client address, %h HELO name, %s score, %% a percent sign)";
	}
	if (why) {
		cfg_error(cfg, "%s: %s", opt->name, why);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

/* cb_own - an own_names entry: a host name or an address */
static int cb_own(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	size_t n = strlen(value);

	for (const char *p = value; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-_:[]", *p))
			n = 0;
	if (n == 0 || n > HELO_MAX) {
		cfg_error(cfg, "%s: \"%.100s\" is not a host name or address", opt->name, value);
		return -1;
	}
	*(const char **)result = value;
	return 0;
}

static cfg_opt_t options[] = {
    CFG_INT("hrp_limit", 10, CFGF_NONE),
    CFG_INT_CB("hrp_window", 7 * 86400, CFGF_NONE, pd_cfg_duration),
    CFG_INT_CB("hrp_block", 14 * 86400, CFGF_NONE, pd_cfg_duration),
    CFG_STR_LIST_CB("own_names", "{}", CFGF_NONE, cb_own),
    CFG_INT_CB("own_block", 0, CFGF_NONE, pd_cfg_duration),
    CFG_FLOAT("bare_ip_score", 2.5, CFGF_NONE),
    CFG_FLOAT("not_fqdn_score", 2, CFGF_NONE),
    CFG_FLOAT("unresolved_score", 1.5, CFGF_NONE),
    CFG_FLOAT("mismatch_score", 0.5, CFGF_NONE),
    CFG_FLOAT("match_score", -1.25, CFGF_NONE),
    CFG_FLOAT("name_match_score", -1, CFGF_NONE),
    CFG_FLOAT("reject_score", 5, CFGF_NONE),
    CFG_STR_CB("reject_text", "554 5.7.1 <%h>: Helo command rejected: HELO score %s", CFGF_NONE, cb_text),
    CFG_STR_CB("own_text", "554 5.7.1 <%h>: Helo command rejected: you are not me", CFGF_NONE, cb_text),
    CFG_STR_CB("block_text", "554 5.7.1 Client host [%a] blocked: too many different HELO names", CFGF_NONE,
	       cb_text),
    CFG_END(),
};

/* helo_validate - numbers within bounds */
static int helo_validate(cfg_t *sec)
{
	long lim = cfg_getint(sec, "hrp_limit");
	double rs = cfg_getfloat(sec, "reject_score");

	if (lim < 0 || lim > 100000) {
		cfg_error(sec, "hrp_limit = %ld: must be from 0 (off) to 100000", lim);
		return -1;
	}
	if (lim > 0 && (cfg_getint(sec, "hrp_window") < 1 || cfg_getint(sec, "hrp_block") < 1)) {
		cfg_error(sec, "hrp_window and hrp_block must be at least 1 s when hrp_limit is set");
		return -1;
	}
	if (!isfinite(rs) || rs < 0 || rs > 1000) {
		cfg_error(sec, "reject_score = %g: must be from 0 (never reject alone) to 1000", rs);
		return -1;
	}
	for (int i = 0; i < C_N; i++) {
		double v = cfg_getfloat(sec, chk_opt[i]);

		if (!isfinite(v) || fabs(v) > 1000) {
			cfg_error(sec, "%s = %g: must be from -1000 to 1000", chk_opt[i], v);
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ lifecycle */

/* helo_free - free per-instance data */
static void helo_free(struct helo *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nown; i++)
		free(p->own[i]);
	free(p->own);
	free(p->reject_text);
	free(p->own_text);
	free(p->block_text);
	free(p);
}

/* norm_name - lower-cased NAME without brackets or a final dot into OUT (CAP); its length */
static size_t norm_name(const char *name, char *out, size_t cap)
{
	size_t n = 0, len = strlen(name);

	if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
		name++;
		len -= 2;
		if (len > 5 && strncasecmp(name, "ipv6:", 5) == 0)
			name += 5, len -= 5;
	}
	if (len && name[len - 1] == '.')
		len--;
	for (size_t i = 0; i < len && n + 1 < cap; i++)
		out[n++] = (char)tolower((unsigned char)name[i]);
	out[n] = 0;
	return n;
}

/* helo_init - the section into per-instance data */
static int helo_init(pd_instance *inst)
{
	const pd_host *h = inst->host;
	cfg_t *sec = inst->cfg;
	struct helo *p = calloc(1, sizeof(*p));
	unsigned nown = cfg_size(sec, "own_names");

	if (!p)
		goto oom;
	for (int i = 0; i < C_N; i++)
		p->score[i] = cfg_getfloat(sec, chk_opt[i]);
	p->reject_score = cfg_getfloat(sec, "reject_score");
	p->hrp_limit = cfg_getint(sec, "hrp_limit");
	p->hrp_window = cfg_getint(sec, "hrp_window");
	p->hrp_block = cfg_getint(sec, "hrp_block");
	p->own_block = cfg_getint(sec, "own_block");
	p->use_store = p->hrp_limit > 0 || p->own_block > 0;
	p->reject_text = strdup(cfg_getstr(sec, "reject_text"));
	p->own_text = strdup(cfg_getstr(sec, "own_text"));
	p->block_text = strdup(cfg_getstr(sec, "block_text"));
	p->own = calloc(nown + 1, sizeof(*p->own));
	if (!p->reject_text || !p->own_text || !p->block_text || !p->own)
		goto oom;
	for (unsigned i = 0; i < nown; i++) {
		char buf[HELO_MAX + 1];

		norm_name(cfg_getnstr(sec, "own_names", i), buf, sizeof(buf));
		if (!(p->own[p->nown] = strdup(buf)))
			goto oom;
		p->nown++;
	}
	/* the state service on Redis waits for the network: the worker threads then */
	inst->blocking = p->use_store && h->store_remote(inst) > 0;
	inst->data = p;
	h->log(inst, PD_LOG_INFO, "%zu own name(s)%s; HRP %s", p->nown, p->own_block ? " (blocked when used)" : "",
	       p->hrp_limit ? "on" : "off");
	if (p->hrp_limit)
		h->log(inst, PD_LOG_INFO, "HRP: more than %ld HELO names in %ld s block a client for %ld s", p->hrp_limit,
		       p->hrp_window, p->hrp_block);
	return 0;
oom:
	h->log(inst, PD_LOG_ERR, "out of memory");
	helo_free(p);
	return -1;
}

/* helo_fini - free per-instance data */
static void helo_fini(pd_instance *inst)
{
	helo_free(inst->data);
}

/* ------------------------------------------------------------ checks */

/* format_text - FMT with %a, %h, %s, %% filled in, into OUT (CAP) */
static void format_text(const char *fmt, const char *addr, const char *helo, double score, char *out, size_t cap)
{
	char sc[32];
	const char *values[3];

	snprintf(sc, sizeof(sc), "%.2f", score);
	values[0] = addr;
	values[1] = helo;
	values[2] = sc;
	pd_template(out, cap, fmt, "ahs", values);
}

/* answer - reply with TEXT filled in: as is when it starts with a code, else after REJECT */
static void answer(const pd_host *h, pd_reply *reply, const char *fmt, const char *addr, const char *helo,
		   double score)
{
	char text[PD_REPLY_MAX + 1];

	format_text(fmt, addr, helo, score, text, sizeof(text));
	if (isdigit((unsigned char)text[0]))
		h->reply(reply, "%s", text);
	else
		h->reply(reply, "REJECT %s", text);
}

/* safe_helo - HELO as a reply and store token: printable ASCII only ('?' for the rest) */
static void safe_helo(const char *helo, char *out, size_t cap)
{
	size_t n = 0;

	for (; *helo && n + 1 < cap; helo++)
		out[n++] = (unsigned char)*helo > 32 && (unsigned char)*helo < 127 && *helo != '%' ? *helo : '?';
	out[n] = 0;
}

/* is_own - is normalised HELO one of our names, or the server address? */
static int is_own(const struct helo *p, const char *helo, const char *server)
{
	unsigned char a[16], b[16];
	int fa, fb;

	for (size_t i = 0; i < p->nown; i++) {
		if (strcmp(p->own[i], helo) == 0)
			return 1;
		if (pd_addr_parse(p->own[i], &fa, a) == 0 && pd_addr_parse(helo, &fb, b) == 0 && fa == fb &&
		    memcmp(a, b, fa == AF_INET ? 4 : 16) == 0)
			return 1;
	}
	if (server && pd_addr_parse(server, &fa, a) == 0 && pd_addr_parse(helo, &fb, b) == 0 && fa == fb &&
	    memcmp(a, b, fa == AF_INET ? 4 : 16) == 0)
		return 1;
	return 0;
}

/* has_addr - does answer A hold the client's address (FAM/ADDR)? */
static int has_addr(const pd_dns_answer *a, int fam, const unsigned char *addr)
{
	for (size_t i = 0; a && i < a->n; i++)
		if ((fam == AF_INET && a->rr[i].type == PD_DNS_A && memcmp(a->rr[i].addr, addr, 4) == 0) ||
		    (fam == AF_INET6 && a->rr[i].type == PD_DNS_AAAA && memcmp(a->rr[i].addr, addr, 16) == 0))
			return 1;
	return 0;
}

/* negative - the name has no address of that type (NXDOMAIN, or no record) */
static int negative(int st, const pd_dns_answer *a)
{
	return st == PD_DNS_NXDOMAIN || st == PD_DNS_BADNAME || (st == PD_DNS_OK && a && a->n == 0);
}

/* A client's record in the state service ("client:ADDRESS"): the end of
 * its block (0: none), the generation of its HELO history (a block starts
 * a new one: the old set is never read again and expires), the cause. */
struct client_state {
	long long until;
	unsigned long gen;
	char why[8]; /* "hrp", "own" */
};

/* state_get - read the client's record into *ST (zeroed when absent); 0, or -1 (store failed) */
static int state_get(pd_instance *inst, const char *key, struct client_state *st)
{
	pd_store_value v;
	char buf[80];
	int rc = inst->host->store_get(inst, key, &v);

	memset(st, 0, sizeof(*st));
	if (rc < 0)
		return -1;
	if (rc == 1) {
		snprintf(buf, sizeof(buf), "%.*s", (int)(v.len < sizeof(buf) - 1 ? v.len : sizeof(buf) - 1),
			 (const char *)v.data);
		if (sscanf(buf, "%lld %lu %7s", &st->until, &st->gen, st->why) != 3)
			memset(st, 0, sizeof(*st)); /* not ours: as if absent */
	}
	return 0;
}

/* state_block - block the client until NOW + FOR_S for WHY, history generation GEN; 0 or -1 */
static int state_block(pd_instance *inst, const struct helo *p, const char *key, time_t now, long for_s,
		       unsigned long gen, const char *why)
{
	char buf[80];
	/* kept past the block for the history window: the generation must
	 * outlive the sets of the generations before it */
	long ttl = for_s + (p->hrp_limit > 0 ? p->hrp_window : 0);
	int n = snprintf(buf, sizeof(buf), "%lld %lu %s", (long long)(now + for_s), gen, why);

	return inst->host->store_set(inst, key, buf, (size_t)n, (unsigned)ttl);
}

/* helo_check - blocks, own names, scored DNS checks, HRP */
static int helo_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	struct helo *p = inst->data;
	const pd_host *h = inst->host;
	const char *raw = h->attr(req, "helo_name");
	const char *caddr = h->attr(req, "client_address");
	const char *cname = h->attr(req, "client_name");
	char helo[HELO_MAX + 1], shown[HELO_MAX + 1], addr[64], key[96], why[200], esc[300];
	const char *label;
	double s[C_N] = {0}, sum = 0;
	int hit[C_N] = {0};
	unsigned char a[16], ha[16];
	int fam, hfam, literal;
	struct client_state st;
	time_t now = h->now();
	size_t n;

	if (!raw || !*raw || !caddr || pd_addr_parse(caddr, &fam, a) != 0)
		return PD_CHECK_OK; /* no HELO (or no client address): nothing to check */
	inet_ntop(fam, a, addr, sizeof(addr));
	n = norm_name(raw, helo, sizeof(helo));
	safe_helo(raw, shown, sizeof(shown));
	h->escape(esc, sizeof(esc), raw, 200);
	literal = raw[0] == '[';

	/* 1. blocked earlier (read only: this may run again after a DNS wait) */
	memset(&st, 0, sizeof(st));
	if (p->use_store) {
		snprintf(key, sizeof(key), "client:%s", addr);
		if (state_get(inst, key, &st) != 0)
			return PD_CHECK_ERROR; /* logged by the state service; on_error applies */
		if (st.until > (long long)now) {
			answer(h, reply, strcmp(st.why, "own") == 0 ? p->own_text : p->block_text, addr, shown, 0);
			h->log(inst, PD_LOG_NOTICE, "reject client [%s] helo=<%s>: blocked (%s) for %lld s more", addr, esc,
			       st.why, st.until - (long long)now);
			return PD_CHECK_OK;
		}
	}
	/* 2. our own name or address */
	if (n && is_own(p, helo, h->attr(req, "server_address"))) {
		if (p->own_block > 0 && state_block(inst, p, key, now, p->own_block, st.gen, "own") != 0)
			return PD_CHECK_ERROR;
		answer(h, reply, p->own_text, addr, shown, 0);
		h->log(inst, PD_LOG_NOTICE, "reject client [%s] helo=<%s>: our own name or address%s", addr, esc,
		       p->own_block > 0 ? "; blocked" : "");
		return PD_CHECK_OK;
	}
	/* 3. the scored checks */
	if (!literal && pd_addr_parse(helo, &hfam, ha) == 0) {
		hit[C_BARE_IP] = 1;
	} else if (literal) {
		if (pd_addr_parse(helo, &hfam, ha) == 0 && !(hfam == fam && memcmp(ha, a, fam == AF_INET ? 4 : 16) == 0))
			hit[C_MISMATCH] = 1; /* an address literal that is not the client's */
	} else if (!strchr(helo, '.')) {
		hit[C_NOT_FQDN] = 1;
	} else {
		const pd_dns_answer *r4, *r6;
		int s4 = h->dns(req, helo, PD_DNS_A, &r4), s6 = h->dns(req, helo, PD_DNS_AAAA, &r6);

		if (s4 == PD_DNS_PENDING || s6 == PD_DNS_PENDING)
			return PD_CHECK_WAIT; /* nothing changed, nothing logged */
		if (has_addr(r4, fam, a) || has_addr(r6, fam, a))
			hit[C_MATCH] = 1;
		else if (negative(s4, r4) && negative(s6, r6))
			hit[C_UNRESOLVED] = 1;
		else if ((s4 == PD_DNS_OK || negative(s4, r4)) && (s6 == PD_DNS_OK || negative(s6, r6)))
			hit[C_MISMATCH] = 1; /* both answered, neither with the client: SERVFAIL never counts */
	}
	if (cname && strcmp(cname, "unknown") != 0) {
		char cn[HELO_MAX + 1];

		norm_name(cname, cn, sizeof(cn));
		if (*cn && strcmp(cn, helo) == 0)
			hit[C_NAME_MATCH] = 1;
	}
	/* 4. HELO randomisation prevention (state written only here, by the deciding run) */
	if (p->hrp_limit > 0 && n) {
		char hk[96], member[HELO_MAX + 1];
		long long count = 0;

		snprintf(hk, sizeof(hk), "hrp:%lu:%s", st.gen, addr);
		safe_helo(helo, member, sizeof(member));
		if (h->store_members(inst, hk, member, (unsigned)p->hrp_window, &count) != 0)
			return PD_CHECK_ERROR;
		if (count > p->hrp_limit) {
			/* a new history generation: once the block ends the client starts afresh */
			if (state_block(inst, p, key, now, p->hrp_block, st.gen + 1, "hrp") != 0)
				return PD_CHECK_ERROR;
			answer(h, reply, p->block_text, addr, shown, 0);
			h->log(inst, PD_LOG_NOTICE,
			       "reject client [%s] helo=<%s>: %lld distinct HELO names within %ld s (limit %ld); "
			       "blocked for %ld s",
			       addr, esc, count, p->hrp_window, p->hrp_limit, p->hrp_block);
			return PD_CHECK_OK;
		}
	}
	/* 5. the score */
	why[0] = 0;
	for (int i = 0; i < C_N; i++)
		if (hit[i] && p->score[i] != 0) {
			char lab[96];
			size_t len = strlen(why);

			s[i] = p->score[i];
			sum += s[i];
			snprintf(lab, sizeof(lab), "%s:%s", inst->name, chk_label[i]);
			h->score_add(req, lab, s[i]);
			snprintf(why + len, sizeof(why) - len, "%s%s=%+g", len ? " " : "", chk_label[i], s[i]);
		}
	label = why[0] ? why : "nothing scored";
	if (p->reject_score > 0 && sum >= p->reject_score) {
		answer(h, reply, p->reject_text, addr, shown, sum);
		h->log(inst, PD_LOG_NOTICE, "reject client [%s] helo=<%s>: score %.2f >= reject_score %.2f (%s)", addr, esc,
		       sum, p->reject_score, label);
		return PD_CHECK_OK;
	}
	if (why[0])
		h->log(inst, PD_LOG_INFO, "client [%s] helo=<%s>: score %.2f (%s)", addr, esc, sum, label);
	else if (inst->verbose)
		h->log(inst, PD_LOG_DEBUG, "client [%s] helo=<%s>: nothing scored", addr, esc);
	return PD_CHECK_OK;
}

/* The one export. */
const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "helo",
    .version = "1.0",
    .description = "HELO randomisation prevention, own names refused, scored HELO DNS checks",
    .flags = PD_PLUGIN_SKIP_SASL | PD_PLUGIN_STATE,
    .default_states = "RCPT",
    .options = options,
    .validate = helo_validate,
    .init = helo_init,
    .check = helo_check,
    .fini = helo_fini,
};
