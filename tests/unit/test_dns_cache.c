/* test_dns_cache.c - unit tests of DNS answers (parsing, TTLs) and of the shared answer cache */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "dns_answer.h"
#include "dns_cache.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* put_name - NAME in wire form at P; returns the bytes written */
static size_t put_name(unsigned char *p, const char *name)
{
	size_t o = 0;

	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);

		p[o++] = (unsigned char)l;
		memcpy(p + o, name, l);
		o += l;
		name += l + (dot ? 1 : 0);
	}
	p[o++] = 0;
	return o;
}

/* put_rr - a resource record OWNER TYPE TTL RDATA */
static size_t put_rr(unsigned char *p, const char *owner, unsigned type, unsigned ttl, const void *rd, size_t rdlen)
{
	size_t o = put_name(p, owner);

	p[o++] = (unsigned char)(type >> 8);
	p[o++] = (unsigned char)type;
	p[o++] = 0;
	p[o++] = 1; /* IN */
	p[o++] = (unsigned char)(ttl >> 24);
	p[o++] = (unsigned char)(ttl >> 16);
	p[o++] = (unsigned char)(ttl >> 8);
	p[o++] = (unsigned char)ttl;
	p[o++] = (unsigned char)(rdlen >> 8);
	p[o++] = (unsigned char)rdlen;
	memcpy(p + o, rd, rdlen);
	return o + rdlen;
}

/* packet - a response for QNAME/QTYPE with RCODE, AN answers and NS authority records already built */
static size_t packet(unsigned char *p, const char *qname, unsigned qtype, int rcode, int an, int ns,
		     const unsigned char *body, size_t bodylen)
{
	size_t o = 12;

	memset(p, 0, 12);
	p[2] = 0x81; /* QR RD */
	p[3] = (unsigned char)(0x80 | rcode);
	p[5] = 1;
	p[7] = (unsigned char)an;
	p[9] = (unsigned char)ns;
	o += put_name(p + o, qname);
	p[o++] = (unsigned char)(qtype >> 8);
	p[o++] = (unsigned char)qtype;
	p[o++] = 0;
	p[o++] = 1;
	memcpy(p + o, body, bodylen);
	return o + bodylen;
}

/* fnv_bucket - the bucket the old unkeyed resolver cache put NAME in (FNV-1a, 1024 buckets) */
static unsigned fnv_bucket(const char *name, unsigned type)
{
	unsigned h = 2166136261u ^ type;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h & 1023;
}

int main(void)
{
	unsigned char body[2048], pkt[4096], rd[300];
	size_t bl, n;
	pd_dns_blob *b;
	char norm[256];
	time_t now = 1700000000;

	/* names: normalised and checked */
	CHECK(pd_dns_name("Mail.Example.COM.", norm) == 0 && strcmp(norm, "mail.example.com") == 0);
	CHECK(pd_dns_name("a..b", norm) < 0 && pd_dns_name("", norm) < 0 && pd_dns_name(".", norm) < 0);
	CHECK(pd_dns_name("macro%percent  space.example.com", norm) == 0); /* any octet in a label */
	{
		char big[300];

		memset(big, 'a', 64);
		strcpy(big + 64, ".example");
		CHECK(pd_dns_name(big, norm) < 0); /* a 64-octet label */
	}

	/* A records behind a CNAME: the least TTL of the chain, clamped */
	{
		unsigned char a1[4] = {192, 0, 2, 1}, a2[4] = {192, 0, 2, 2}, cn[64];
		size_t cl = put_name(cn, "real.example");

		bl = put_rr(body, "alias.example", PD_DNS_CNAME, 50, cn, cl);
		bl += put_rr(body + bl, "real.example", PD_DNS_A, 300, a1, 4);
		bl += put_rr(body + bl, "real.example", PD_DNS_A, 200, a2, 4);
		n = packet(pkt, "alias.example", PD_DNS_A, 0, 3, 0, body, bl);
		b = pd_dns_blob_parse("alias.example", PD_DNS_A, 0, pkt, n, 0, 86400, 3600, now);
		CHECK(b->status == PD_DNS_OK && b->n == 2 && b->ttl == 50);
		CHECK(b->rr[0].addr[3] == 1 && b->rr[1].addr[3] == 2);
		pd_dns_blob_unref(b);
		b = pd_dns_blob_parse("alias.example", PD_DNS_A, 0, pkt, n, 60, 86400, 3600, now);
		CHECK(b->ttl == 60); /* min_ttl */
		pd_dns_blob_unref(b);
	}
	/* TXT: strings joined, a NUL made visible */
	rd[0] = 5;
	memcpy(rd + 1, "v=spf", 5);
	rd[6] = 4;
	memcpy(rd + 7, "1 -a", 4);
	rd[11] = 2;
	rd[12] = 'l';
	rd[13] = 0;
	bl = put_rr(body, "t.example", PD_DNS_TXT, 100, rd, 14);
	n = packet(pkt, "t.example", PD_DNS_TXT, 0, 1, 0, body, bl);
	b = pd_dns_blob_parse("t.example", PD_DNS_TXT, 0, pkt, n, 0, 86400, 3600, now);
	CHECK(b->n == 1 && b->rr[0].len == 11 && memcmp(b->rr[0].text, "v=spf1 -al\x01", 11) == 0);
	pd_dns_blob_unref(b);
	/* NXDOMAIN and NODATA: the SOA's minimum, capped by negative_ttl */
	{
		unsigned char soa[128];
		size_t sl = put_name(soa, "ns.example");

		sl += put_name(soa + sl, "root.example");
		memset(soa + sl, 0, 16);
		soa[sl + 19] = 120; /* minimum 120 */
		sl += 20;
		bl = put_rr(body, "example", 6, 900, soa, sl);
		n = packet(pkt, "nx.example", PD_DNS_A, 3, 0, 1, body, bl);
		b = pd_dns_blob_parse("nx.example", PD_DNS_A, 3, pkt, n, 0, 86400, 3600, now);
		CHECK(b->status == PD_DNS_NXDOMAIN && b->ttl == 120);
		pd_dns_blob_unref(b);
		b = pd_dns_blob_parse("nx.example", PD_DNS_A, 3, pkt, n, 0, 86400, 60, now);
		CHECK(b->ttl == 60);
		pd_dns_blob_unref(b);
		n = packet(pkt, "nodata.example", PD_DNS_A, 0, 0, 1, body, bl);
		b = pd_dns_blob_parse("nodata.example", PD_DNS_A, 0, pkt, n, 0, 86400, 3600, now);
		CHECK(b->status == PD_DNS_OK && b->n == 0 && b->ttl == 120);
		pd_dns_blob_unref(b);
		/* a failure libunbound gives from its cache: rcode 0, the packet says SERVFAIL */
		n = packet(pkt, "sf.example", PD_DNS_A, 2, 0, 0, body, 0);
		b = pd_dns_blob_parse("sf.example", PD_DNS_A, 0, pkt, n, 0, 86400, 3600, now);
		CHECK(b->status == PD_DNS_SERVFAIL);
		pd_dns_blob_unref(b);
	}

	/* the cache: TTLs, the reader's own limit, failures never kept */
	pd_dns_cache_init(100000);
	b = pd_dns_blob_status("x.example", PD_DNS_A, PD_DNS_OK, now);
	b->ttl = 300;
	pd_dns_cache_put(b, 0);
	pd_dns_blob_unref(b);
	b = pd_dns_cache_get("x.example", PD_DNS_A, 0, 86400, now + 299);
	CHECK(b != NULL);
	pd_dns_blob_unref(b);
	CHECK(pd_dns_cache_get("x.example", PD_DNS_A, 0, 86400, now + 300) == NULL); /* expired */
	CHECK(pd_dns_cache_get("x.example", PD_DNS_A, 1, 86400, now) == NULL);     /* another resolver */
	b = pd_dns_blob_status("y.example", PD_DNS_A, PD_DNS_OK, now);
	b->ttl = 300;
	pd_dns_cache_put(b, 0);
	pd_dns_blob_unref(b);
	CHECK(pd_dns_cache_get("y.example", PD_DNS_A, 0, 10, now + 11) == NULL); /* the reader believes 10 s only */
	b = pd_dns_blob_status("s.example", PD_DNS_A, PD_DNS_SERVFAIL, now);
	b->ttl = 300;
	pd_dns_cache_put(b, 0);
	pd_dns_blob_unref(b);
	CHECK(pd_dns_cache_get("s.example", PD_DNS_A, 0, 86400, now) == NULL);

	/* crafted names: 2,000 that all fell into one bucket of the old unkeyed
	 * FNV-1a cache spread out under the keyed hash (issue 12.17) */
	{
		char name[64];
		unsigned found = 0;
		pd_dns_cache_stats st;

		for (unsigned long i = 0; found < 2000 && i < 50000000; i++) {
			snprintf(name, sizeof(name), "x%lu.attacker.example", i);
			if (fnv_bucket(name, PD_DNS_TXT) != 0)
				continue;
			b = pd_dns_blob_status(name, PD_DNS_TXT, PD_DNS_OK, now);
			b->ttl = 3600;
			pd_dns_cache_put(b, 0);
			pd_dns_blob_unref(b);
			found++;
		}
		CHECK(found == 2000);
		pd_dns_cache_stats_get(&st);
		CHECK(st.entries >= 2000);
		CHECK(st.longest_chain <= 8);
		printf("# 2000 names of one FNV-1a bucket: longest chain %zu\n", st.longest_chain);
	}
	pd_dns_cache_free();
	return tap_done();
}
