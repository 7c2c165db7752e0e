/* test_spamtrap.c - the spamtrap plugin on the mock host with an in-memory state service: hits, blocks, scopes, expiry, failures */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <policyd/mockhost.h>
#include "../unit/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a state service in memory, as host->store_* promise it (the mock host has none) ---- */

#define SLOTS 64
static struct {
	char key[128];
	char val[PD_STORE_RECORD_MAX];
	size_t len;
	time_t expires;
	int used;
} store[SLOTS];
static int store_fail;   /* 1: every call fails, as a backend that is down */
static int store_remote; /* what store_remote says */
static unsigned last_ttl;
static unsigned long sets, gets;

/* mem_remote - the configured answer */
static int mem_remote(const pd_instance *inst)
{
	(void)inst;
	return store_remote;
}

/* find - the live slot of KEY, or -1 (expired ones are forgotten) */
static int find(const char *key)
{
	for (int i = 0; i < SLOTS; i++)
		if (store[i].used && strcmp(store[i].key, key) == 0) {
			if (store[i].expires <= mock_clock) {
				store[i].used = 0;
				return -1;
			}
			return i;
		}
	return -1;
}

/* mem_set - replace KEY with a TTL */
static int mem_set(pd_instance *inst, const char *key, const void *val, size_t len, unsigned ttl_s)
{
	int i = find(key);

	(void)inst;
	sets++;
	if (store_fail || len > sizeof(store[0].val) || strlen(key) >= sizeof(store[0].key))
		return -1;
	for (int k = 0; i < 0 && k < SLOTS; k++)
		if (!store[k].used)
			i = k;
	if (i < 0)
		return -1;
	snprintf(store[i].key, sizeof(store[i].key), "%s", key);
	memcpy(store[i].val, val, len);
	store[i].len = len;
	store[i].expires = mock_clock + (time_t)ttl_s;
	store[i].used = 1;
	last_ttl = ttl_s;
	return 0;
}

/* mem_get - 1 with the value and the seconds left, 0 absent */
static int mem_get(pd_instance *inst, const char *key, pd_store_value *val)
{
	int i;

	(void)inst;
	gets++;
	if (store_fail)
		return -1;
	i = find(key);
	if (i < 0)
		return 0;
	val->data = store[i].val;
	val->len = store[i].len;
	val->ttl = (unsigned)(store[i].expires - mock_clock);
	return 1;
}

/* mem_del - remove KEY */
static int mem_del(pd_instance *inst, const char *key)
{
	int i = find(key);

	(void)inst;
	if (store_fail)
		return -1;
	if (i >= 0)
		store[i].used = 0;
	return 0;
}

/* store_reset - empty, working, local */
static void store_reset(void)
{
	memset(store, 0, sizeof(store));
	store_fail = store_remote = 0;
	last_ttl = 0;
}

/* has_key - is KEY stored (and live)? */
static int has_key(const char *key)
{
	return find(key) >= 0;
}

static pd_host host; /* the mock host with the store above */

/* ---- helpers ---- */

static char dir[] = "/tmp/test_spamtrap.XXXXXX";

/* start - parse TEXT, validate, init on HOST; 0 on success */
static int start(pd_instance *inst, cfg_t **cfg, const char *text)
{
	*cfg = mock_section(pd_plugin.options, text);
	if (!*cfg)
		return -1;
	if (pd_plugin.validate(*cfg) != 0) {
		cfg_free(*cfg);
		return -1;
	}
	memset(inst, 0, sizeof(*inst));
	inst->host = &host;
	inst->name = "spamtrap";
	inst->plugin = "spamtrap";
	inst->cfg = *cfg;
	inst->state_dir = dir;
	inst->blocking = 1;
	if (pd_plugin.init(inst) != 0) {
		cfg_free(*cfg);
		return -1;
	}
	return 0;
}

#define STARTED(text)                                                                \
	do {                                                                         \
		if (start(&inst, &cfg, (text)) != 0) {                               \
			printf("FAIL %s:%d: init failed\n", __FILE__, __LINE__);     \
			tap_fail++;                                                  \
			return;                                                      \
		}                                                                    \
		tap_pass++;                                                          \
	} while (0)

/* stop - fini and free */
static void stop(pd_instance *inst, cfg_t *cfg)
{
	pd_plugin.fini(inst);
	cfg_free(cfg);
}

/* ask - one RCPT request from CLIENT to RCPT; the reply text (static), *RC the check's result */
static const char *ask_rc(pd_instance *inst, const char *client, const char *rcpt, int *rc)
{
	static char out[PD_REPLY_MAX + 1];
	pd_request *req = mock_request_new("request=smtpd_access_policy", "protocol_state=RCPT", "sender=a@b.example",
					   NULL);
	pd_reply *rep = mock_reply_new();

	mock_request_set(req, "client_address", client);
	mock_request_set(req, "recipient", rcpt);
	*rc = pd_plugin.check(inst, req, rep);
	snprintf(out, sizeof(out), "%s", mock_reply_text(rep));
	mock_reply_free(rep);
	mock_request_free(req);
	return out;
}

/* ask - ask_rc expecting PD_CHECK_OK */
static const char *ask(pd_instance *inst, const char *client, const char *rcpt)
{
	int rc;
	const char *r = ask_rc(inst, client, rcpt, &rc);

	CHECK(rc == PD_CHECK_OK);
	return r;
}

#define TRAP "550 5.1.1 User unknown"
#define BLOCKED "DEFER_IF_PERMIT 4.7.1 Service unavailable: your mail server sent mail to a spam trap; try again later"

/* test_hit_then_blocked - a hit is rejected, then the client's other mail deferred, for `block` */
static void test_hit_then_blocked(void)
{
	pd_instance inst;
	cfg_t *cfg;

	store_reset();
	STARTED("traps = { \"trap@example.org\", \"@trap.example.org\" } block = 7d");
	CHECK(inst.blocking == 0); /* a local store: never waits */
	CHECK_STR(ask(&inst, "192.0.2.10", "bob@example.org"), "");
	CHECK_STR(ask(&inst, "192.0.2.10", "trap@example.org"), TRAP);
	CHECK(has_key("192.0.2.10/32"));
	CHECK(last_ttl == 7 * 86400);
	CHECK_STR(ask(&inst, "192.0.2.10", "bob@example.org"), BLOCKED);
	CHECK_STR(ask(&inst, "::ffff:192.0.2.10", "carol@example.org"), BLOCKED); /* IPv4-mapped: the same client */
	CHECK_STR(ask(&inst, "192.0.2.11", "bob@example.org"), "");            /* /32: the neighbour is not */
	/* @domain traps: the domain, not its subdomains */
	CHECK_STR(ask(&inst, "198.51.100.1", "anyone@trap.example.org"), TRAP);
	CHECK(has_key("198.51.100.1/32"));
	CHECK_STR(ask(&inst, "198.51.100.2", "x@sub.trap.example.org"), "");
	CHECK(!has_key("198.51.100.2/32"));
	/* the block expires */
	mock_clock += 7 * 86400 - 1;
	CHECK_STR(ask(&inst, "192.0.2.10", "bob@example.org"), BLOCKED);
	mock_clock += 1;
	CHECK_STR(ask(&inst, "192.0.2.10", "bob@example.org"), "");
	/* the trap's own mail from a blocked client: still the trap answer, and the block starts again */
	CHECK_STR(ask(&inst, "198.51.100.1", "trap@example.org"), TRAP);
	stop(&inst, cfg);
}

/* test_scopes - ipv4_prefix = 24 blocks the /24; IPv6 blocks the /64 */
static void test_scopes(void)
{
	pd_instance inst;
	cfg_t *cfg;

	store_reset();
	STARTED("traps = { \"trap@example.org\" } ipv4_prefix = 24");
	CHECK_STR(ask(&inst, "192.0.2.77", "trap@example.org"), TRAP);
	CHECK(has_key("192.0.2.0/24"));
	CHECK_STR(ask(&inst, "192.0.2.1", "bob@example.org"), BLOCKED);
	CHECK_STR(ask(&inst, "192.0.2.254", "bob@example.org"), BLOCKED);
	CHECK_STR(ask(&inst, "192.0.3.1", "bob@example.org"), "");
	/* IPv6: the /64 */
	CHECK_STR(ask(&inst, "2001:db8:1:2:a:b:c:d", "trap@example.org"), TRAP);
	CHECK(has_key("2001:db8:1:2::/64"));
	CHECK_STR(ask(&inst, "2001:db8:1:2::99", "bob@example.org"), BLOCKED);
	CHECK_STR(ask(&inst, "2001:DB8:1:2:ffff:ffff:ffff:ffff", "bob@example.org"), BLOCKED);
	CHECK_STR(ask(&inst, "2001:db8:1:3::1", "bob@example.org"), "");
	stop(&inst, cfg);

	store_reset();
	STARTED("traps = { \"trap@example.org\" } ipv6_prefix = 48 ipv4_prefix = 20");
	CHECK_STR(ask(&inst, "2001:db8:1:2::1", "trap@example.org"), TRAP);
	CHECK(has_key("2001:db8:1::/48"));
	CHECK_STR(ask(&inst, "2001:db8:1:ffff::1", "bob@example.org"), BLOCKED);
	CHECK_STR(ask(&inst, "203.0.113.200", "trap@example.org"), TRAP);
	CHECK(has_key("203.0.112.0/20"));
	stop(&inst, cfg);
}

/* test_never_block_and_file - never_block networks are not blocked; traps from a file, regexes included */
static void test_never_block_and_file(void)
{
	pd_instance inst;
	cfg_t *cfg;
	char path[256], text[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/traps", dir);
	f = fopen(path, "w");
	fputs("# traps\n\nfile-trap@example.net\n   @old.example.net\n/^honey[0-9]+@example\\.com$/\nspam@\n", f);
	fclose(f);
	store_reset();
	snprintf(text, sizeof(text), "traps_file = \"%s\" never_block = { \"192.0.2.0/24\", \"2001:db8::/32\" }", path);
	STARTED(text);
	CHECK_STR(ask(&inst, "192.0.2.5", "file-trap@example.net"), TRAP); /* rejected, */
	CHECK(!has_key("192.0.2.5/32"));                                  /* not blocked */
	CHECK_STR(ask(&inst, "192.0.2.5", "bob@example.org"), "");
	CHECK_STR(ask(&inst, "2001:db8::5", "x@old.example.net"), TRAP);
	CHECK(!has_key("2001:db8::/64"));
	CHECK_STR(ask(&inst, "198.51.100.9", "honey42@example.com"), TRAP);
	CHECK(has_key("198.51.100.9/32"));
	CHECK_STR(ask(&inst, "198.51.100.10", "honey42@example.com.evil"), "");
	CHECK_STR(ask(&inst, "198.51.100.11", "spam@anywhere.test"), TRAP); /* user@ form */
	CHECK_STR(ask(&inst, "198.51.100.12", "<>"), "");
	CHECK_STR(ask(&inst, "198.51.100.12", ""), "");
	stop(&inst, cfg);

	/* a bad line: file:line */
	f = fopen(path, "w");
	fputs("good@example.net\nbad trap@example.net\n", f);
	fclose(f);
	stderr_begin();
	CHECK(start(&inst, &cfg, text) != 0);
	{
		char *log = stderr_end(), want[300];

		snprintf(want, sizeof(want), "%s:2: ", path);
		CHECK(strstr(log, want) != NULL);
		free(log);
	}
	f = fopen(path, "w");
	fputs("good@example.net\n/([/\n", f);
	fclose(f);
	stderr_begin();
	CHECK(start(&inst, &cfg, text) != 0);
	{
		char *log = stderr_end(), want[300];

		snprintf(want, sizeof(want), "%s:2: ", path);
		CHECK(strstr(log, want) != NULL);
		free(log);
	}
}

/* test_store_down - a failed lookup is PD_CHECK_ERROR (on_error); a trap hit is still rejected */
static void test_store_down(void)
{
	pd_instance inst;
	cfg_t *cfg;
	int rc;

	store_reset();
	store_remote = 1;
	STARTED("traps = { \"trap@example.org\" } blocked_action = \"450 4.7.1 blocked\" "
		"trap_action = \"550 5.7.1 trap\"");
	CHECK(inst.blocking == 1); /* a shared store: the worker threads run it */
	store_fail = 1;
	ask_rc(&inst, "192.0.2.10", "bob@example.org", &rc);
	CHECK(rc == PD_CHECK_ERROR);
	stderr_begin();
	CHECK_STR(ask_rc(&inst, "192.0.2.10", "trap@example.org", &rc), "550 5.7.1 trap");
	CHECK(rc == PD_CHECK_OK);
	{
		char *log = stderr_end();
		CHECK(strstr(log, "could not be stored") != NULL);
		free(log);
	}
	store_fail = 0;
	CHECK_STR(ask(&inst, "192.0.2.10", "trap@example.org"), "550 5.7.1 trap");
	CHECK_STR(ask(&inst, "192.0.2.10", "bob@example.org"), "450 4.7.1 blocked");
	stop(&inst, cfg);
}

/* test_validate - options checked with the section's line */
static void test_validate(void)
{
	static const char *const bad[] = {
	    "",
	    "traps = { \"not an address\" }",
	    "traps = { \"/([/\" }",
	    "traps = { \"t@x\" } block = 0",
	    "traps = { \"t@x\" } block = 7y",
	    "traps = { \"t@x\" } block = 400d",
	    "traps = { \"t@x\" } blocked_action = \"OK\"",
	    "traps = { \"t@x\" } blocked_action = \"250 fine\"",
	    "traps = { \"t@x\" } trap_action = \"DUNNO\"",
	    "traps = { \"t@x\" } never_block = { \"192.0.2.300\" }",
	    "traps = { \"t@x\" } ipv4_prefix = 33",
	    "traps = { \"t@x\" } ipv6_prefix = 8",
	    "traps_file = \"relative\"",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg_t *cfg;

		stderr_begin();
		cfg = mock_section(pd_plugin.options, bad[i]);
		if (cfg && pd_plugin.validate(cfg) == 0) {
			printf("FAIL: validate accepted %s\n", bad[i]);
			tap_fail++;
		} else {
			tap_pass++;
		}
		free(stderr_end());
		if (cfg)
			cfg_free(cfg);
	}
	{
		cfg_t *cfg = mock_section(pd_plugin.options, "traps = { \"t@x\", \"/^a/\" } block = 2w blocked_action = "
							       "\"DEFER 4.7.1 x\" trap_action = \"REJECT\"");
		CHECK(cfg && pd_plugin.validate(cfg) == 0 && cfg_getint(cfg, "block") == 14 * 86400);
		if (cfg)
			cfg_free(cfg);
	}
	CHECK(pd_plugin.flags & PD_PLUGIN_SKIP_SASL);
	CHECK(pd_plugin.flags & PD_PLUGIN_STATE); /* else the core opens no store for it */
}

/* main - every case on the host with an in-memory store */
int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	host = mock_host;
	host.store_remote = mem_remote;
	host.store_set = mem_set;
	host.store_get = mem_get;
	host.store_del = mem_del;
	test_hit_then_blocked();
	test_scopes();
	test_never_block_and_file();
	test_store_down();
	test_validate();
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return tap_done();
}
