/* spf_eval.c - libspf2 behind our own DNS layer, with the RFC 7208 rules libspf2 lacks */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "spf_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <spf2/spf_dns_rr.h>

#define MAX_FOLLOW 10   /* MX names checked per mx term, PTR names per ptr term */
#define MAX_RECORD 4096 /* longest SPF record we evaluate */
/* Appended to the domain of an a or mx term with a /0 prefix for the
 * client's family (libspf2 cannot express /0): any address matches. */
#define ANY_MARKER ".pdspf-any.invalid"

/* State of the check running on this thread, read by the DNS layer. */
struct ctx {
	const struct pd_spf_engine_cfg *cfg;
	pd_spf_resolver *res;
	unsigned terms, voids, get_spf_calls;
	int aborted;
	int has_override;
	enum pd_spf_result override;
	char problem[128];
	/* names an mx or ptr term is about to look up addresses for */
	char follow[MAX_FOLLOW][256];
	int nfollow, follow_pos;
	int follow_any;        /* the mx term had a /0 prefix */
	int follow_ptr;        /* the names come from a ptr term (RFC 7208 5.5: errors skip a name) */
	int capture_redirect;  /* the next get_spf is a redirect eval_domain follows */
	char redirect_to[256]; /* ... its expanded target */
	char sender[512];      /* the identity, local@domain, for our macro expansion */
	char helo[256];
	int v6; /* client family */
	struct in_addr ip4;
	struct in6_addr ip6;
};

static __thread struct ctx *cur;

static enum pd_spf_result map_result(SPF_result_t r);

/* A remembered outcome: sets of RESULT_WAYS indexed by the key's hash, each
 * set under one of RESULT_LOCKS locks. The key and the outcome's texts are
 * one malloc'd block of their own lengths, about 250 bytes (a copy of the
 * fixed-size outcome was 1.5 kB: 24 MB resident at the default 16384). */
#define RESULT_KEY   400
#define RESULT_WAYS  4
#define RESULT_LOCKS 64
struct rentry {
	unsigned hash; /* of key, compared first */
	enum pd_spf_result result;
	time_t expires;
	char *packed; /* "identity|ip|helo|sender" NUL mechanism NUL problem NUL explanation NUL
		       * comment NUL, or NULL (an empty slot) */
};

struct pd_spf_engine {
	pd_spf_resolver *res;
	struct pd_spf_engine_cfg cfg;
	SPF_dns_server_t *layer;
	SPF_server_t *server;
	struct rentry *results; /* cfg.result_cache slots (a multiple of RESULT_WAYS), or NULL */
	pthread_mutex_t rlock[RESULT_LOCKS];
};

static const char *const result_names[PD_SPF_NRESULTS] = {
    "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror",
};

/* pd_spf_result_name - the RFC 7208 name of a result */
const char *pd_spf_result_name(enum pd_spf_result r)
{
	return (unsigned)r < PD_SPF_NRESULTS ? result_names[r] : "permerror";
}

static void set_override(struct ctx *c, enum pd_spf_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* set_override - fix the final result of this check (first one wins) */
static void set_override(struct ctx *c, enum pd_spf_result r, const char *fmt, ...)
{
	va_list ap;

	if (c->has_override)
		return;
	c->has_override = 1;
	c->override = r;
	va_start(ap, fmt);
	vsnprintf(c->problem, sizeof(c->problem), fmt, ap);
	va_end(ap);
}

/* abort_check - stop the evaluation with result R: every later lookup fails */
static SPF_dns_rr_t *abort_check(struct ctx *c, SPF_dns_server_t *s, const char *domain, ns_type type,
                                 enum pd_spf_result r, const char *why)
{
	set_override(c, r, "%s", why);
	c->aborted = 1;
	return SPF_dns_rr_new_init(s, domain, type, 0, TRY_AGAIN);
}

/* is_void - an answer that counts as a void lookup (RFC 7208 4.6.4) */
static int is_void(const SPF_dns_rr_t *rr)
{
	return rr->herrno == HOST_NOT_FOUND || rr->herrno == NO_DATA ||
	       (rr->herrno == NETDB_SUCCESS && rr->num_rr == 0);
}

/* count_term - one more DNS-querying term; 0, or -1 once over the limit */
static int count_term(struct ctx *c)
{
	if (++c->terms > c->cfg->lookup_limit) {
		set_override(c, PD_SPF_PERMERROR, "more than %u DNS lookups", c->cfg->lookup_limit);
		c->aborted = 1;
		return -1;
	}
	return 0;
}

/* count_void - one more void lookup; 0, or -1 once over the limit */
static int count_void(struct ctx *c)
{
	if (++c->voids > c->cfg->void_limit) {
		set_override(c, PD_SPF_PERMERROR, "more than %u void lookups", c->cfg->void_limit);
		c->aborted = 1;
		return -1;
	}
	return 0;
}

/* remember_follow - note the names whose addresses the term will look up */
static void remember_follow(struct ctx *c, const SPF_dns_rr_t *rr)
{
	c->nfollow = c->follow_pos = 0;
	for (int i = 0; i < rr->num_rr && c->nfollow < MAX_FOLLOW; i++)
		snprintf(c->follow[c->nfollow++], sizeof(c->follow[0]), "%s", rr->rr[i]->mx);
}

/* same_name - equal domain names, ignoring case and a trailing dot */
static int same_name(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la && a[la - 1] == '.')
		la--;
	if (lb && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

/* match_any - a /0 prefix: every address of the answer becomes the client's */
static void match_any(struct ctx *c, SPF_dns_rr_t *rr)
{
	for (int i = 0; i < rr->num_rr; i++) {
		if (rr->rr_type == ns_t_a && !c->v6)
			rr->rr[i]->a = c->ip4;
		else if (rr->rr_type == ns_t_aaaa && c->v6)
			rr->rr[i]->aaaa = c->ip6;
	}
}

/* space_macros - copy IN with every space written as the macro "%_" (libspf2
 * mangles explanation strings containing plain spaces); malloc'd or NULL */
static char *space_macros(const char *in)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = in; *p; p++)
		n += *p == ' ' ? 2 : 1;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	for (o = out; *in; in++) {
		if (*in == ' ') {
			*o++ = '%';
			*o++ = '_';
		} else {
			*o++ = *in;
		}
	}
	*o = 0;
	return out;
}

/* spaces_to_macros - rewrite the TXT strings of an explanation answer with space_macros */
static SPF_dns_rr_t *spaces_to_macros(SPF_dns_rr_t *rr)
{
	for (int i = 0; i < rr->num_rr; i++) {
		char *t = space_macros(rr->rr[i]->txt);

		if (t && SPF_dns_rr_buf_realloc(rr, i, strlen(t) + 1) == SPF_E_SUCCESS)
			strcpy(rr->rr[i]->txt, t);
		free(t);
	}
	return rr;
}

/* layer_lookup - libspf2's DNS entry point: count terms and void lookups, keep the deadline */
static SPF_dns_rr_t *layer_lookup(SPF_dns_server_t *s, const char *domain, ns_type type, int should_cache)
{
	struct ctx *c = cur;
	pd_spf_engine *e = s->hook;
	SPF_dns_rr_t *rr;
	int term = 0, any = 0, follow = 0;
	char name[300];
	size_t len = strlen(domain), ml = sizeof(ANY_MARKER) - 1;

	if (!c || c->aborted) /* outside a check, or stopped */
		return SPF_dns_rr_new_init(s, domain, type, 0, TRY_AGAIN);
	if (len >= sizeof(name))
		return SPF_dns_rr_new_init(s, domain, type, 0, HOST_NOT_FOUND);
	memcpy(name, domain, len + 1);
	if (len > ml && strcasecmp(name + len - ml, ANY_MARKER) == 0) {
		name[len - ml] = 0;
		any = 1;
	}
	switch (type) {
	case ns_t_mx:
	case ns_t_ptr:
		term = 1;
		break;
	case ns_t_a:
	case ns_t_aaaa:
		if (!should_cache) {
			term = 1; /* exists: libspf2 asks without caching */
		} else if (c->follow_pos < c->nfollow && same_name(name, c->follow[c->follow_pos])) {
			c->follow_pos++; /* an address of an MX or PTR name */
			follow = 1;
		} else {
			term = 1;
		}
		break;
	default:
		break; /* TXT for exp= */
	}
	if (term) {
		c->nfollow = c->follow_pos = 0;
		c->follow_any = 0;
		if (count_term(c) < 0)
			return SPF_dns_rr_new_init(s, domain, type, 0, TRY_AGAIN);
	}
	rr = pd_spf_resolve(e->res, s, name, type);
	if (!rr)
		return abort_check(c, s, domain, type, PD_SPF_TEMPERROR, "out of memory");
	if (rr->herrno == TRY_AGAIN) {
		SPF_dns_rr_free(rr);
		if (!term && !follow) /* exp=: no explanation, same result */
			return SPF_dns_rr_new_init(s, domain, type, 0, TRY_AGAIN);
		if (follow && c->follow_ptr && !pd_spf_missed) /* RFC 7208 5.5: that name is skipped */
			return SPF_dns_rr_new_init(s, domain, type, 0, NO_DATA);
		return abort_check(c, s, domain, type, PD_SPF_TEMPERROR,
		                   pd_spf_timed_out ? "DNS timeout" : "DNS server failure");
	}
	if (term && is_void(rr) && count_void(c) < 0) {
		SPF_dns_rr_free(rr);
		return SPF_dns_rr_new_init(s, domain, type, 0, TRY_AGAIN);
	}
	if (type == ns_t_mx && term) {
		if (rr->num_rr > MAX_FOLLOW) {
			SPF_dns_rr_free(rr);
			return abort_check(c, s, domain, type, PD_SPF_PERMERROR, "more than 10 MX names");
		}
		remember_follow(c, rr);
		c->follow_any = any;
		c->follow_ptr = 0;
	} else if (type == ns_t_ptr && term) {
		if (rr->num_rr > MAX_FOLLOW)
			rr->num_rr = MAX_FOLLOW; /* RFC 7208 5.5: ignore the rest */
		remember_follow(c, rr);
		c->follow_ptr = 1;
	} else if (any || (follow && c->follow_any)) {
		match_any(c, rr);
	} else if (type == ns_t_txt && rr->num_rr > 0) {
		rr = spaces_to_macros(rr);
	}
	return rr;
}

/* --- record syntax (RFC 7208 section 4.6.1 and 7.1) --- */

/* macro_expand_len - length of a valid macro-expand at S, 0 if invalid */
static size_t macro_expand_len(const char *s, const char *end, int in_exp)
{
	const char *p;

	if (s + 1 >= end || s[0] != '%')
		return 0;
	if (s[1] == '%' || s[1] == '_' || s[1] == '-')
		return 2;
	if (s[1] != '{' || s + 3 >= end)
		return 0;
	p = s + 2;
	if (!strchr("slodiphvSLODIPHV", *p) || !*p) {
		if (!(in_exp && *p && strchr("crtCRT", *p)))
			return 0;
	}
	p++;
	if (p < end && isdigit((unsigned char)*p)) {
		if (*p == '0')
			return 0; /* a zero label count is not allowed */
		while (p < end && isdigit((unsigned char)*p))
			p++;
	}
	if (p < end && (*p == 'r' || *p == 'R'))
		p++;
	while (p < end && *p && strchr(".-+,/_=", *p))
		p++;
	if (p >= end || *p != '}')
		return 0;
	return (size_t)(p + 1 - s);
}

/* valid_macro_string - is [S,END) a macro-string? *LAST_EXPAND: ends with an expand */
static int valid_macro_string(const char *s, const char *end, int in_exp, int *last_expand)
{
	*last_expand = 0;
	while (s < end) {
		if (*s == '%') {
			size_t n = macro_expand_len(s, end, in_exp);

			if (n == 0)
				return 0;
			s += n;
			*last_expand = 1;
		} else if ((unsigned char)*s >= 0x21 && (unsigned char)*s <= 0x7e) {
			s++;
			*last_expand = 0;
		} else {
			return 0;
		}
	}
	return 1;
}

/* valid_toplabel - RFC 7208 toplabel: alphanumerics and inner hyphens, not all digits */
static int valid_toplabel(const char *s, size_t n)
{
	int alpha = 0, hyphen = 0;

	if (n == 0 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (isalpha((unsigned char)s[i]))
			alpha = 1;
		else if (s[i] == '-')
			hyphen = 1;
		else if (!isdigit((unsigned char)s[i]))
			return 0;
	}
	return alpha || hyphen;
}

/* valid_domain_spec - is [S,END) a domain-spec (macro-string domain-end)? */
static int valid_domain_spec(const char *s, const char *end)
{
	int last_expand;
	const char *t, *dot;

	if (s >= end || !valid_macro_string(s, end, 0, &last_expand))
		return 0;
	if (last_expand)
		return 1;
	t = end;
	if (t > s && t[-1] == '.')
		t--;
	for (dot = t; dot > s && dot[-1] != '.' && dot[-1] != '}'; dot--)
		;
	if (dot == s || dot[-1] != '.')
		return 0;
	return valid_toplabel(dot, (size_t)(t - dot));
}

/* valid_cidr - "/" digits without leading zero, at most MAX; advances *P */
static int valid_cidr(const char **p, const char *end, int max)
{
	const char *s = *p + 1;
	int v = 0, n = 0;

	while (s < end && isdigit((unsigned char)*s) && n < 4) {
		v = v * 10 + (*s - '0');
		s++;
		n++;
	}
	if (n == 0 || (n > 1 && (*p)[1] == '0') || v > max)
		return 0;
	*p = s;
	return 1;
}

/* cidr_start - where the trailing dual-cidr-length of [S,END) starts, or END */
static const char *cidr_start(const char *s, const char *end)
{
	const char *p, *d = end;

	while (d > s && isdigit((unsigned char)d[-1]))
		d--;
	if (d == end || d == s || d[-1] != '/')
		return end;
	p = d - 1;
	if (p > s && p[-1] == '/') { /* "//" ip6-cidr, maybe after an ip4-cidr */
		p--;
		d = p;
		while (d > s && isdigit((unsigned char)d[-1]))
			d--;
		if (d < p && d > s && d[-1] == '/' && !(d - 1 > s && d[-2] == '/'))
			return d - 1;
	}
	return p;
}

/* valid_dual_cidr - [ "/" ip4-cidr ] [ "//" ip6-cidr ] covering [P,END) */
static int valid_dual_cidr(const char *p, const char *end)
{
	if (p < end && p[0] == '/' && !(p + 1 < end && p[1] == '/'))
		if (!valid_cidr(&p, end, 32))
			return 0;
	if (p < end && p + 1 < end && p[0] == '/' && p[1] == '/') {
		p++;
		if (!valid_cidr(&p, end, 128))
			return 0;
	}
	return p == end;
}

/* valid_ip4 - dotted quad without leading zeros */
static int valid_ip4(const char *s, const char *end)
{
	int parts = 0;

	while (s < end) {
		int v = 0, n = 0;
		const char *start = s;

		while (s < end && isdigit((unsigned char)*s) && n < 4) {
			v = v * 10 + (*s++ - '0');
			n++;
		}
		if (n == 0 || v > 255 || (n > 1 && *start == '0'))
			return 0;
		parts++;
		if (s < end) {
			if (*s != '.' || parts == 4)
				return 0;
			s++;
			if (s == end)
				return 0;
		}
	}
	return parts == 4;
}

/* check_term - validate one term; appends its normalised form to OUT. 0 ok, -1 permerror */
static int check_term(const char *t, size_t len, char *why, size_t whylen, int *nredirect, int *nexp, int *has_all)
{
	const char *end = t + len, *p = t, *name, *arg;
	size_t nlen;
	char q = 0;

	/* modifier: name "=" ... (name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )) */
	for (p = t; p < end && (isalnum((unsigned char)*p) || strchr("-_.", *p)); p++)
		;
	if (p < end && *p == '=' && p > t && isalpha((unsigned char)*t)) {
		int last;

		nlen = (size_t)(p - t);
		if (nlen == 8 && strncasecmp(t, "redirect", 8) == 0) {
			if (++*nredirect > 1)
				goto bad;
			if (!valid_domain_spec(p + 1, end))
				goto bad;
		} else if (nlen == 3 && strncasecmp(t, "exp", 3) == 0) {
			if (++*nexp > 1)
				goto bad;
			if (!valid_domain_spec(p + 1, end))
				goto bad;
		} else if (!valid_macro_string(p + 1, end, 0, &last)) {
			goto bad;
		}
		return 0;
	}
	p = t;
	if (*p == '+' || *p == '-' || *p == '~' || *p == '?')
		q = *p++;
	(void)q;
	name = p;
	while (p < end && isalnum((unsigned char)*p))
		p++;
	nlen = (size_t)(p - name);
	arg = p;
#define IS(s) (nlen == sizeof(s) - 1 && strncasecmp(name, s, nlen) == 0)
	if (IS("all")) {
		*has_all = 1;
		if (arg != end)
			goto bad;
	} else if (IS("include") || IS("exists")) {
		if (arg >= end || *arg != ':' || !valid_domain_spec(arg + 1, end))
			goto bad;
	} else if (IS("a") || IS("mx")) {
		const char *c;

		if (arg < end && *arg == ':') {
			c = cidr_start(arg + 1, end);
			if (!valid_domain_spec(arg + 1, c))
				goto bad;
		} else {
			c = arg;
		}
		if (!valid_dual_cidr(c, end))
			goto bad;
	} else if (IS("ptr")) {
		if (arg < end && (*arg != ':' || !valid_domain_spec(arg + 1, end)))
			goto bad;
	} else if (IS("ip4")) {
		const char *c;

		if (arg >= end || *arg != ':')
			goto bad;
		c = memchr(arg, '/', (size_t)(end - arg));
		if (!c)
			c = end;
		if (!valid_ip4(arg + 1, c))
			goto bad;
		if (c < end && (!valid_cidr(&c, end, 32) || c != end))
			goto bad;
	} else if (IS("ip6")) {
		const char *c;
		char buf[INET6_ADDRSTRLEN + 1];
		struct in6_addr a6;

		if (arg >= end || *arg != ':')
			goto bad;
		c = memchr(arg, '/', (size_t)(end - arg));
		if (!c)
			c = end;
		if ((size_t)(c - arg - 1) >= sizeof(buf))
			goto bad;
		memcpy(buf, arg + 1, (size_t)(c - arg - 1));
		buf[c - arg - 1] = 0;
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			goto bad;
		if (c < end && (!valid_cidr(&c, end, 128) || c != end))
			goto bad;
	} else {
		goto bad;
	}
#undef IS
	return 0;
bad:
	snprintf(why, whylen, "invalid term '%.*s'", (int)(len > 60 ? 60 : len), t);
	return -1;
}

/* cidr_value - the number after "/" at P (which ends at END), or -1 */
static int cidr_value(const char *p, const char *end)
{
	int v = 0;

	if (p >= end || *p != '/')
		return -1;
	for (p++; p < end && isdigit((unsigned char)*p); p++)
		v = v * 10 + (*p - '0');
	return v;
}

/* rewrite_term - " term" in the form libspf2 handles right, appended at OUT; its length */
static size_t rewrite_term(const char *t, size_t len, int v6, char *out)
{
	const char *end = t + len, *p = t, *name, *arg;
	char q[2] = "";
	size_t o = 0, nlen;

	if (*p == '+' || *p == '-' || *p == '~' || *p == '?')
		q[0] = *p++;
	name = p;
	while (p < end && isalnum((unsigned char)*p))
		p++;
	nlen = (size_t)(p - name);
	arg = p;
	if (nlen == 0 || (p < end && *p == '=')) { /* exp= (other modifiers never get here) */
		out[o++] = ' ';
		for (size_t i = 0; i < len; i++)
			out[o++] = (char)(t + i < arg ? tolower((unsigned char)t[i]) : t[i]);
		return o;
	}
	if (nlen == 3 && (strncasecmp(name, "ip4", 3) == 0 || strncasecmp(name, "ip6", 3) == 0)) {
		const char *sl = memchr(arg, '/', (size_t)(end - arg));
		int is6 = name[2] == '6';

		if (sl && cidr_value(sl, end) == 0) /* libspf2 cannot say /0: two halves */
			return (size_t)sprintf(
			    out, is6 ? " %sip6:::/1 %sip6:8000::/1" : " %sip4:0.0.0.0/1 %sip4:128.0.0.0/1", q, q);
	}
	if ((nlen == 1 && strncasecmp(name, "a", 1) == 0) || (nlen == 2 && strncasecmp(name, "mx", 2) == 0)) {
		const char *dom = arg < end && *arg == ':' ? arg + 1 : NULL;
		const char *c = cidr_start(dom ? dom : arg, end);
		const char *c6 = NULL;
		int cidr4 = -1, cidr6 = -1, use;
		size_t dlen = dom ? (size_t)(c - dom) : 0;

		if (c < end && !(c + 1 < end && c[1] == '/')) {
			cidr4 = cidr_value(c, end);
			c6 = strstr(c, "//");
		} else if (c < end) {
			c6 = c;
		}
		if (c6 && c6 < end)
			cidr6 = cidr_value(c6 + 1, end);
		use = v6 ? cidr6 : cidr4;
		o += (size_t)sprintf(out, " %s%s", q, nlen == 1 ? "a" : "mx");
		if (use == 0) { /* any address matches: our DNS layer sees the marker */
			if (dom && dlen && dom[dlen - 1] == '.')
				dlen--;
			if (dom) {
				out[o++] = ':';
				memcpy(out + o, dom, dlen);
				o += dlen;
			} else {
				o += (size_t)sprintf(out + o, ":%%{d}");
			}
			o += (size_t)sprintf(out + o, "%s", ANY_MARKER);
			return o;
		}
		if (dom) {
			out[o++] = ':';
			memcpy(out + o, dom, dlen);
			o += dlen;
		}
		if (use > 0)
			o += (size_t)sprintf(out + o, v6 ? "//%d" : "/%d", use);
		return o;
	}
	out[o++] = ' ';
	for (size_t i = 0; i < len; i++)
		out[o++] = (char)(t + i < arg ? tolower((unsigned char)t[i]) : t[i]);
	return o;
}

/* macro_value - the raw value of macro LETTER (lower case) for domain DOMAIN; 0, or -1 if we leave it */
static int macro_value(const struct ctx *c, int letter, const char *domain, char *out, size_t len)
{
	const char *at = strrchr(c->sender, '@');

	switch (letter) {
	case 's':
		snprintf(out, len, "%s", c->sender);
		return 0;
	case 'l':
		snprintf(out, len, "%.*s", at ? (int)(at - c->sender) : 0, c->sender);
		return 0;
	case 'o':
		snprintf(out, len, "%s", at ? at + 1 : c->sender);
		return 0;
	case 'd':
		snprintf(out, len, "%s", domain);
		return 0;
	case 'h':
		snprintf(out, len, "%s", c->helo);
		return 0;
	case 'v':
		snprintf(out, len, "%s", c->v6 ? "ip6" : "in-addr");
		return 0;
	case 'i':
		if (!c->v6) {
			const unsigned char *b = (const unsigned char *)&c->ip4;

			snprintf(out, len, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
		} else {
			size_t o = 0;

			for (int k = 0; k < 16 && o + 4 < len; k++)
				o += (size_t)snprintf(out + o, len - o, "%s%x.%x", k ? "." : "", c->ip6.s6_addr[k] >> 4,
				                      c->ip6.s6_addr[k] & 15);
		}
		return 0;
	default:
		return -1; /* p (needs DNS) and the exp-only letters: libspf2's */
	}
}

/* expand_digit_macros - expand every %{xN...} of IN ourselves (libspf2 loses a character when N
 * is at least the number of parts); the result, escaped for libspf2, goes to OUT; its length */
static size_t expand_digit_macros(const struct ctx *c, const char *domain, const char *in, size_t inlen, char *out,
                                  size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < inlen && o + 1 < outlen;) {
		char val[1100], *parts[256], joined[1100];
		const char *p = in + i + 2, *end = in + inlen;
		int letter, upper, n = 0, reverse = 0, nparts = 0;
		char delims[16] = "";
		size_t nd = 0, j = 0, mlen;

		if (!(in[i] == '%' && i + 2 < inlen && in[i + 1] == '{')) {
			if (in[i] == '%' && i + 1 < inlen) /* %%, %_, %- */
				out[o++] = in[i++];
			out[o++] = in[i++];
			continue;
		}
		letter = tolower((unsigned char)*p);
		upper = isupper((unsigned char)*p);
		for (p++; p < end && isdigit((unsigned char)*p); p++)
			n = n * 10 + (*p - '0');
		if (p < end && (*p == 'r' || *p == 'R')) {
			reverse = 1;
			p++;
		}
		while (p < end && *p != '}' && nd + 1 < sizeof(delims))
			delims[nd++] = *p++;
		delims[nd] = 0;
		mlen = (size_t)(p + 1 - (in + i));
		if (n == 0 || p >= end || macro_value(c, letter, domain, val, sizeof(val)) < 0) {
			if (o + mlen >= outlen)
				break;
			memcpy(out + o, in + i, mlen); /* libspf2 gets it right */
			o += mlen;
			i += mlen;
			continue;
		}
		/* split on the delimiters (default "."), reverse, keep the rightmost N, join with "." */
		for (char *s = val; nparts < 256;) {
			parts[nparts++] = s;
			s += strcspn(s, nd ? delims : ".");
			if (!*s)
				break;
			*s++ = 0;
		}
		if (reverse)
			for (int a = 0, b = nparts - 1; a < b; a++, b--) {
				char *t = parts[a];

				parts[a] = parts[b];
				parts[b] = t;
			}
		joined[0] = 0;
		for (int k = nparts > n ? nparts - n : 0; k < nparts; k++)
			j += (size_t)snprintf(joined + j, j < sizeof(joined) ? sizeof(joined) - j : 0, "%s%s",
			                      j ? "." : "", parts[k]);
		for (const char *s = joined; *s && o + 4 < outlen; s++) {
			unsigned char ch = (unsigned char)*s;

			if (upper && !(isalnum(ch) || strchr("-._~", ch)))
				o += (size_t)snprintf(out + o, outlen - o, "%%%%%02X", ch); /* "%%XX" for libspf2 */
			else if (ch == '%')
				o += (size_t)snprintf(out + o, outlen - o, "%%%%");
			else if (ch == ' ')
				o += (size_t)snprintf(out + o, outlen - o, "%%_");
			else
				out[o++] = (char)ch;
		}
		i += mlen;
	}
	out[o] = 0;
	return o;
}

/* normalise_record - validate TXT as an SPF record; write one "original\tfor-libspf2\n" line per
 * term to OUT (mechanisms in order, then exp=, then redirect= unless "all" is present) */
static int normalise_record(const struct ctx *c, const char *domain, const char *txt, char *out, size_t outlen,
                            char *why, size_t whylen)
{
	const char *p = txt + 6; /* after "v=spf1" */
	int nredirect = 0, nexp = 0, has_all = 0;
	size_t o = 0;
	const char *redirect = NULL, *exp = NULL;
	size_t redirect_len = 0, exp_len = 0;

	for (const char *s = txt; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) {
			snprintf(why, whylen, "invalid character in record");
			return -1;
		}
	out[0] = 0;
	while (*p) {
		const char *t;
		size_t len, w;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		t = p;
		while (*p && *p != ' ')
			p++;
		len = (size_t)(p - t);
		if (check_term(t, len, why, whylen, &nredirect, &nexp, &has_all) < 0)
			return -1;
		if (len > 9 && strncasecmp(t, "redirect=", 9) == 0) {
			redirect = t;
			redirect_len = len;
			continue; /* evaluated last */
		}
		if (len > 4 && strncasecmp(t, "exp=", 4) == 0) {
			exp = t;
			exp_len = len;
			continue;
		}
		{
			const char *eq = memchr(t, '=', len);
			const char *colon = memchr(t, ':', len);

			/* unknown modifiers are ignored (RFC 7208 6) */
			if (eq && (!colon || eq < colon))
				continue;
		}
		if (o + 3 * len + 64 >= outlen) {
			snprintf(why, whylen, "record too long");
			return -1;
		}
		memcpy(out + o, t, len);
		o += len;
		out[o++] = '\t';
		{
			char tmp[MAX_RECORD];

			w = rewrite_term(t, len, c->v6, tmp); /* " term" */
			w = expand_digit_macros(c, domain, tmp + 1, w - 1, out + o, outlen - o - 2);
			o += w;
		}
		out[o++] = '\n';
		out[o] = 0;
	}
	if (exp) {
		if (o + 2 * exp_len + 8 >= outlen) {
			snprintf(why, whylen, "record too long");
			return -1;
		}
		o += (size_t)sprintf(out + o, "exp=%.*s\texp=", (int)exp_len - 4, exp + 4);
		o += expand_digit_macros(c, domain, exp + 4, exp_len - 4, out + o, outlen - o - 2);
		out[o++] = '\n';
		out[o] = 0;
	}
	if (redirect && !has_all) { /* redirect is ignored when "all" is present */
		if (o + 2 * redirect_len + 8 >= outlen) {
			snprintf(why, whylen, "record too long");
			return -1;
		}
		o += (size_t)sprintf(out + o, "redirect=%.*s\tredirect=", (int)redirect_len - 9, redirect + 9);
		o += expand_digit_macros(c, domain, redirect + 9, redirect_len - 9, out + o, outlen - o - 2);
		out[o++] = '\n';
		out[o] = 0;
	}
	return 0;
}

/* flatten - the record libspf2 compiles, from normalise_record's lines, into OUT */
static void flatten(const char *lines, char *out, size_t outlen)
{
	size_t o = (size_t)snprintf(out, outlen, "v=spf1");

	for (const char *l = lines; *l;) {
		const char *tab = strchr(l, '\t'), *nl = strchr(l, '\n');
		size_t n;

		if (!tab || !nl || tab > nl)
			break;
		n = (size_t)(nl - tab - 1);
		if (o + n + 2 >= outlen)
			break;
		out[o++] = ' ';
		memcpy(out + o, tab + 1, n);
		o += n;
		out[o] = 0;
		l = nl + 1;
	}
}

/* fetch_record - look up, select and validate DOMAIN's record into LINES (normalise_record form).
 * On failure sets the override (TOP: no record is "none", else permerror) and returns -1. */
static int fetch_record(pd_spf_engine *e, struct ctx *c, const char *domain, int top, char *lines, size_t len)
{
	SPF_dns_rr_t *rr;
	int found = 0, idx = -1;
	char why[128];

	c->nfollow = c->follow_pos = 0;
	rr = pd_spf_resolve(e->res, e->layer, domain, ns_t_txt);
	if (!rr || rr->herrno == TRY_AGAIN) {
		if (rr)
			SPF_dns_rr_free(rr);
		set_override(c, PD_SPF_TEMPERROR, "%s", pd_spf_timed_out ? "DNS timeout" : "DNS server failure");
		c->aborted = 1;
		return -1;
	}
	if (is_void(rr)) {
		SPF_dns_rr_free(rr);
		if (top) {
			set_override(c, PD_SPF_NONE, "%s", "no SPF record");
			return -1;
		}
		if (count_void(c) == 0)
			set_override(c, PD_SPF_PERMERROR, "%s", "no SPF record at included domain");
		c->aborted = 1;
		return -1;
	}
	for (int i = 0; i < rr->num_rr; i++) {
		const char *t = rr->rr[i]->txt;

		if (strncasecmp(t, "v=spf1", 6) == 0 && (t[6] == 0 || t[6] == ' ')) {
			found++;
			idx = i;
		}
	}
	if (found != 1) {
		SPF_dns_rr_free(rr);
		if (found == 0 && top)
			set_override(c, PD_SPF_NONE, "%s", "no SPF record");
		else
			set_override(c, PD_SPF_PERMERROR, "%s",
			             found ? "multiple SPF records" : "no SPF record at included domain");
		c->aborted = 1;
		return -1;
	}
	if (normalise_record(c, domain, rr->rr[idx]->txt, lines, len, why, sizeof(why)) < 0) {
		SPF_dns_rr_free(rr);
		set_override(c, PD_SPF_PERMERROR, "%s", why);
		c->aborted = 1;
		return -1;
	}
	SPF_dns_rr_free(rr);
	return 0;
}

/* layer_get_spf - libspf2 wants the record of an include (or of a redirect we follow ourselves) */
static SPF_errcode_t layer_get_spf(SPF_server_t *server, SPF_request_t *req, SPF_response_t *resp, SPF_record_t **recp)
{
	struct ctx *c = cur;
	pd_spf_engine *e = server->resolver->hook;
	char *lines, *flat;
	SPF_errcode_t err;

	*recp = NULL;
	if (!c || c->aborted || count_term(c) < 0)
		return SPF_E_DNS_ERROR;
	if (c->capture_redirect) { /* eval_domain evaluates the redirect's target itself */
		snprintf(c->redirect_to, sizeof(c->redirect_to), "%s", req->cur_dom);
		c->capture_redirect = 0;
		return SPF_E_DNS_ERROR;
	}
	lines = malloc(2 * MAX_RECORD);
	if (!lines) {
		set_override(c, PD_SPF_TEMPERROR, "%s", "out of memory");
		c->aborted = 1;
		return SPF_E_NO_MEMORY;
	}
	flat = lines + MAX_RECORD;
	if (fetch_record(e, c, req->cur_dom, 0, lines, MAX_RECORD) < 0) {
		free(lines);
		return SPF_E_DNS_ERROR;
	}
	flatten(lines, flat, MAX_RECORD);
	err = SPF_record_compile(server, resp, recp, flat);
	if (err != SPF_E_SUCCESS) {
		set_override(c, PD_SPF_PERMERROR, "libspf2 cannot compile: %s", SPF_strerror(err));
		c->aborted = 1;
		if (*recp) {
			SPF_record_free(*recp);
			*recp = NULL;
		}
	}
	free(lines);
	return err;
}

/* eval_term - one term (with the record's exp=) through libspf2 at DOMAIN; 1 when it decided */
static int eval_term(pd_spf_engine *e, struct ctx *c, SPF_request_t *req, const char *domain, const char *orig,
                     size_t olen, const char *norm, size_t nlen, const char *exp, int depth, struct pd_spf_outcome *out)
{
	char rec[MAX_RECORD + 600];
	SPF_response_t *resp = SPF_response_new(req);
	SPF_record_t *r = NULL;
	int decided = 1;

	if (!resp) {
		set_override(c, PD_SPF_TEMPERROR, "%s", "out of memory");
		return 1;
	}
	snprintf(rec, sizeof(rec), "v=spf1 %.*s%s%.512s", (int)nlen, norm, exp ? " " : "", exp ? exp : "");
	if (SPF_record_compile(e->server, resp, &r, rec) != SPF_E_SUCCESS || !r) {
		set_override(c, PD_SPF_PERMERROR, "libspf2 cannot compile '%.*s'", (int)(olen > 60 ? 60 : olen), orig);
	} else {
		req->cur_dom = domain;
		resp->spf_record_exp = r;
		SPF_record_interpret(r, req, resp, depth);
		if (c->has_override || c->redirect_to[0]) {
			/* decided by a limit, the deadline, an include's record; or a redirect caught */
		} else if (SPF_response_reason(resp) == SPF_REASON_DEFAULT) {
			decided = 0; /* no match: on to the next term */
		} else {
			out->result = map_result(SPF_response_result(resp));
			if (SPF_response_reason(resp) == SPF_REASON_MECH)
				snprintf(out->mechanism, sizeof(out->mechanism), "%.*s", (int)olen, orig);
			else
				snprintf(out->problem, sizeof(out->problem), "%s",
				         SPF_strerror(SPF_response_errcode(resp)));
			if (out->result == PD_SPF_FAIL && SPF_response_get_explanation(resp))
				snprintf(out->explanation, sizeof(out->explanation), "%s",
				         SPF_response_get_explanation(resp));
		}
	}
	if (r)
		SPF_record_free(r);
	SPF_response_free(resp);
	return decided;
}

/* eval_domain - evaluate FIRST's record term by term (so we know the matching term), following
 * redirect= ourselves; sets OUT, or leaves the decision to the override */
static void eval_domain(pd_spf_engine *e, struct ctx *c, SPF_request_t *req, const char *first,
                        struct pd_spf_outcome *out)
{
	char *lines = malloc(MAX_RECORD), domain[300], expbuf[520];

	if (!lines) {
		set_override(c, PD_SPF_TEMPERROR, "%s", "out of memory");
		return;
	}
	snprintf(domain, sizeof(domain), "%.255s", first);
	for (int depth = 0;; depth++) {
		const char *redirect = NULL, *l;
		size_t redirect_len = 0;
		int have_exp = 0;

		if (fetch_record(e, c, domain, depth == 0, lines, MAX_RECORD) < 0)
			break;
		for (l = lines; *l;) {
			const char *tab = strchr(l, '\t'), *nl = strchr(l, '\n');

			if (strncmp(l, "exp=", 4) == 0) {
				snprintf(expbuf, sizeof(expbuf), "%.*s", (int)(nl - tab - 1), tab + 1);
				have_exp = 1;
			} else if (strncmp(l, "redirect=", 9) == 0) {
				redirect = tab + 1;
				redirect_len = (size_t)(nl - tab - 1);
			}
			l = nl + 1;
		}
		for (l = lines; *l;) {
			const char *tab = strchr(l, '\t'), *nl = strchr(l, '\n');

			if (strncmp(l, "exp=", 4) != 0 && strncmp(l, "redirect=", 9) != 0 &&
			    eval_term(e, c, req, domain, l, (size_t)(tab - l), tab + 1, (size_t)(nl - tab - 1),
			              have_exp ? expbuf : NULL, depth, out))
				goto done;
			l = nl + 1;
		}
		if (!redirect) {
			out->result = PD_SPF_NEUTRAL;
			snprintf(out->mechanism, sizeof(out->mechanism), "%s", "default");
			break;
		}
		/* libspf2 expands the redirect's domain-spec; our get_spf hook catches the name */
		c->capture_redirect = 1;
		c->redirect_to[0] = 0;
		eval_term(e, c, req, domain, redirect, redirect_len, redirect, redirect_len, NULL, depth, out);
		c->capture_redirect = 0;
		if (c->has_override || !c->redirect_to[0])
			break; /* a limit, or libspf2 decided itself (a redirect to the same domain) */
		snprintf(domain, sizeof(domain), "%s", c->redirect_to);
		c->redirect_to[0] = 0;
	}
done:
	free(lines);
}

/* quiet - libspf2 info/warning/debug output goes nowhere */
static void quiet(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	(void)msg;
}

/* pd_spf_engine_new - a libspf2 server using our DNS layer */
pd_spf_engine *pd_spf_engine_new(pd_spf_resolver *r, const struct pd_spf_engine_cfg *cfg, char *errbuf, size_t errlen)
{
	pd_spf_engine *e = calloc(1, sizeof(*e));
	SPF_response_t *resp = NULL;

	if (!e)
		goto nomem;
	e->res = r;
	e->cfg = *cfg;
	for (int i = 0; i < RESULT_LOCKS; i++)
		pthread_mutex_init(&e->rlock[i], NULL);
	e->cfg.result_cache = (cfg->result_cache + RESULT_WAYS - 1) / RESULT_WAYS * RESULT_WAYS;
	if (e->cfg.result_cache && !(e->results = calloc(e->cfg.result_cache, sizeof(*e->results))))
		goto nomem;
	e->layer = calloc(1, sizeof(*e->layer));
	if (!e->layer)
		goto nomem;
	e->layer->destroy = NULL; /* the engine frees the layer */
	e->layer->lookup = layer_lookup;
	e->layer->get_spf = layer_get_spf;
	e->layer->name = "policyd";
	e->layer->hook = e;
	SPF_warning_handler = quiet;
	SPF_info_handler = quiet;
	SPF_debug_handler = quiet;
	e->server = SPF_server_new_dns(e->layer, 0);
	if (!e->server)
		goto nomem;
	/* we count lookups ourselves across include/redirect */
	SPF_server_set_max_dns_mech(e->server, 1000);
	SPF_server_set_max_dns_mx(e->server, 1000);
	SPF_server_set_max_dns_ptr(e->server, 1000);
	if (cfg->receiver && *cfg->receiver)
		SPF_server_set_rec_dom(e->server, cfg->receiver);
	if (cfg->explanation && *cfg->explanation) {
		char *exp = space_macros(cfg->explanation);

		if (!exp)
			goto nomem;
		if (SPF_server_set_explanation(e->server, exp, &resp) != SPF_E_SUCCESS) {
			free(exp);
			snprintf(errbuf, errlen, "invalid explanation macro string");
			if (resp)
				SPF_response_free(resp);
			pd_spf_engine_free(e);
			return NULL;
		}
		free(exp);
		if (resp)
			SPF_response_free(resp);
	}
	return e;
nomem:
	snprintf(errbuf, errlen, "out of memory");
	pd_spf_engine_free(e);
	return NULL;
}

/* pd_spf_engine_free - free the libspf2 server and our layer */
void pd_spf_engine_free(pd_spf_engine *e)
{
	if (!e)
		return;
	if (e->server)
		SPF_server_free(e->server); /* leaves a layer given to SPF_server_new_dns alone */
	free(e->layer);
	for (size_t i = 0; e->results && i < e->cfg.result_cache; i++)
		free(e->results[i].packed);
	free(e->results);
	for (int i = 0; i < RESULT_LOCKS; i++)
		pthread_mutex_destroy(&e->rlock[i]);
	free(e);
}

/* valid_identity - RFC 7208 4.3: a checkable domain (FQDN, sane labels) */
static int valid_identity(const char *d)
{
	size_t len = strlen(d), lab = 0;
	int dots = 0;

	if (len && d[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || d[0] == '[')
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (d[i] == '.') {
			if (lab == 0)
				return 0;
			lab = 0;
			dots++;
		} else if (++lab > 63 || (unsigned char)d[i] <= 0x20 || (unsigned char)d[i] >= 0x7f) {
			return 0;
		}
	}
	return lab > 0 && dots > 0;
}

/* map_result - libspf2's result to ours ("(invalid)" is an error of the record) */
static enum pd_spf_result map_result(SPF_result_t r)
{
	switch (r) {
	case SPF_RESULT_NEUTRAL:
		return PD_SPF_NEUTRAL;
	case SPF_RESULT_PASS:
		return PD_SPF_PASS;
	case SPF_RESULT_FAIL:
		return PD_SPF_FAIL;
	case SPF_RESULT_SOFTFAIL:
		return PD_SPF_SOFTFAIL;
	case SPF_RESULT_NONE:
		return PD_SPF_NONE;
	case SPF_RESULT_TEMPERROR:
		return PD_SPF_TEMPERROR;
	default:
		return PD_SPF_PERMERROR;
	}
}

/* pd_spf_engine_check - evaluate one identity */
/* evaluate - the check itself: the records through libspf2 and our rules */
static void evaluate(pd_spf_engine *e, const char *ip, const char *helo, const char *sender, int helo_identity,
                     struct pd_spf_outcome *out)
{
	struct ctx c;
	SPF_request_t *req = NULL;
	char from[512];
	const char *domain, *at;
	struct in6_addr a6;
	struct in_addr a4;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	c.cfg = &e->cfg;
	c.res = e->res;
	out->result = PD_SPF_NONE;
	if (inet_pton(AF_INET, ip, &c.ip4) == 1) {
		c.v6 = 0;
	} else if (inet_pton(AF_INET6, ip, &c.ip6) == 1) {
		c.v6 = !IN6_IS_ADDR_V4MAPPED(&c.ip6);
		if (!c.v6)
			memcpy(&c.ip4, &c.ip6.s6_addr[12], 4);
	}

	/* the identity: MAIL FROM, or postmaster@HELO for HELO and the null sender */
	if (helo_identity || !sender || !*sender)
		snprintf(from, sizeof(from), "postmaster@%s", helo ? helo : "");
	else
		snprintf(from, sizeof(from), "%s", sender);
	at = strrchr(from, '@');
	domain = at ? at + 1 : from;
	if (!valid_identity(domain)) {
		snprintf(out->problem, sizeof(out->problem), "%s", "no valid domain to check");
		snprintf(out->comment, sizeof(out->comment), "%s: %s has no checkable domain", e->cfg.receiver,
		         helo_identity ? "HELO name" : "sender");
		return;
	}
	req = SPF_request_new(e->server);
	if (!req)
		goto temp;
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		SPF_request_set_ipv4(req, a4);
	} else if (inet_pton(AF_INET6, ip, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			memcpy(&a4, &a6.s6_addr[12], 4);
			SPF_request_set_ipv4(req, a4);
		} else {
			SPF_request_set_ipv6(req, a6);
		}
	} else {
		snprintf(out->problem, sizeof(out->problem), "%s", "invalid client address");
		out->result = PD_SPF_PERMERROR;
		SPF_request_free(req);
		return;
	}
	if (helo && *helo && SPF_request_set_helo_dom(req, helo) != SPF_E_SUCCESS)
		goto temp;
	if (SPF_request_set_env_from(req, from) != 0)
		goto temp;
	snprintf(c.sender, sizeof(c.sender), "%s", from);
	snprintf(c.helo, sizeof(c.helo), "%s", helo ? helo : "");
	cur = &c;
	eval_domain(e, &c, req, domain, out);
	cur = NULL;
	if (c.has_override) {
		out->result = c.override;
		out->mechanism[0] = 0;
		snprintf(out->problem, sizeof(out->problem), "%s", c.problem);
	}
	switch (out->result) {
	case PD_SPF_PASS:
		snprintf(out->comment, sizeof(out->comment),
		         "%.64s: domain of %.100s designates %.46s as permitted sender", e->cfg.receiver, from, ip);
		break;
	case PD_SPF_FAIL:
		snprintf(out->comment, sizeof(out->comment),
		         "%.64s: domain of %.100s does not designate %.46s as permitted sender", e->cfg.receiver, from,
		         ip);
		break;
	case PD_SPF_SOFTFAIL:
		snprintf(out->comment, sizeof(out->comment),
		         "%.64s: domain of transitioning %.100s does not designate %.46s as permitted sender",
		         e->cfg.receiver, from, ip);
		break;
	case PD_SPF_NEUTRAL:
		snprintf(out->comment, sizeof(out->comment),
		         "%.64s: %.46s is neither permitted nor denied by domain of %.100s", e->cfg.receiver, ip, from);
		break;
	case PD_SPF_NONE:
		snprintf(out->comment, sizeof(out->comment), "%.64s: domain of %.100s does not provide an SPF record",
		         e->cfg.receiver, from);
		break;
	case PD_SPF_TEMPERROR:
		snprintf(out->comment, sizeof(out->comment), "%.64s: temporary error checking domain of %.100s: %s",
		         e->cfg.receiver, from, out->problem[0] ? out->problem : "DNS error");
		break;
	default:
		snprintf(out->comment, sizeof(out->comment),
		         "%.64s: permanent error in SPF record of domain of %.100s: %s", e->cfg.receiver, from,
		         out->problem[0] ? out->problem : "invalid record");
		break;
	}
	SPF_request_free(req);
	return;
temp:
	if (req)
		SPF_request_free(req);
	out->result = PD_SPF_TEMPERROR;
	snprintf(out->problem, sizeof(out->problem), "%s", "out of memory");
}

/* result_key - the inputs of a check as one string and its hash; 0 when too long to remember */
static int result_key(const char *ip, const char *helo, const char *sender, int helo_identity, char *key,
                      unsigned *hash)
{
	int n = snprintf(key, RESULT_KEY, "%d|%s|%s|%s", helo_identity, ip, helo ? helo : "",
	                 helo_identity ? "" : sender ? sender : "");

	if (n < 0 || n >= RESULT_KEY)
		return 0;
	*hash = pd_spf_key_hash(key);
	return 1;
}

/* result_pack - KEY and O's texts in one block of their lengths (malloc'd), or NULL */
static char *result_pack(const char *key, const struct pd_spf_outcome *o)
{
	const char *part[5] = {key, o->mechanism, o->problem, o->explanation, o->comment};
	size_t len[5], total = 0;
	char *b, *p;

	for (int i = 0; i < 5; i++)
		total += len[i] = strlen(part[i]) + 1;
	if (!(p = b = malloc(total)))
		return NULL;
	for (int i = 0; i < 5; i++) {
		memcpy(p, part[i], len[i]);
		p += len[i];
	}
	return b;
}

/* result_unpack - the outcome R remembers, into OUT */
static void result_unpack(const struct rentry *r, struct pd_spf_outcome *out)
{
	char *dst[4] = {out->mechanism, out->problem, out->explanation, out->comment};
	size_t cap[4] = {sizeof(out->mechanism), sizeof(out->problem), sizeof(out->explanation),
	                 sizeof(out->comment)};
	const char *p = r->packed + strlen(r->packed) + 1;

	memset(out, 0, sizeof(*out));
	out->result = r->result;
	for (int i = 0; i < 4; i++) {
		snprintf(dst[i], cap[i], "%s", p); /* each was read from a field of that size */
		p += strlen(p) + 1;
	}
}

/* pd_spf_engine_check - a remembered outcome, or evaluate (and remember it
 * until the first answer it used expires) */
void pd_spf_engine_check(pd_spf_engine *e, const char *ip, const char *helo, const char *sender, int helo_identity,
                         struct pd_spf_outcome *out)
{
	char key[RESULT_KEY], *packed, *old;
	unsigned h;
	size_t n;
	struct rentry *set, *slot;
	pthread_mutex_t *lock;
	time_t now;

	if (!e->results || !result_key(ip, helo, sender, helo_identity, key, &h)) {
		evaluate(e, ip, helo, sender, helo_identity, out);
		return;
	}
	n = h % (e->cfg.result_cache / RESULT_WAYS);
	set = &e->results[n * RESULT_WAYS];
	lock = &e->rlock[n % RESULT_LOCKS];
	now = pd_spf_resolver_now(e->res);
	pthread_mutex_lock(lock);
	for (slot = set; slot < set + RESULT_WAYS; slot++)
		if (slot->packed && slot->hash == h && slot->expires > now && strcmp(slot->packed, key) == 0) {
			result_unpack(slot, out);
			pthread_mutex_unlock(lock);
			out->cached = 1;
			return;
		}
	pthread_mutex_unlock(lock);

	pd_spf_valid_until = (time_t)1 << 62;
	evaluate(e, ip, helo, sender, helo_identity, out);
	if (pd_spf_missed || pd_spf_valid_until <= now || out->result == PD_SPF_TEMPERROR)
		return; /* an answer was not in yet, or one expired: nothing to remember */
	if (pd_spf_valid_until > now + 3600) /* no lookup at all (e.g. no checkable domain) */
		pd_spf_valid_until = now + 3600;
	if (!(packed = result_pack(key, out)))
		return; /* out of memory: not remembered */
	pthread_mutex_lock(lock);
	slot = set; /* the one that expires first (an empty or expired one among them) */
	for (struct rentry *r = set + 1; r < set + RESULT_WAYS; r++)
		if (r->expires < slot->expires)
			slot = r;
	old = slot->packed;
	slot->hash = h;
	slot->result = out->result;
	slot->expires = pd_spf_valid_until;
	slot->packed = packed;
	pthread_mutex_unlock(lock);
	free(old);
}
