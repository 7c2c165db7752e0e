/* test_example.c - the example plugin on the mock host: rules, validate, DNS wait/resume, scores, state */
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
#define DEFER "DEFER_IF_PERMIT 4.7.1 Too many rejected recipients, try again later"

static void defaults(void)
{
	pd_instance inst;

	CHECK(pd_plugin.abi == PD_PLUGIN_ABI && pd_plugin.api <= PD_PLUGIN_API);
	CHECK(pd_plugin.flags & PD_PLUGIN_STATE);
	CHECK(mock_instance_init(&inst, &pd_plugin, NULL, NULL, NULL) == 0);
	CHECK(inst.blocking == 0);
	CHECK_STR(ask(&inst, "a@example.org", "x-PolicyBlock@example.net", "192.0.2.1"), REJ);
	CHECK_STR(ask(&inst, "a@example.org", "b@example.net", "192.0.2.1"), "");
	CHECK_STR(ask(&inst, "A@example.org", "a@EXAMPLE.org", "192.0.2.1"), REJ " (sender is the recipient)");
	CHECK_STR(ask(&inst, "", "b@example.net", "192.0.2.1"), "");
	/* the default configuration asks neither DNS nor the store */
	CHECK(mock_dns_asked() == 0);
	mock_instance_fini(&inst, &pd_plugin);
}

static void validation(void)
{
	CHECK(valid(""));
	CHECK(!valid("marker = \"\""));
	CHECK(valid("client_limit = 5"));
	CHECK(!valid("client_limit = -1"));
	CHECK(!valid("client_limit = 5\nclient_window = 0"));
	CHECK(valid("client_window = 0")); /* unused while client_limit is 0 */
	CHECK(valid("score = 2.5"));
	CHECK(!valid("score = 2.5\nclient_limit = 5"));
	CHECK(mock_section(pd_plugin.options, "markr = \"x\"") == NULL); /* a typo (printed by libconfuse) */
}

static void dns(void)
{
	static const char *const mx[] = {"10 mx.example.org", NULL};
	pd_instance inst;
	cfg_t *cfg = mock_section(pd_plugin.options, "check_sender_domain = true\nreject_sender_is_recipient = false");

	CHECK(cfg && mock_instance_init(&inst, &pd_plugin, "dom", cfg, NULL) == 0);
	CHECK(inst.blocking == 0); /* DNS through the host: never waits on a thread */
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

static void state(void)
{
	pd_instance a, b;
	cfg_t *ca = mock_section(pd_plugin.options, "client_limit = 2\nclient_window = 600");
	cfg_t *cb = mock_section(pd_plugin.options, "client_limit = 2\nclient_window = 600");

	mock_store_reset();
	CHECK(ca && mock_instance_init(&a, &pd_plugin, "a", ca, NULL) == 0);
	CHECK(cb && mock_instance_init(&b, &pd_plugin, "b", cb, NULL) == 0);
	CHECK(a.blocking == 0); /* GDBM: local, never waits for the network */
	CHECK_STR(ask(&a, "s@example.org", "policyblock1@example.net", "192.0.2.7"), REJ);
	CHECK_STR(ask(&a, "s@example.org", "ok@example.net", "192.0.2.7"), "");
	CHECK_STR(ask(&a, "s@example.org", "policyblock2@example.net", "192.0.2.7"), REJ);
	/* two rejections: the client is deferred, another client is not */
	CHECK_STR(ask(&a, "s@example.org", "ok@example.net", "192.0.2.7"), DEFER);
	CHECK_STR(ask(&a, "s@example.org", "ok@example.net", "192.0.2.8"), "");
	/* instance b has its own namespace */
	CHECK_STR(ask(&b, "s@example.org", "ok@example.net", "192.0.2.7"), "");
	/* the window passes (mock_clock drives it) */
	mock_clock += 700;
	CHECK_STR(ask(&a, "s@example.org", "ok@example.net", "192.0.2.7"), "");
	/* the store is down: a request that a rule rejects is still rejected,
	 * one that needs the count is an error (on_error) */
	stderr_begin();
	mock_store_fail(1);
	CHECK_STR(ask(&a, "s@example.org", "policyblock@example.net", "192.0.2.7"), REJ);
	CHECK_STR(ask(&a, "s@example.org", "ok@example.net", "192.0.2.7"), "ERROR");
	mock_store_fail(0);
	free(stderr_end());
	mock_instance_fini(&a, &pd_plugin);
	mock_instance_fini(&b, &pd_plugin);
	/* on Redis the state service waits for the network: blocking */
	mock_store_set_remote(1);
	CHECK(mock_instance_init(&a, &pd_plugin, "a", ca, NULL) == 0);
	CHECK(a.blocking == 1);
	mock_instance_fini(&a, &pd_plugin);
	mock_store_set_remote(0);
	cfg_free(ca);
	cfg_free(cb);
}

int main(void)
{
	defaults();
	validation();
	dns();
	scores();
	state();
	return tap_done();
}
