/* test_spf_unit.c - spf plugin paths that need no DNS, on the mock host */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "mockhost.h"
#include "../unit/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const pd_plugin_info spf_LTX_pd_plugin;
extern const unsigned spf_LTX_pd_plugin_abi;
int spf_LTX_pd_plugin_init(pd_instance *inst);
int spf_LTX_pd_plugin_check(pd_instance *inst, const pd_request *req, pd_reply *reply);
void spf_LTX_pd_plugin_fini(pd_instance *inst);

/* RESOLV names a file with no nameserver lines: the resolver would use
 * 127.0.0.1, but every case below is decided before any lookup. */
#define BASE "receiver = \"mx.test\"\nresolv_conf = \"/nonexistent\"\n"

/* start - init an instance with section TEXT; 0 on success */
static int start(pd_instance *inst, cfg_t **cfg, const char *text)
{
	*cfg = mock_section(spf_LTX_pd_plugin.options, text);
	if (!*cfg)
		return -1;
	mock_instance(inst, "spf", *cfg, "/tmp");
	if (spf_LTX_pd_plugin_init(inst) != 0) {
		cfg_free(*cfg);
		return -1;
	}
	return 0;
}

/* stop - fini and free */
static void stop(pd_instance *inst, cfg_t *cfg)
{
	spf_LTX_pd_plugin_fini(inst);
	cfg_free(cfg);
}

/* ask - run one check; returns the reply text (static buffer) */
static const char *ask(pd_instance *inst, const char *ip, const char *helo, const char *sender, const char *instance)
{
	static char out[PD_REPLY_MAX + 1];
	pd_request *req = mock_request_new("request=smtpd_access_policy", "protocol_state=RCPT", NULL);
	pd_reply *rep = mock_reply_new();

	mock_request_set(req, "client_address", ip);
	mock_request_set(req, "helo_name", helo);
	mock_request_set(req, "sender", sender);
	mock_request_set(req, "instance", instance);
	CHECK(spf_LTX_pd_plugin_check(inst, req, rep) == PD_CHECK_OK);
	snprintf(out, sizeof(out), "%s", mock_reply_text(rep));
	mock_reply_free(rep);
	mock_request_free(req);
	return out;
}

/* main - init/option checks, then the DNS-free decisions */
int main(void)
{
	pd_instance inst;
	cfg_t *cfg;
	const char *r;

	CHECK(spf_LTX_pd_plugin_abi == PD_PLUGIN_ABI);
	CHECK(spf_LTX_pd_plugin.flags & PD_PLUGIN_SKIP_SASL);
	CHECK(!(spf_LTX_pd_plugin.flags & PD_PLUGIN_NONBLOCKING));

	/* bad options are refused at init */
	stderr_begin();
	CHECK(start(&inst, &cfg, BASE "mailfrom_fail = \"bounce\"\n") < 0);
	CHECK(start(&inst, &cfg, BASE "dns_timeout = 0\n") < 0);
	CHECK(start(&inst, &cfg, BASE "dns_timeout = 61\n") < 0);
	CHECK(start(&inst, &cfg, BASE "lookup_limit = 0\n") < 0);
	free(stderr_end());

	CHECK(start(&inst, &cfg, BASE) == 0);
	/* localhost is skipped by default */
	CHECK_STR(ask(&inst, "127.0.0.1", "mail.example.org", "a@example.org", "i1"), "");
	CHECK_STR(ask(&inst, "::1", "mail.example.org", "a@example.org", "i2"), "");
	/* no checkable domain: none, without DNS (RFC 7208 4.3) */
	r = ask(&inst, "192.0.2.1", "[192.0.2.1]", "", "i3");
	CHECK(strncmp(r, "PREPEND Received-SPF: none (mx.test: ", 37) == 0);
	CHECK(strstr(r, "receiver=mx.test; client-ip=192.0.2.1; envelope-from=\"<>\";") != NULL);
	CHECK(strstr(r, "identity=mailfrom;") != NULL);
	r = ask(&inst, "192.0.2.1", "localhost", "user@nodots", "i4");
	CHECK(strncmp(r, "PREPEND Received-SPF: none ", 27) == 0);
	r = ask(&inst, "192.0.2.1", "x", "user@a..example.org", "i5");
	CHECK(strncmp(r, "PREPEND Received-SPF: none ", 27) == 0);
	/* a second recipient of the same message gets no second header */
	CHECK_STR(ask(&inst, "192.0.2.1", "x", "user@a..example.org", "i5"), "");
	/* client data never breaks the header: quotes and separators replaced */
	r = ask(&inst, "192.0.2.1", "h\"e;l(o", "us\"er;x@nodots", "i6");
	CHECK(strstr(r, "helo=\"h?e?l?o\";") != NULL);
	CHECK(strstr(r, "envelope-from=\"us?er?x@nodots\";") != NULL);
	/* long client strings: the header still ends with its key-value pairs, within the limit */
	{
		char longh[300], longs[400];

		memset(longh, 'h', sizeof(longh) - 1);
		longh[sizeof(longh) - 1] = 0;
		memset(longs, 's', sizeof(longs) - 1);
		longs[sizeof(longs) - 1] = 0;
		longs[200] = '@';
		r = ask(&inst, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", longh, longs, "i8");
		CHECK(strlen(r) <= PD_REPLY_MAX);
		CHECK(strncmp(r, "PREPEND Received-SPF: none ", 27) == 0);
		CHECK(strlen(r) > 20 && strcmp(r + strlen(r) - 19, " identity=mailfrom;") == 0);
	}
	/* an unusable client address is a permerror (header by default) */
	r = ask(&inst, "not-an-ip", "mail.example.org", "a@example.org", "i7");
	CHECK(strncmp(r, "PREPEND Received-SPF: permerror ", 32) == 0);
	stop(&inst, cfg);

	/* skip lists and options */
	CHECK(start(&inst, &cfg,
	            BASE "skip_helo = { \"relay.example.net\", \".trusted.example\" }\n"
	                 "skip_localhost = false\nmailfrom_none = \"none\"\n") == 0);
	CHECK_STR(ask(&inst, "192.0.2.1", "relay.example.net", "a@nodots", "j1"), "");
	CHECK_STR(ask(&inst, "192.0.2.1", "MX1.Trusted.Example", "a@nodots", "j2"), "");
	CHECK_STR(ask(&inst, "192.0.2.1", "other.example.net", "a@nodots", "j3"), "");
	r = ask(&inst, "127.0.0.1", "[127.0.0.1]", "a@nodots", "j4");
	CHECK_STR(r, ""); /* checked (not skipped), result none, action none */
	stop(&inst, cfg);

	CHECK(start(&inst, &cfg, BASE "mailfrom_none = \"reject\"\nmailfrom_permerror = \"defer\"\n") == 0);
	r = ask(&inst, "192.0.2.1", "x", "a@nodots", "k1");
	CHECK(strncmp(r, "550 5.7.23 ", 11) == 0);
	r = ask(&inst, "bogus", "x", "a@example.org", "k2");
	CHECK(strncmp(r, "DEFER_IF_PERMIT 4.7.24 ", 23) == 0);
	stop(&inst, cfg);

	CHECK(start(&inst, &cfg, BASE "mailfrom_none = \"reject\"\nobserve = true\n") == 0);
	r = ask(&inst, "192.0.2.1", "x", "a@nodots", "l1");
	CHECK(strncmp(r, "PREPEND Received-SPF: none ", 27) == 0);
	stop(&inst, cfg);
	return tap_done();
}
