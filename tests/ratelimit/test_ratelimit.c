/* test_ratelimit.c - the ratelimit plugin on the mock host (its GDBM store, its clock): no burst at a window's edge, keys, overrides, errors */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <policyd/mockhost.h>
#include "../unit/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[] = "/tmp/test_ratelimit.XXXXXX";

#define DEFER "DEFER_IF_PERMIT 4.7.1 Rate limit exceeded, try again later"

/* start - parse TEXT, validate, init; 0 on success */
static int start(pd_instance *inst, const char *text)
{
	cfg_t *cfg = mock_section(pd_plugin.options, text);

	if (!cfg)
		return -1;
	if (pd_plugin.validate(cfg) != 0) {
		cfg_free(cfg);
		return -1;
	}
	if (mock_instance_init(inst, &pd_plugin, "ratelimit", cfg, dir) != 0) {
		cfg_free(cfg);
		return -1;
	}
	return 0;
}

/* stop - fini and free */
static void stop(pd_instance *inst)
{
	cfg_t *cfg = inst->cfg;

	mock_instance_fini(inst, &pd_plugin);
	cfg_free(cfg);
}

/* ask - one request of STATE with "name=value" pairs (NULL-terminated); the reply text (static), *RC the result */
static const char *ask(pd_instance *inst, int *rc, const char *state, ...)
{
	static char out[PD_REPLY_MAX + 1];
	pd_request *req = mock_request_new("request=smtpd_access_policy", "client_address=192.0.2.1",
					   "sender=alice@example.org", "recipient=bob@example.net", NULL);
	pd_reply *rep = mock_reply_new();
	va_list ap;
	const char *a;

	mock_request_set(req, "protocol_state", state);
	va_start(ap, state);
	while ((a = va_arg(ap, const char *))) {
		char name[64];
		const char *eq = strchr(a, '=');

		snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
		mock_request_set(req, name, eq + 1);
	}
	va_end(ap);
	*rc = mock_check(&pd_plugin, inst, req, rep);
	snprintf(out, sizeof(out), "%s", mock_reply_text(rep));
	mock_reply_free(rep);
	mock_request_free(req);
	return out;
}

/* message - a message of USER: RCPT, then END-OF-MESSAGE if it passed; 1 accepted, 0 deferred at RCPT */
static int message(pd_instance *inst, const char *user)
{
	char u[128];
	int rc;

	snprintf(u, sizeof(u), "sasl_username=%s", user);
	if (strcmp(ask(inst, &rc, "RCPT", u, NULL), "") != 0) {
		CHECK(rc == PD_CHECK_OK);
		return 0;
	}
	CHECK(rc == PD_CHECK_OK);
	CHECK_STR(ask(inst, &rc, "END-OF-MESSAGE", u, "recipient_count=1", NULL), "");
	return 1;
}

/* test_no_burst_at_window_edge - on a moved clock, never more than LIMIT accepted in any window-long interval */
static void test_no_burst_at_window_edge(void)
{
	pd_instance inst;
	time_t acc[2000];
	size_t n = 0, worst = 0;
	int rc;

	mock_store_reset();
	mock_clock = 1700000000 - 1700000000 % 60 + 50; /* 10 s before a bucket of 60 s starts */
	CHECK(start(&inst, "rule \"s\" { key = { \"sasl_username\" } limits = { \"5/60\" } }") == 0);
	/* the classic fixed-window burst: 5 at the end of one minute, then 5 more as the next begins */
	for (int i = 0; i < 5; i++)
		CHECK(message(&inst, "edge") == 1);
	mock_clock += 11; /* now in the next minute */
	CHECK(message(&inst, "edge") == 0);
	CHECK_STR(ask(&inst, &rc, "RCPT", "sasl_username=edge", NULL), DEFER);
	mock_store_reset();
	/* a message tried every 3 s for an hour, each second boundary as likely: accepted times recorded */
	for (time_t t = mock_clock; t < mock_clock + 3600 && n < 2000; t += 3) {
		time_t save = mock_clock;

		mock_clock = t;
		if (message(&inst, "steady"))
			acc[n++] = t;
		mock_clock = save;
	}
	for (size_t i = 0; i < n; i++) {
		size_t in = 0;

		for (size_t j = i; j < n && acc[j] < acc[i] + 60; j++)
			in++;
		if (in > worst)
			worst = in;
	}
	printf("# %zu of 1200 accepted in an hour at 5/60s; most in any 60 s: %zu\n", n, worst);
	CHECK(worst == 5);
	/* and it does not hold back more than a bucket longer: at least 5 per 60 * 17/16 s */
	CHECK(n >= 3600 / 64 * 5 - 5);
	stop(&inst);
}

/* test_messages_and_recipients - one message counts once at END-OF-MESSAGE, recipients by recipient_count */
static void test_messages_and_recipients(void)
{
	pd_instance inst;
	int rc;

	mock_store_reset();
	mock_clock = 1700003600;
	CHECK(start(&inst, "rule \"m\" { key = { \"sender\" } limits = { \"2/1h\" } }\n"
			   "rule \"r\" { key = { \"sender\" } count = \"recipients\" limits = { \"10/1h\" } warn_at = { \"50%\" } }") == 0);
	for (int i = 0; i < 5; i++) /* RCPTs are only read */
		CHECK_STR(ask(&inst, &rc, "RCPT", NULL), "");
	CHECK_STR(ask(&inst, &rc, "END-OF-MESSAGE", "recipient_count=5", NULL), "");
	/* 5 + 6 recipients would pass the recipients' limit: refused at END-OF-MESSAGE, counted nowhere */
	CHECK_STR(ask(&inst, &rc, "END-OF-MESSAGE", "recipient_count=6", NULL), DEFER);
	CHECK_STR(ask(&inst, &rc, "END-OF-MESSAGE", "recipient_count=5", NULL), "");
	/* 2 messages, 10 recipients: the next RCPT is over both */
	CHECK_STR(ask(&inst, &rc, "RCPT", NULL), DEFER);
	CHECK_STR(ask(&inst, &rc, "RCPT", "sender=carol@example.org", NULL), "");
	/* postmaster@ and abuse@ are exempt */
	CHECK_STR(ask(&inst, &rc, "RCPT", "recipient=postmaster@example.net", NULL), "");
	CHECK_STR(ask(&inst, &rc, "RCPT", "recipient=Abuse@example.net", NULL), "");
	CHECK_STR(ask(&inst, &rc, "RCPT", "recipient=postmaster", NULL), "");
	stop(&inst);
}

/* test_count_state_data - counted at DATA when so configured (not at END-OF-MESSAGE); an exempt sole recipient not counted */
static void test_count_state_data(void)
{
	pd_instance inst;
	int rc;

	mock_store_reset();
	mock_clock = 1700014400;
	CHECK(start(&inst, "rule \"d\" { key = { \"sender\" } limits = { \"2/1h\" } } count_state = \"DATA\"") == 0);
	CHECK_STR(ask(&inst, &rc, "DATA", "recipient_count=1", NULL), "");
	CHECK_STR(ask(&inst, &rc, "END-OF-MESSAGE", "recipient_count=1", NULL), ""); /* only read here */
	CHECK_STR(ask(&inst, &rc, "END-OF-MESSAGE", "recipient_count=1", NULL), "");
	/* a message to postmaster@ alone is not counted */
	CHECK_STR(ask(&inst, &rc, "DATA", "recipient_count=1", "recipient=postmaster@example.net", NULL), "");
	CHECK_STR(ask(&inst, &rc, "DATA", "recipient_count=1", NULL), "");
	CHECK_STR(ask(&inst, &rc, "RCPT", NULL), DEFER);
	CHECK_STR(ask(&inst, &rc, "DATA", "recipient_count=1", NULL), DEFER);
	stop(&inst);
}

/* test_keys - first non-empty choice, combinations, networks, domains; each its own counter */
static void test_keys(void)
{
	pd_instance inst;
	int rc;

	mock_store_reset();
	mock_clock = 1700007200;
	CHECK(start(&inst, "rule \"c\" { key = { \"sasl_username+client_address\", \"sender_domain\" } "
			   "limits = { \"1/1h\" } ipv4_prefix = 24 ipv6_prefix = 48 count = \"requests\" }") == 0);
	/* no SASL: the sender's domain, case folded */
	CHECK_STR(ask(&inst, &rc, "RCPT", NULL), "");
	CHECK_STR(ask(&inst, &rc, "RCPT", "sender=x@EXAMPLE.org", NULL), DEFER);
	CHECK_STR(ask(&inst, &rc, "RCPT", "sender=x@example.com", NULL), "");
	/* SASL: user and the client's /24 */
	CHECK_STR(ask(&inst, &rc, "RCPT", "sasl_username=u", "client_address=198.51.100.7", NULL), "");
	CHECK_STR(ask(&inst, &rc, "RCPT", "sasl_username=U", "client_address=198.51.100.200", NULL), DEFER);
	CHECK_STR(ask(&inst, &rc, "RCPT", "sasl_username=u", "client_address=198.51.101.7", NULL), "");
	CHECK_STR(ask(&inst, &rc, "RCPT", "sasl_username=u", "client_address=2001:db8:1:2::1", NULL), "");
	CHECK_STR(ask(&inst, &rc, "RCPT", "sasl_username=u", "client_address=2001:db8:1:ffff::1", NULL), DEFER);
	/* '+' in a part of a combination cannot forge another: "a+b"+"c" is not "a"+"b+c" */
	CHECK_STR(ask(&inst, &rc, "RCPT", "sasl_username=a+198.51.100.0/24", "client_address=10.0.0.1", NULL), "");
	CHECK_STR(ask(&inst, &rc, "RCPT", "sasl_username=a", "client_address=10.0.0.1", NULL), "");
	/* a very long key is hashed, still limited */
	{
		char longu[2100];

		memset(longu, 'q', sizeof(longu) - 1);
		longu[sizeof(longu) - 1] = 0;
		memcpy(longu, "sasl_username=", 14);
		CHECK_STR(ask(&inst, &rc, "RCPT", longu, NULL), "");
		CHECK(rc == PD_CHECK_OK);
		CHECK_STR(ask(&inst, &rc, "RCPT", longu, NULL), DEFER);
	}
	stop(&inst);
}

/* test_overrides - a file's limits per key, unlimited, and its errors with file:line */
static void test_overrides(void)
{
	pd_instance inst;
	char path[sizeof(dir) + 20], text[400];
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/over", dir);
	f = fopen(path, "w");
	fprintf(f, "# VIPs\nbig@example.org 3/1h\n\nBoss@Example.org   unlimited\n");
	fclose(f);
	mock_store_reset();
	mock_clock = 1700010800;
	snprintf(text, sizeof(text), "rule \"o\" { key = { \"sender\" } count = \"requests\" limits = { \"1/1h\" } "
		 "overrides = \"%s\" }", path);
	CHECK(start(&inst, text) == 0);
	for (int i = 0; i < 3; i++)
		CHECK_STR(ask(&inst, &rc, "RCPT", "sender=big@example.org", NULL), "");
	CHECK_STR(ask(&inst, &rc, "RCPT", "sender=big@example.org", NULL), DEFER);
	for (int i = 0; i < 10; i++)
		CHECK_STR(ask(&inst, &rc, "RCPT", "sender=boss@example.org", NULL), "");
	CHECK_STR(ask(&inst, &rc, "RCPT", "sender=x@example.org", NULL), "");
	CHECK_STR(ask(&inst, &rc, "RCPT", "sender=x@example.org", NULL), DEFER);
	stop(&inst);
	/* bad lines: refused by validate */
	f = fopen(path, "w");
	fprintf(f, "ok@example.org 3/1h\nbad@example.org 3/forever\n");
	fclose(f);
	CHECK(start(&inst, text) != 0);
	f = fopen(path, "w");
	fprintf(f, "nolimit@example.org\n");
	fclose(f);
	CHECK(start(&inst, text) != 0);
}

/* test_store_down - every store error is PD_CHECK_ERROR (on_error applies) */
static void test_store_down(void)
{
	pd_instance inst;
	int rc;

	mock_store_reset();
	CHECK(start(&inst, "rule \"d\" { key = { \"sender\" } limits = { \"1/1h\" } }") == 0);
	mock_store_fail(1);
	ask(&inst, &rc, "RCPT", NULL);
	CHECK(rc == PD_CHECK_ERROR);
	ask(&inst, &rc, "END-OF-MESSAGE", NULL);
	CHECK(rc == PD_CHECK_ERROR);
	mock_store_fail(0);
	CHECK_STR(ask(&inst, &rc, "RCPT", NULL), "");
	CHECK(rc == PD_CHECK_OK);
	stop(&inst);
}

/* test_bad_config - validate refuses what makes no sense */
static void test_bad_config(void)
{
	static const char *const bad[] = {
	    "",
	    "rule \"x\" { limits = { \"1/1h\" } }",
	    "rule \"x\" { key = { \"sender\" } }",
	    "rule \"x\" { key = { \"sender\" } limits = { \"1/ever\" } }",
	    "rule \"x\" { key = { \"sender\" } limits = { \"0/1h\" } }",
	    "rule \"x\" { key = { \"sender\" } limits = { \"10M/1h\" } }", /* a size suffix needs bytes */
	    "rule \"x\" { key = { \"sender\" } limits = { \"1/1h\", \"2/3600\" } }",
	    "rule \"x\" { key = { \"Sender\" } limits = { \"1/1h\" } }",
	    "rule \"x\" { key = { \"sender+\" } limits = { \"1/1h\" } }",
	    "rule \"x\" { key = { \"sender\" } limits = { \"1/1h\" } count = \"mails\" }",
	    "rule \"x\" { key = { \"sender\" } limits = { \"1/1h\" } action = \"OK\" }",
	    "rule \"x\" { key = { \"sender\" } limits = { \"1/1h\" } warn_at = { \"100%\" } }",
	    "rule \"x\" { key = { \"sender\" } limits = { \"1/1h\" } overrides = \"relative\" }",
	    "rule \"x\" { key = { \"sender\" } limits = { \"1/1h\" } ipv4_prefix = 33 }",
	    "rule \"x y\" { key = { \"sender\" } limits = { \"1/1h\" } }",
	    "rule \"x\" { key = { \"sender\" } limits = { \"1/1h\" } } count_state = \"RCPT\"",
	    NULL,
	};
	pd_instance inst;

	for (int i = 0; bad[i]; i++) {
		int r = start(&inst, bad[i]);

		if (r == 0) {
			printf("FAIL accepted: %s\n", bad[i]);
			stop(&inst);
		}
		CHECK(r != 0);
	}
	CHECK(start(&inst, "rule \"x\" { key = { \"sender\" } count = \"bytes\" limits = { \"10M/1h\", \"1G/1d\" } }") == 0);
	stop(&inst);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 99;
	test_no_burst_at_window_edge();
	test_messages_and_recipients();
	test_keys();
	test_count_state_data();
	test_overrides();
	test_store_down();
	test_bad_config();
	{
		char cmd[sizeof(dir) + 20];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			tap_fail++;
	}
	return tap_done();
}
