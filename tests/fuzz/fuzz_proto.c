/* fuzz_proto.c - libFuzzer target: the policy protocol parser driven the way core/server.c drives it */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Input: byte 0 is a control byte, the rest is what a client sends.
 *   bits 0-1  max_line_length  256, 300, 1024, 4096
 *   bits 2-3  max_attributes   8, 9, 64, 256
 *   bits 4-5  max_request_size 1024, 1500, 4096, 65536
 *   bit 6     spawn-mode loop (no pd_attrs_trim between requests)
 *   bit 7     tiny reads (1..8 bytes) instead of reads of any size
 * The read sizes come from a PRNG seeded with a hash of the input. Each
 * input runs twice: split into those reads, and in reads as large as the
 * server's buffer allows. Both must see the same events (requests with the
 * same attributes, garbage lines, errors), and the same as ref(), a plain
 * line-by-line model of the protocol over the whole input; any difference
 * aborts, as does a broken invariant (reply format, lookups, bounds, a
 * stalled buffer).
 */
#include "config.h"
#include "chain.h"
#include "cidr.h"
#include "log.h"
#include "proto.h"
#include "util.h"
#include "escape.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One simulated connection: input stream, read sizes, event digest. */
typedef struct sim {
	const uint8_t *data;
	size_t size, off; /* client bytes and how many were delivered */
	uint64_t rng;     /* 0: deliver as much as fits */
	int tiny;         /* reads of 1..8 bytes */
	uint64_t digest;  /* FNV-1a over the events seen */
	unsigned requests, garbage;
	const char *end; /* how the connection ended */
} sim;

/* fail - report a broken invariant and abort so libFuzzer keeps the input */
static void fail(const char *what)
{
	fprintf(stderr, "fuzz_proto: invariant broken: %s\n", what);
	abort();
}

/* fnv - fold N bytes into H */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* next_rand - xorshift64 */
static uint64_t next_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* deliver - one recv(): up to ROOM bytes of the client's stream */
static size_t deliver(sim *s, char *dst, size_t room)
{
	size_t n = s->size - s->off;

	if (s->rng) {
		size_t want = s->tiny ? 1 + next_rand(&s->rng) % 8 : 1 + next_rand(&s->rng) % (room + 1);

		if (n > want)
			n = want;
	}
	if (n > room)
		n = room;
	memcpy(dst, s->data + s->off, n);
	s->off += n;
	return n;
}

/* check_loggable - pd_esc as log_decision uses it: capped, and nothing left
 * that could end a field or a line */
static void check_loggable(const char *v, size_t max)
{
	char buf[1100];

	pd_esc(buf, sizeof(buf), v, max, PD_ESC_TOKEN);
	if (strlen(buf) > max * 4 + 3)
		fail("pd_esc wrote more than its cap");
	for (const char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == ' ' || *p == '<' || *p == '>' ||
		    (*p == '\\' && p[1] != 'x'))
			fail("pd_esc left a character that ends a field or a line");
}

/* check_request - invariants of a complete request; folds it into the digest */
static void check_request(sim *s, const pd_attrs *req, const pd_limits *lim)
{
	size_t n = pd_attrs_count(req);
	const char *name, *value, *r;
	char out[PD_REPLY_MAX + 16];
	pd_reply reply;
	size_t len;
	int fam;
	unsigned char addr[16];
	pd_cidr net;

	if (n > lim->max_attrs)
		fail("more attributes than max_attributes");
	if (req->bytes > lim->max_request)
		fail("request larger than max_request_size");
	if (pd_attrs_at(req, n, &name, &value) == 0)
		fail("pd_attrs_at past the end succeeded");
	for (size_t i = 0; i < n; i++) {
		const char *got;

		if (pd_attrs_at(req, i, &name, &value) < 0)
			fail("pd_attrs_at failed inside the request");
		if (!*name || strlen(name) > 128 || strchr(name, '='))
			fail("bad attribute name accepted");
		for (const char *p = name; *p; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
				fail("attribute name with a blank or control character");
		if (strchr(value, '\n') || strlen(value) > lim->max_line)
			fail("attribute value with a newline or over max_line_length");
		s->digest = fnv(s->digest, name, strlen(name) + 1);
		s->digest = fnv(s->digest, value, strlen(value) + 1);
		got = pd_attrs_get(req, name);
		if (!got)
			fail("pd_attrs_get misses an attribute");
		for (size_t k = i + 1; k < n; k++) {
			const char *n2, *v2;

			pd_attrs_at(req, k, &n2, &v2);
			if (strcmp(n2, name) == 0)
				value = v2; /* the last occurrence wins */
		}
		if (got != value)
			fail("pd_attrs_get does not return the last occurrence");
	}

	/* what the server does with a request: log it, pick a chain, reply */
	check_loggable(pd_attrs_get(req, "queue_id"), 40);
	check_loggable(pd_attrs_get(req, "client_name"), 128);
	check_loggable(pd_attrs_get(req, "sender"), 256);
	check_loggable(pd_attrs_get(req, "protocol_state"), 24);
	check_loggable(pd_attrs_get(req, "recipient"), 4);
	check_loggable(pd_attrs_get(req, "helo_name"), 1);
	(void)pd_request_state(pd_attrs_get(req, "protocol_state"));
	if ((r = pd_attrs_get(req, "client_address")) && pd_addr_parse(r, &fam, addr) == 0 &&
	    pd_cidr_parse("192.0.2.0/24", &net) == 0)
		(void)pd_cidr_match(&net, 1, fam, addr);
	if ((r = pd_attrs_get(req, "policy_context")))
		(void)pd_cidr_parse(r, &net);

	/* a reply built from client text (a plugin echoing an attribute) */
	r = n ? (pd_attrs_at(req, n - 1, &name, &value), value) : "";
	pd_reply_set(&reply, r);
	if (strlen(reply.text) > PD_REPLY_MAX)
		fail("pd_reply_set overran PD_REPLY_MAX");
	(void)pd_action_kind(reply.text);
	len = pd_proto_reply(out, PD_REPLY_MAX + 10, reply.text);
	if (len >= PD_REPLY_MAX + 10 || len != strlen(out))
		fail("pd_proto_reply length");
	if (memcmp(out, "action=", 7) != 0 || len < 10 || out[len - 1] != '\n' || out[len - 2] != '\n')
		fail("pd_proto_reply format");
	for (size_t i = 0; i < len - 2; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			fail("pd_proto_reply let a control character through");
	len = pd_proto_reply(out, sizeof(out), r);
	if (len >= sizeof(out) || out[len - 1] != '\n' || out[len - 2] != '\n')
		fail("pd_proto_reply format (raw text)");
}

/* run - one connection, looping like conn_process/pd_spawn_serve */
static void run(sim *s, const pd_limits *lim, int spawn)
{
	size_t cap = lim->max_line + 64 < 1024 ? 1024 : lim->max_line + 64;
	char *buf = pd_xmalloc(cap);
	size_t len = 0, rounds = 0;
	int eof = 0;
	pd_attrs req;

	pd_attrs_init(&req);
	s->digest = 0xcbf29ce484222325ULL;
	for (;;) {
		size_t used = 0;
		const char *why = "";
		enum pd_feed f;
		unsigned char ev;

		if (++rounds > 4 * s->size + 64)
			fail("no progress: the feed loop does not terminate");
		/* conn_read: fill the buffer until it is full or the client pauses */
		if (!eof) {
			if (s->off == s->size)
				eof = 1;
			else if (len < cap)
				len += deliver(s, buf + len, cap - len);
		}
		f = pd_proto_feed(&req, buf, len, &used, lim, &why);
		if (used > len)
			fail("pd_proto_feed consumed more than it was given");
		memmove(buf, buf + used, len - used);
		len -= used;
		ev = (unsigned char)f;
		if (f != PD_FEED_MORE) /* how often it waits depends on the reads */
			s->digest = fnv(s->digest, &ev, 1);
		if (f == PD_FEED_GARBAGE) {
			if (!why || !*why)
				fail("garbage without a reason");
			s->garbage++;
			continue;
		}
		if (f == PD_FEED_ERROR) {
			if (!why || !*why)
				fail("error without a reason");
			s->end = "error";
			break;
		}
		if (f == PD_FEED_MORE) {
			if (len == cap)
				fail("buffer full yet the parser wants more: the connection would stall");
			if (eof) {
				s->digest = fnv(s->digest, &req.lines, sizeof(req.lines));
				s->end = "eof";
				break;
			}
			continue;
		}
		/* PD_FEED_DONE */
		s->requests++;
		check_request(s, &req, lim);
		{
			const char *r = pd_attrs_get(&req, "request");

			if (!r || strcmp(r, "smtpd_access_policy") != 0) {
				s->end = "not a policy request";
				break; /* request_ok closes the connection */
			}
		}
		pd_attrs_reset(&req);
		if (!spawn)
			pd_attrs_trim(&req);
	}
	pd_attrs_free(&req);
	free(buf);
}

/* ref_name_ok - the protocol's attribute names: 1..128 bytes 0x21..0x7e */
static int ref_name_ok(const uint8_t *p, size_t n)
{
	if (n < 1 || n > 128)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f)
			return 0;
	return 1;
}

/* ref - the protocol as specified (proto.h), line by line over the whole
 * stream, written independently of pd_proto_feed: the events it expects,
 * folded into a digest the way run() folds what the parser reported */
static void ref(sim *s, const pd_limits *lim)
{
	const uint8_t *p = s->data, *end = s->data + s->size;
	size_t bytes = 0, lines = 0, n = 0;
	const uint8_t *names[1024], *vals[1024];
	size_t nl_[1024], vl_[1024];
	unsigned char ev;

	s->digest = 0xcbf29ce484222325ULL;
	s->end = "eof";
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t raw, ll;
		const uint8_t *eq;

		if (!nl) { /* a last line without its newline */
			if ((size_t)(end - p) > lim->max_line + 1) {
				ev = PD_FEED_ERROR;
				s->digest = fnv(s->digest, &ev, 1);
				s->end = "error";
				return;
			}
			break;
		}
		raw = (size_t)(nl - p);
		ll = raw && p[raw - 1] == '\r' ? raw - 1 : raw;
		bytes += raw + 1;
		if (ll > lim->max_line || bytes > lim->max_request) {
			ev = PD_FEED_ERROR;
			s->digest = fnv(s->digest, &ev, 1);
			s->end = "error";
			return;
		}
		if (ll == 0) {
			if (lines) {
				int policy = 0;

				ev = PD_FEED_DONE;
				s->digest = fnv(s->digest, &ev, 1);
				s->requests++;
				for (size_t i = 0; i < n; i++) {
					s->digest = fnv(s->digest, names[i], nl_[i]);
					s->digest = fnv(s->digest, "", 1);
					s->digest = fnv(s->digest, vals[i], vl_[i]);
					s->digest = fnv(s->digest, "", 1);
				}
				for (size_t i = n; i-- > 0;)
					if (nl_[i] == 7 && memcmp(names[i], "request", 7) == 0) {
						policy =
						    vl_[i] == 19 && memcmp(vals[i], "smtpd_access_policy", 19) == 0;
						break;
					}
				if (!policy) {
					s->end = "not a policy request";
					return;
				}
				bytes = lines = n = 0;
			}
			p = nl + 1;
			continue;
		}
		if (++lines > lim->max_attrs) {
			ev = PD_FEED_ERROR;
			s->digest = fnv(s->digest, &ev, 1);
			s->end = "error";
			return;
		}
		eq = memchr(p, '=', ll);
		if (memchr(p, 0, ll) || !eq || !ref_name_ok(p, (size_t)(eq - p))) {
			ev = PD_FEED_GARBAGE;
			s->digest = fnv(s->digest, &ev, 1);
			s->garbage++;
		} else {
			if (n >= sizeof(names) / sizeof(names[0]))
				fail("reference model: more attributes than it can hold");
			names[n] = p;
			nl_[n] = (size_t)(eq - p);
			vals[n] = eq + 1;
			vl_[n] = ll - nl_[n] - 1;
			n++;
		}
		p = nl + 1;
	}
	s->digest = fnv(s->digest, &lines, sizeof(lines));
}

/* LLVMFuzzerInitialize - keep the logger quiet unless PD_FUZZ_VERBOSE is set */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	pd_log_set_stderr(getenv("PD_FUZZ_VERBOSE") != NULL);
	return 0;
}

/* LLVMFuzzerTestOneInput - one client connection, split two ways */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t lines[] = {256, 300, 1024, 4096};
	static const size_t attrs[] = {8, 9, 64, 256};
	static const size_t reqs[] = {1024, 1500, 4096, 65536};
	pd_limits lim;
	sim a, b, r;
	uint8_t ctl;

	if (size < 1)
		return 0;
	ctl = data[0];
	lim.max_line = lines[ctl & 3];
	lim.max_attrs = attrs[(ctl >> 2) & 3];
	lim.max_request = reqs[(ctl >> 4) & 3];

	memset(&a, 0, sizeof(a));
	a.data = data + 1;
	a.size = size - 1;
	a.rng = fnv(0xcbf29ce484222325ULL, data, size) | 1;
	a.tiny = ctl >> 7;
	b = a;
	b.rng = 0;
	r = a;
	run(&a, &lim, (ctl >> 6) & 1);
	run(&b, &lim, (ctl >> 6) & 1);
	ref(&r, &lim);
	if (a.digest != b.digest || a.requests != b.requests || a.garbage != b.garbage || strcmp(a.end, b.end) != 0) {
		fprintf(stderr, "split reads: %u requests, %u garbage, end %s; whole reads: %u, %u, %s\n", a.requests,
		        a.garbage, a.end, b.requests, b.garbage, b.end);
		fail("the events depend on how the input was split into reads");
	}
	if (b.digest != r.digest || b.requests != r.requests || b.garbage != r.garbage || strcmp(b.end, r.end) != 0) {
		fprintf(stderr, "parser: %u requests, %u garbage, end %s; reference model: %u, %u, %s\n", b.requests,
		        b.garbage, b.end, r.requests, r.garbage, r.end);
		fail("the parser and the reference model of the protocol disagree");
	}
	return 0;
}
