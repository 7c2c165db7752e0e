/* dns_answer.c - DNS answers as the core keeps them: parsed once from the resolver's packet, shared, refcounted */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * The packet comes from libunbound, which has matched it to its question,
 * followed CNAMEs and checked it; glibc's libresolv parser (ns_initparse,
 * ns_parserr, ns_name_uncompress) reads it here. An answer is one block:
 * the header, its records, then their text.
 */
#include "config.h"
#include "dns_answer.h"
#include "util.h"

#include <arpa/nameser.h>
#include <ctype.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_MAX 65535 /* longest text of one record (a TXT's strings joined) */

/* pd_dns_name - normalised, validated name */
int pd_dns_name(const char *name, char out[256])
{
	size_t len = strlen(name), lab = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (lab == 0)
				return -1;
			lab = 0;
		} else if (++lab > 63) {
			return -1; /* any other octet is allowed in a label (SPF macros make spaces) */
		}
		out[i] = (char)tolower(c);
	}
	out[len] = 0;
	return lab > 0 ? 0 : -1;
}

/* txt_join - the character-strings of a TXT rdata, joined into OUT; length or -1 */
static long txt_join(const unsigned char *rd, size_t rdlen, char *out, size_t outlen)
{
	size_t o = 0, i = 0;

	while (i < rdlen) {
		size_t l = rd[i++];

		if (i + l > rdlen || o + l >= outlen)
			return -1;
		/* a NUL would end the string early: make it an (invalid) control character */
		for (size_t k = 0; k < l; k++)
			out[o + k] = rd[i + k] ? (char)rd[i + k] : '\x01';
		o += l;
		i += l;
	}
	out[o] = 0;
	return (long)o;
}

/* soa_ttl - negative-caching TTL: the SOA's minimum in the authority section, capped by its own TTL; 0 if none */
static unsigned soa_ttl(ns_msg *msg)
{
	ns_rr rr;

	for (int i = 0; i < ns_msg_count(*msg, ns_s_ns); i++) {
		if (ns_parserr(msg, ns_s_ns, i, &rr) < 0)
			break;
		if (ns_rr_type(rr) == ns_t_soa && ns_rr_rdlen(rr) >= 20) {
			const unsigned char *min = ns_rr_rdata(rr) + ns_rr_rdlen(rr) - 4;
			unsigned m = ((unsigned)min[0] << 24) | ((unsigned)min[1] << 16) | ((unsigned)min[2] << 8) | min[3];

			return m < ns_rr_ttl(rr) ? m : ns_rr_ttl(rr);
		}
	}
	return 0;
}

/* one_rr - the text (or address) of record RR of TYPE into TEXT; its length, or -1 to skip it */
static long one_rr(ns_msg *msg, ns_rr *rr, unsigned type, char *text, unsigned char addr[16], unsigned *pref)
{
	const unsigned char *rd = ns_rr_rdata(*rr);
	size_t rdlen = ns_rr_rdlen(*rr);

	switch (type) {
	case PD_DNS_A:
		if (rdlen != 4)
			return -1;
		memcpy(addr, rd, 4);
		text[0] = 0;
		return 0;
	case PD_DNS_AAAA:
		if (rdlen != 16)
			return -1;
		memcpy(addr, rd, 16);
		text[0] = 0;
		return 0;
	case PD_DNS_TXT:
	case PD_DNS_SPF:
		return txt_join(rd, rdlen, text, TEXT_MAX + 1);
	case PD_DNS_MX:
		if (rdlen < 3 || ns_name_uncompress(ns_msg_base(*msg), ns_msg_end(*msg), rd + 2, text, NS_MAXDNAME) < 0)
			return -1;
		*pref = ((unsigned)rd[0] << 8) | rd[1];
		return (long)strlen(text);
	case PD_DNS_PTR:
	case PD_DNS_CNAME:
	case PD_DNS_NS:
		if (ns_name_uncompress(ns_msg_base(*msg), ns_msg_end(*msg), rd, text, NS_MAXDNAME) < 0)
			return -1;
		return (long)strlen(text);
	default:
		return -1;
	}
}

/* blob_new - one block for N records and TEXTLEN bytes of their text and the name */
static pd_dns_blob *blob_new(const char *name, unsigned type, int status, size_t n, size_t textlen, time_t now)
{
	size_t nl = strlen(name) + 1;
	pd_dns_blob *b = pd_xcalloc(1, sizeof(*b) + n * sizeof(pd_dns_rr) + textlen + nl);
	char *name_at = (char *)(b + 1) + n * sizeof(pd_dns_rr) + textlen;

	atomic_init(&b->refs, 1);
	b->status = status;
	b->type = type;
	b->stored = now;
	b->n = n;
	b->rr = (pd_dns_rr *)(b + 1);
	memcpy(name_at, name, nl);
	b->name = name_at;
	return b;
}

/* pd_dns_blob_status - an answer without records */
pd_dns_blob *pd_dns_blob_status(const char *name, unsigned type, int status, time_t now)
{
	return blob_new(name, type, status, 0, 0, now);
}

/* clamp - the TTL within the configured bounds */
static unsigned clamp(unsigned ttl, unsigned lo, unsigned hi)
{
	return ttl < lo ? lo : ttl > hi ? hi : ttl;
}

/* pd_dns_blob_parse - the answer in PKT */
pd_dns_blob *pd_dns_blob_parse(const char *name, unsigned type, int rcode, const unsigned char *pkt, size_t len,
			       unsigned min_ttl, unsigned max_ttl, unsigned neg_ttl, time_t now)
{
	ns_msg msg;
	ns_rr rr;
	char *text = NULL;
	size_t n = 0, textlen = 0;
	unsigned minttl = ~0u;
	pd_dns_blob *b = NULL;
	char *at = NULL;
	int have_msg = pkt && len >= 12 && ns_initparse(pkt, (int)len, &msg) == 0;

	if (have_msg && rcode == ns_r_noerror) /* a cached failure comes with rcode 0 and the packet's own */
		rcode = ns_msg_getflag(msg, ns_f_rcode);
	if (rcode == ns_r_nxdomain) {
		b = pd_dns_blob_status(name, type, PD_DNS_NXDOMAIN, now);
		b->ttl = clamp(have_msg ? soa_ttl(&msg) : 0, min_ttl, neg_ttl);
		return b;
	}
	if (rcode != ns_r_noerror || !have_msg)
		return pd_dns_blob_status(name, type, PD_DNS_SERVFAIL, now);
	/* two passes: count and measure, then fill one block */
	text = pd_xmalloc(TEXT_MAX + 1);
	for (int pass = 0; pass < 2; pass++) {
		size_t k = 0, off = 0;

		for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
			unsigned char addr[16];
			unsigned pref = 0;
			long l;

			if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
				break;
			if (ns_rr_class(rr) != ns_c_in)
				continue;
			if (ns_rr_ttl(rr) < minttl)
				minttl = ns_rr_ttl(rr); /* CNAMEs on the way count too */
			if (ns_rr_type(rr) != type || (l = one_rr(&msg, &rr, type, text, addr, &pref)) < 0)
				continue;
			if (pass == 0) {
				n++;
				textlen += (size_t)l + 1;
				continue;
			}
			b->rr[k].type = type;
			b->rr[k].pref = pref;
			memcpy(b->rr[k].addr, addr, 16);
			memcpy(at + off, text, (size_t)l + 1);
			b->rr[k].text = at + off;
			b->rr[k].len = (size_t)l;
			off += (size_t)l + 1;
			k++;
		}
		if (pass == 0) {
			b = blob_new(name, type, PD_DNS_OK, n, textlen, now);
			at = (char *)(b->rr + n);
		}
	}
	free(text);
	if (n == 0) /* NODATA: negative caching from the SOA */
		b->ttl = clamp(soa_ttl(&msg), min_ttl, neg_ttl);
	else
		b->ttl = clamp(minttl, min_ttl, max_ttl);
	return b;
}

/* pd_dns_blob_ref - one more holder */
pd_dns_blob *pd_dns_blob_ref(pd_dns_blob *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

/* pd_dns_blob_unref - one holder less; the last frees it */
void pd_dns_blob_unref(pd_dns_blob *b)
{
	if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		free(b);
}
