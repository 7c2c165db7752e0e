/* test_proto.c - unit tests of the bounded policy-protocol parser */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "proto.h"
#include "tap.h"
#include "util.h"

static const pd_limits lim = {.max_line = 100, .max_attrs = 10, .max_request = 400};

/* feed_all - feed a whole string; returns the last result */
static enum pd_feed feed_all(pd_attrs *r, const char *s, size_t len, size_t *used, const char **why)
{
	return pd_proto_feed(r, s, len, used, &lim, why);
}

/* test_complete - a request in one piece, attributes known and unknown */
static void test_complete(void)
{
	pd_attrs r;
	size_t used;
	const char *why;
	const char *in = "request=smtpd_access_policy\nrecipient=a@b\nx_future_attr=42\n\nnext=1\n";

	pd_attrs_init(&r);
	CHECK(feed_all(&r, in, strlen(in), &used, &why) == PD_FEED_DONE);
	CHECK(used == strlen("request=smtpd_access_policy\nrecipient=a@b\nx_future_attr=42\n\n"));
	CHECK_STR(pd_attrs_get(&r, "recipient"), "a@b");
	CHECK_STR(pd_attrs_get(&r, "x_future_attr"), "42");
	CHECK(pd_attrs_get(&r, "sender") == NULL);
	CHECK(pd_attrs_count(&r) == 3);
	pd_attrs_free(&r);
}

/* test_split - a request arriving one byte at a time */
static void test_split(void)
{
	pd_attrs r;
	const char *in = "request=smtpd_access_policy\r\nsender=\nrecipient=x@y\r\n\r\n";
	char buf[256];
	size_t len = 0, used;
	const char *why;
	enum pd_feed f = PD_FEED_MORE;

	pd_attrs_init(&r);
	for (size_t i = 0; in[i] && f == PD_FEED_MORE; i++) {
		buf[len++] = in[i];
		f = feed_all(&r, buf, len, &used, &why);
		memmove(buf, buf + used, len - used);
		len -= used;
	}
	CHECK(f == PD_FEED_DONE);
	CHECK_STR(pd_attrs_get(&r, "sender"), "");
	CHECK_STR(pd_attrs_get(&r, "recipient"), "x@y"); /* CR stripped */
	pd_attrs_free(&r);
}

/* test_garbage - bad lines are skipped one by one, the request survives */
static void test_garbage(void)
{
	pd_attrs r;
	char in[] = "request=smtpd_access_policy\nno equals sign\n=novalue\nbin\0ary=1\nrecipient=z@z\n\n";
	size_t len = sizeof(in) - 1, off = 0, used;
	const char *why;
	int garbage = 0;
	enum pd_feed f;

	pd_attrs_init(&r);
	while ((f = feed_all(&r, in + off, len - off, &used, &why)) == PD_FEED_GARBAGE) {
		garbage++;
		off += used;
	}
	CHECK(f == PD_FEED_DONE);
	CHECK(garbage == 3);
	CHECK_STR(pd_attrs_get(&r, "recipient"), "z@z");
	pd_attrs_free(&r);
}

/* test_bounds - long lines, many attributes, big requests end the connection */
static void test_bounds(void)
{
	pd_attrs r;
	char big[300];
	size_t used;
	const char *why = NULL;

	memset(big, 'a', sizeof(big));
	pd_attrs_init(&r);
	CHECK(feed_all(&r, big, sizeof(big), &used, &why) == PD_FEED_ERROR); /* no newline yet, too long */
	CHECK_STR(why, "line too long");
	pd_attrs_reset(&r);
	memcpy(big, "x=", 2);
	big[150] = '\n';
	CHECK(feed_all(&r, big, 151, &used, &why) == PD_FEED_ERROR);
	pd_attrs_reset(&r);
	{
		const char *many = "a=1\nb=1\nc=1\nd=1\ne=1\nf=1\ng=1\nh=1\ni=1\nj=1\nk=1\n\n";

		CHECK(feed_all(&r, many, strlen(many), &used, &why) == PD_FEED_ERROR);
		CHECK_STR(why, "too many attributes");
	}
	pd_attrs_reset(&r);
	{
		char lines[600];
		size_t n = 0;

		for (int i = 0; i < 8; i++)
			n += (size_t)sprintf(lines + n, "k%d=%060d\n", i, i);
		CHECK(feed_all(&r, lines, n, &used, &why) == PD_FEED_ERROR);
		CHECK_STR(why, "request too large");
	}
	pd_attrs_free(&r);
}

/* test_last_wins - a repeated attribute: the last value counts */
static void test_last_wins(void)
{
	pd_attrs r;
	size_t used;
	const char *why;
	const char *in = "sender=a\nsender=b\n\n";

	pd_attrs_init(&r);
	CHECK(feed_all(&r, in, strlen(in), &used, &why) == PD_FEED_DONE);
	CHECK_STR(pd_attrs_get(&r, "sender"), "b");
	pd_attrs_free(&r);
}

/* test_reply - one action line, never a newline inside */
static void test_reply(void)
{
	char out[PD_REPLY_MAX + 16];
	pd_reply rep;
	char longtext[2000];

	pd_proto_reply(out, sizeof(out), "REJECT bad\nthing");
	CHECK_STR(out, "action=REJECT bad thing\n\n");
	pd_proto_reply(out, sizeof(out), "");
	CHECK_STR(out, "action=DUNNO\n\n");
	memset(longtext, 'x', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = 0;
	CHECK(pd_proto_reply(out, sizeof(out), longtext) == 7 + PD_REPLY_MAX + 2);
	pd_reply_set(&rep, "DEFER\r\nX");
	CHECK_STR(rep.text, "DEFER  X");
}

/* test_line - the bounded line builder of the log lines */
static void test_line(void)
{
	char buf[16], small[8];
	pd_line l = {.p = buf, .cap = sizeof(buf)}, m = {.p = small, .cap = sizeof(small)};

	pd_line_str(&l, "a=");
	pd_line_esc(&l, "x\ny", 10, 0);
	pd_line_uint(&l, 12);
	CHECK_STR(buf, "a=x\\x0ay12");
	pd_line_esc(&l, "abcdefgh", 100, 0); /* 3 bytes of room: cut */
	CHECK(l.len == 15 && buf[15] == 0);
	l.len = 0;
	pd_line_esc(&l, "0123456789", 6, 0); /* over its own cap: "..." */
	CHECK_STR(buf, "012345...");
	pd_line_esc(&m, NULL, 5, 0);
	pd_line_uint(&m, 0);
	pd_line_str(&m, "overflowing");
	CHECK_STR(small, "0overfl");
}

int main(void)
{
	test_line();
	test_complete();
	test_split();
	test_garbage();
	test_bounds();
	test_last_wins();
	test_reply();
	return tap_done();
}
