/* test_spf_unit.c - the spf plugin on the mock host: options, DNS-free decisions, checks that wait for DNS */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <policyd/mockhost.h>
#include "../unit/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The mock host answers DNS from a table; most cases below are decided
 * before any lookup, the last ones wait for answers as in the daemon. */
#define BASE "receiver = \"mx.test\"\n"

/* start - init an instance with section TEXT; 0 on success */
static int start(pd_instance *inst, cfg_t **cfg, const char *text)
{
	*cfg = mock_section(pd_plugin.options, text);
	if (!*cfg)
		return -1;
	if (mock_instance_init(inst, &pd_plugin, "spf", *cfg, "/tmp") != 0) {
		cfg_free(*cfg);
		return -1;
	}
	return 0;
}

/* stop - fini and free */
static void stop(pd_instance *inst, cfg_t *cfg)
{
	mock_instance_fini(inst, &pd_plugin);
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
	CHECK(mock_check(&pd_plugin, inst, req, rep) == PD_CHECK_OK);
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

	CHECK(pd_plugin.abi == PD_PLUGIN_ABI);
	CHECK(pd_plugin.flags & PD_PLUGIN_SKIP_SASL);

	/* bad options are refused at init */
	stderr_begin();
	CHECK(start(&inst, &cfg, BASE "mailfrom_fail = \"bounce\"\n") < 0);
	CHECK(start(&inst, &cfg, BASE "dns_timeout = 0\n") < 0);
	CHECK(start(&inst, &cfg, BASE "dns_timeout = 61\n") < 0);
	CHECK(start(&inst, &cfg, BASE "lookup_limit = 0\n") < 0);
	free(stderr_end());

	CHECK(start(&inst, &cfg, BASE) == 0);
	CHECK(inst.blocking == 0);        /* it waits for DNS through the core, never on a thread */
	CHECK(inst.dns_timeout_ms == 5000); /* dns_timeout */
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

	/* checks that wait for DNS: the HELO and the MAIL FROM records are asked
	 * in one pass (two lookups, one wait), then the check runs again */
	{
		static const char *const pass[] = {"v=spf1 ip4:192.0.2.0/24 -all", NULL};
		static const char *const fail[] = {"v=spf1 -all", NULL};

		mock_dns_reset();
		mock_dns_answer("sender.example", PD_DNS_TXT, PD_DNS_OK, pass, 300);
		mock_dns_answer("helo.example", PD_DNS_TXT, PD_DNS_OK, pass, 300);
		mock_dns_answer("bad.example", PD_DNS_TXT, PD_DNS_OK, fail, 300);
		CHECK(start(&inst, &cfg, BASE "cache_size = 0\n") == 0);
		CHECK(inst.dns_cache == 0); /* cache_size = 0: the core's cache is not used */
		r = ask(&inst, "192.0.2.9", "helo.example", "a@sender.example", "m1");
		CHECK(strncmp(r, "PREPEND Received-SPF: pass ", 27) == 0);
		CHECK(mock_dns_asked() == 2);
		r = ask(&inst, "192.0.2.9", "helo.example", "a@bad.example", "m2");
		CHECK(strncmp(r, "550 5.7.23 ", 11) == 0);
		r = ask(&inst, "192.0.2.9", "helo.example", "a@nx.example", "m3"); /* no such domain: none */
		CHECK(strncmp(r, "PREPEND Received-SPF: none ", 27) == 0);
		stop(&inst, cfg);
		mock_dns_reset();
		mock_dns_answer("slow.example", PD_DNS_TXT, PD_DNS_TIMEOUT, NULL, 0);
		CHECK(start(&inst, &cfg, BASE "helo_check = false\n") == 0);
		r = ask(&inst, "192.0.2.9", "x", "a@slow.example", "n1"); /* a dead resolver: temperror */
		CHECK(strncmp(r, "DEFER_IF_PERMIT 4.7.24 SPF temperror", 36) == 0);
		CHECK(strstr(r, "DNS timeout") != NULL);
		stop(&inst, cfg);
		mock_dns_reset();
	}
	return tap_done();
}
