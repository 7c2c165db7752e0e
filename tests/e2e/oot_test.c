/* oot_test.c - a third party's unit test of its plugin on the installed mock host */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Built by tests/e2e/out_of_tree.sh with
 *	cc oot_test.c oot_plugin.c $(pkg-config --cflags --libs policyd-mockhost)
 * Prints "N passed, N failed"; exits 1 on a failure.
 */
#include <policyd/mockhost.h>

#include <stdio.h>
#include <string.h>

static int passed, failed;

/* check - one expectation */
static void check(int ok, const char *what)
{
	if (ok) {
		passed++;
	} else {
		failed++;
		printf("FAIL %s\n", what);
	}
}

/* ask - the reply to a request for RCPT from SENDER ("" = DUNNO) */
static const char *ask(pd_instance *inst, const char *sender, const char *rcpt)
{
	static char out[PD_REPLY_MAX + 1];
	pd_request *req = mock_request_new("request=smtpd_access_policy", "protocol_state=RCPT", NULL);
	pd_reply *rep = mock_reply_new();

	mock_request_set(req, "sender", sender);
	mock_request_set(req, "recipient", rcpt);
	check(mock_check(&pd_plugin, inst, req, rep) == PD_CHECK_OK, "check returns OK");
	snprintf(out, sizeof(out), "%s", mock_reply_text(rep));
	mock_reply_free(rep);
	mock_request_free(req);
	return out;
}

int main(void)
{
	static const char *const mx[] = {"10 mx.good.example", NULL};
	pd_instance inst;
	cfg_t *cfg = mock_section(pd_plugin.options, "check_mx = true\n");

	check(pd_plugin.abi == PD_PLUGIN_ABI, "ABI number");
	check(cfg && mock_instance_init(&inst, &pd_plugin, "oot", cfg, "/tmp") == 0, "init");
	check(inst.blocking == 0, "says at init that it never blocks");
	mock_dns_answer("good.example", PD_DNS_MX, PD_DNS_OK, mx, 300);
	check(strncmp(ask(&inst, "a@x", "oot-block@y"), "REJECT out-of-tree", 18) == 0, "the marker is refused");
	check(strcmp(ask(&inst, "a@good.example", "b@y"), "") == 0, "a domain with MX passes");
	check(mock_dns_asked() == 1, "after one wait for its answer");
	check(strcmp(ask(&inst, "a@nx.example", "b@y"), "REJECT 5.7.1 sender domain has no MX") == 0,
	      "a domain that does not exist is refused");
	mock_instance_fini(&inst, &pd_plugin);
	cfg_free(cfg);
	mock_dns_reset();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
