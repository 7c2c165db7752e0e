/* dns_answer.h - DNS answers as the core keeps them: parsed once from the resolver's packet, shared, refcounted */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_DNS_ANSWER_H
#define PD_DNS_ANSWER_H

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#include <policyd/plugin.h>

/* An answer for one name and type: immutable once built, shared by the
 * cache and the requests that used it (pd_dns_blob_ref/unref). */
typedef struct pd_dns_blob {
	atomic_long refs;
	int status;        /* PD_DNS_OK, NXDOMAIN, SERVFAIL, TIMEOUT */
	unsigned type;
	unsigned ttl;      /* as the resolver gave it, after the min/max clamps */
	time_t stored;     /* wall clock when it arrived */
	size_t n;
	const char *name;  /* normalised: lower case, no final dot */
	pd_dns_rr *rr;     /* N records; their text lives in the same block */
} pd_dns_blob;

/* Normalise NAME into OUT (capacity 256): ASCII lower case, no final dot, a
 * valid DNS name (labels of 1..63 octets, any octet but '.', 253 at most).
 * 0 or -1. */
int pd_dns_name(const char *name, char out[256]);

/* Parse the wire answer PKT (LEN bytes) that came for NAME/TYPE: the records
 * of TYPE (through CNAMEs), TTL the least of the answer's (negative answers:
 * the SOA's minimum), clamped to [MIN_TTL, MAX_TTL] (negative ones to
 * NEG_TTL at most). RCODE: the resolver's (a SERVFAIL or REFUSED needs no
 * packet). Never NULL (out of memory aborts). */
pd_dns_blob *pd_dns_blob_parse(const char *name, unsigned type, int rcode, const unsigned char *pkt, size_t len,
			       unsigned min_ttl, unsigned max_ttl, unsigned neg_ttl, time_t now);
/* An answer with no records: STATUS (PD_DNS_TIMEOUT, SERVFAIL, BADNAME). */
pd_dns_blob *pd_dns_blob_status(const char *name, unsigned type, int status, time_t now);

pd_dns_blob *pd_dns_blob_ref(pd_dns_blob *b);
void pd_dns_blob_unref(pd_dns_blob *b);

#endif
