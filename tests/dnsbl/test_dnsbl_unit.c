/* test_dnsbl_unit.c - the dnsbl plugin on the mock host: what it asks, when canaries are asked, the skip of a zone that times out */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <policyd/mockhost.h>
#include "../unit/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC                                                                                                    \
	"reject_score = 1\ntimeout_limit = 2\ntimeout_skip = 60\ncanary_interval = 600\n"      \
	"zone \"bl.test\" { codes = { \"127.0.0.2=5\" } }\n"

static const char *const listed[] = {"127.0.0.2", NULL};

/* ask - one check for client IP; the reply text (static) */
static const char *ask(pd_instance *inst, const char *ip)
{
	static char out[PD_REPLY_MAX + 1];
	pd_request *req = mock_request_new("request=smtpd_access_policy", "protocol_state=RCPT", NULL);
	pd_reply *rep = mock_reply_new();

	mock_request_set(req, "client_address", ip);
	CHECK(mock_check(&pd_plugin, inst, req, rep) == PD_CHECK_OK);
	snprintf(out, sizeof(out), "%s", mock_reply_text(rep));
	mock_reply_free(rep);
	mock_request_free(req);
	return out;
}

/* main - canaries once per interval, one query per zone, timeouts counted once per request */
int main(void)
{
	pd_instance inst;
	cfg_t *cfg = mock_section(pd_plugin.options, SEC);
	unsigned long n0;

	CHECK(pd_plugin.abi == PD_PLUGIN_ABI);
	CHECK(pd_plugin.flags & PD_PLUGIN_SKIP_SASL);
	CHECK(cfg != NULL);
	mock_clock = 1000000;
	mock_dns_answer("2.0.0.127.bl.test", PD_DNS_A, PD_DNS_OK, listed, 300);
	mock_dns_answer("10.2.0.192.bl.test", PD_DNS_A, PD_DNS_OK, listed, 300);
	mock_dns_answer("11.2.0.192.bl.test", PD_DNS_A, PD_DNS_TIMEOUT, NULL, 0);
	if (!cfg || mock_instance_init(&inst, &pd_plugin, "dnsbl", cfg, "/tmp") != 0) {
		CHECK(!"init");
		return tap_done();
	}
	CHECK(inst.blocking == 0);
	CHECK(inst.dns_timeout_ms == 5000); /* no timeout in the section (the core's filter): the core's default */

	/* the first request asks the listing and both canaries, in one round */
	n0 = mock_dns_asked();
	CHECK_STR(ask(&inst, "192.0.2.10"), "554 5.7.1 Service unavailable; client [192.0.2.10] blocked using bl.test");
	CHECK(mock_dns_asked() - n0 == 3);
	/* the next within canary_interval: the listing only */
	n0 = mock_dns_asked();
	CHECK_STR(ask(&inst, "192.0.2.12"), "");
	CHECK(mock_dns_asked() - n0 == 1);
	/* past the interval the canaries again */
	mock_clock += 601;
	n0 = mock_dns_asked();
	CHECK_STR(ask(&inst, "192.0.2.12"), "");
	CHECK(mock_dns_asked() - n0 == 3);

	/* timeouts: each request counts once (the run that waited counted nothing) */
	CHECK_STR(ask(&inst, "192.0.2.11"), "");
	n0 = mock_dns_asked();
	CHECK_STR(ask(&inst, "192.0.2.10"), "554 5.7.1 Service unavailable; client [192.0.2.10] blocked using bl.test");
	CHECK(mock_dns_asked() - n0 == 1); /* one timeout, then an answer: the count starts again */
	CHECK_STR(ask(&inst, "192.0.2.11"), "");
	n0 = mock_dns_asked();
	CHECK_STR(ask(&inst, "192.0.2.11"), "");   /* the second in a row: skipped from now */
	CHECK(mock_dns_asked() - n0 == 1);
	n0 = mock_dns_asked();
	CHECK_STR(ask(&inst, "192.0.2.10"), "");   /* not asked while skipped */
	CHECK(mock_dns_asked() == n0);
	mock_clock += 61;
	CHECK_STR(ask(&inst, "192.0.2.10"), "554 5.7.1 Service unavailable; client [192.0.2.10] blocked using bl.test");

	mock_instance_fini(&inst, &pd_plugin);
	cfg_free(cfg);
	return tap_done();
}
