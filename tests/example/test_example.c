/* test_example.c - the example plugin on the mock host: rules, validate, DNS wait/resume, scores */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <policyd/mockhost.h>

#include "../unit/tap.h"

/* ask - the reply of INST to one request (sender, recipient, client): "" for DUNNO, "ERROR" for an error */
static const char *ask(pd_instance *inst, const char *sender, const char *rcpt, const char *client)
{
	static char out[PD_REPLY_MAX + 1];
	pd_request *req = mock_request_new("request=smtpd_access_policy", "protocol_state=RCPT", NULL);
	pd_reply *rep = mock_reply_new();
	int rc;

	mock_request_set(req, "sender", sender);
	mock_request_set(req, "recipient", rcpt);
	mock_request_set(req, "client_address", client);
	rc = mock_check(&pd_plugin, inst, req, rep);
	snprintf(out, sizeof(out), "%s", rc == PD_CHECK_OK ? mock_reply_text(rep) : "ERROR");
	mock_reply_free(rep);
	mock_request_free(req);
	return out;
}

/* valid - does validate() accept section TEXT? */
static int valid(const char *text)
{
	cfg_t *cfg = mock_section(pd_plugin.options, text);
	int ok;

	if (!cfg)
		return 0;
	stderr_begin();
	ok = pd_plugin.validate(cfg) == 0;
	free(stderr_end());
	cfg_free(cfg);
	return ok;
}

#define REJ "REJECT 5.7.1 Recipient address rejected by policy"

static void defaults(void)
{
	pd_instance inst;

	CHECK(pd_plugin.abi == PD_PLUGIN_ABI && pd_plugin.api <= PD_PLUGIN_API);
	/* no state service: the core opens no store for it (policyd -s as nobody) */
	CHECK(!(pd_plugin.flags & PD_PLUGIN_STATE));
	CHECK(mock_instance_init(&inst, &pd_plugin, NULL, NULL, NULL) == 0);
	CHECK(inst.blocking == 0);
	CHECK(inst.dns_timeout_ms == 5000); /* the core's default, untouched */
	CHECK_STR(ask(&inst, "a@example.org", "x-PolicyBlock@example.net", "192.0.2.1"), REJ);
	CHECK_STR(ask(&inst, "a@example.org", "b@example.net", "192.0.2.1"), "");
	CHECK_STR(ask(&inst, "A@example.org", "a@EXAMPLE.org", "192.0.2.1"), REJ " (sender is the recipient)");
	CHECK_STR(ask(&inst, "", "b@example.net", "192.0.2.1"), "");
	/* the default configuration asks no DNS */
	CHECK(mock_dns_asked() == 0);
	mock_instance_fini(&inst, &pd_plugin);
}

static void validation(void)
{
	CHECK(valid(""));
	CHECK(!valid("marker = \"\""));
	CHECK(valid("check_sender_domain = true\nsender_domain_timeout = 2"));
	CHECK(!valid("check_sender_domain = true\nsender_domain_timeout = -1"));
	CHECK(!valid("check_sender_domain = true\nsender_domain_timeout = 31"));
	CHECK(!valid("sender_domain_timeout = 2")); /* without the lookup it would mean nothing */
	CHECK(valid("score = 2.5"));
	CHECK(mock_section(pd_plugin.options, "markr = \"x\"") == NULL); /* a typo (printed by libconfuse) */
	{
		/* init refuses an empty marker too (the mock host runs no validate) */
		pd_instance inst;
		cfg_t *cfg = mock_section(pd_plugin.options, "marker = \"\"");

		stderr_begin();
		CHECK(cfg && mock_instance_init(&inst, &pd_plugin, NULL, cfg, NULL) == -1);
		free(stderr_end());
		cfg_free(cfg);
	}
}

static void dns(void)
{
	static const char *const mx[] = {"10 mx.example.org", NULL};
	pd_instance inst;
	cfg_t *cfg = mock_section(pd_plugin.options, "check_sender_domain = true\nreject_sender_is_recipient = false");

	CHECK(cfg && mock_instance_init(&inst, &pd_plugin, "dom", cfg, NULL) == 0);
	CHECK(inst.blocking == 0); /* DNS through the host: never waits on a thread */
	CHECK(inst.dns_timeout_ms == 5000);
	mock_dns_reset();
	mock_dns_answer("example.org", PD_DNS_MX, PD_DNS_OK, mx, 300);
	mock_dns_answer("noaddr.example", PD_DNS_MX, PD_DNS_OK, NULL, 300);
	mock_dns_answer("broken.example", PD_DNS_MX, PD_DNS_SERVFAIL, NULL, 0);
	CHECK_STR(ask(&inst, "a@example.org", "b@example.net", "192.0.2.1"), "");
	CHECK(mock_dns_asked() == 1); /* asked once: the check waited, then ran again */
	CHECK_STR(ask(&inst, "a@nx.example", "b@example.net", "192.0.2.1"),
		  REJ " (sender domain does not exist)");
	CHECK_STR(ask(&inst, "a@noaddr.example", "b@example.net", "192.0.2.1"), ""); /* exists, no MX */
	CHECK_STR(ask(&inst, "a@broken.example", "b@example.net", "192.0.2.1"), ""); /* no verdict */
	CHECK_STR(ask(&inst, "", "b@example.net", "192.0.2.1"), "");                 /* null sender: no lookup */
	CHECK(mock_dns_asked() == 4);
	/* the marker decides before any lookup */
	CHECK_STR(ask(&inst, "a@nx.example", "policyblock@example.net", "192.0.2.1"), REJ);
	CHECK(mock_dns_asked() == 4);
	/* answers at once, as from a warm cache */
	mock_dns_wait(0);
	CHECK_STR(ask(&inst, "a@nx2.example", "b@example.net", "192.0.2.1"), REJ " (sender domain does not exist)");
	mock_dns_wait(1);
	mock_instance_fini(&inst, &pd_plugin);
	cfg_free(cfg);
	mock_dns_reset();
	/* sender_domain_timeout: the instance's DNS deadline, said at init */
	cfg = mock_section(pd_plugin.options, "check_sender_domain = true\nsender_domain_timeout = 2");
	CHECK(cfg && mock_instance_init(&inst, &pd_plugin, "dom2", cfg, NULL) == 0);
	CHECK(inst.dns_timeout_ms == 2000);
	/* a lookup that timed out: no verdict */
	mock_dns_answer("slow.example", PD_DNS_MX, PD_DNS_TIMEOUT, NULL, 0);
	CHECK_STR(ask(&inst, "a@slow.example", "b@example.net", "192.0.2.1"), "");
	mock_instance_fini(&inst, &pd_plugin);
	cfg_free(cfg);
	mock_dns_reset();
}

static void scores(void)
{
	pd_instance inst;
	cfg_t *cfg = mock_section(pd_plugin.options, "score = 2.5");
	pd_request *req = mock_request_new("recipient=policyblock@example.net", "sender=a@example.org", NULL);
	pd_reply *rep = mock_reply_new();
	const char *label;
	double v;

	CHECK(cfg && mock_instance_init(&inst, &pd_plugin, "sc", cfg, NULL) == 0);
	CHECK(mock_check(&pd_plugin, &inst, req, rep) == PD_CHECK_OK);
	CHECK_STR(mock_reply_text(rep), ""); /* DUNNO: the score plugin decides */
	CHECK(mock_host.score_sum(req) == 2.5);
	CHECK(mock_host.score_at(req, 0, &label, &v) == 0 && v == 2.5);
	CHECK_STR(label, "sc:marker");
	CHECK(mock_host.score_at(req, 1, &label, &v) == -1);
	mock_reply_free(rep);
	mock_request_free(req);
	mock_instance_fini(&inst, &pd_plugin);
	cfg_free(cfg);
}

int main(void)
{
	defaults();
	validation();
	dns();
	scores();
	return tap_done();
}
