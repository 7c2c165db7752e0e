/* test_access.c - the access plugin on the mock host: every match kind and its edge cases, order, scores, bad tables */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <policyd/mockhost.h>
#include "../unit/tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/test_access.XXXXXX";

/* file - write TEXT to DIR/NAME; returns the path (static ring of buffers) */
static const char *file(const char *name, const char *text)
{
	static char paths[8][256];
	static int k;
	char *p = paths[k++ % 8];
	FILE *f;

	snprintf(p, 256, "%s/%s", dir, name);
	f = fopen(p, "w");
	if (!f) {
		perror(p);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
	return p;
}

/* section - the section text with one table ATTR/KIND over PATH */
static const char *one_table(const char *attr, const char *kind, const char *path)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "table \"t\" { attribute = \"%s\" file = \"%s\" match = \"%s\" }\n", attr, path,
		 kind);
	return buf;
}

/* start - parse TEXT, validate it, init an instance; 0 on success */
static int start(pd_instance *inst, cfg_t **cfg, const char *text)
{
	*cfg = mock_section(pd_plugin.options, text);
	if (!*cfg)
		return -1;
	if (pd_plugin.validate(*cfg) != 0 || mock_instance_init(inst, &pd_plugin, "access", *cfg, dir) != 0) {
		cfg_free(*cfg);
		*cfg = NULL;
		return -1;
	}
	return 0;
}

/* STARTED - start, or count a failure and leave the test function */
#define STARTED(text)                                                                    \
	do {                                                                             \
		if (start(&inst, &cfg, (text)) != 0) {                                   \
			printf("FAIL %s:%d: init failed\n", __FILE__, __LINE__);         \
			tap_fail++;                                                      \
			return;                                                          \
		}                                                                        \
		tap_pass++;                                                              \
	} while (0)

/* stop - fini and free */
static void stop(pd_instance *inst, cfg_t *cfg)
{
	mock_instance_fini(inst, &pd_plugin);
	cfg_free(cfg);
}

/* ask - one check with attribute NAME = VALUE (NULL: not sent); the reply text, static */
static const char *ask2(pd_instance *inst, const char *name, const char *value, const char *name2,
			const char *value2, double *score)
{
	static char out[PD_REPLY_MAX + 1];
	pd_request *req = mock_request_new("request=smtpd_access_policy", "protocol_state=RCPT", NULL);
	pd_reply *rep = mock_reply_new();

	if (value)
		mock_request_set(req, name, value);
	if (name2 && value2)
		mock_request_set(req, name2, value2);
	CHECK(mock_check(&pd_plugin, inst, req, rep) == PD_CHECK_OK);
	snprintf(out, sizeof(out), "%s", mock_reply_text(rep));
	if (score)
		*score = mock_host.score_sum(req);
	mock_reply_free(rep);
	mock_request_free(req);
	return out;
}

/* ask - one attribute */
static const char *ask(pd_instance *inst, const char *name, const char *value)
{
	return ask2(inst, name, value, NULL, NULL, NULL);
}

/* test_cidr - IPv4, IPv6, IPv4-mapped clients, longest prefix, /0 */
static void test_cidr(void)
{
	pd_instance inst;
	cfg_t *cfg;
	const char *p = file("cidr", "# clients\n"
				     "192.0.2.0/24   REJECT 5.7.1 net\n"
				     "192.0.2.7      OK\n"
				     "2001:db8::/32  DEFER_IF_PERMIT 4.7.1 v6 net\n"
				     "2001:db8:1::1  550 5.7.1 v6 host\n"
				     "::ffff:198.51.100.0/120 HOLD mapped key\n"
				     "::/0           WARN any v6\n");

	STARTED(one_table("client_address", "cidr", p));
	CHECK_STR(ask(&inst, "client_address", "192.0.2.1"), "REJECT 5.7.1 net");
	CHECK_STR(ask(&inst, "client_address", "192.0.2.7"), "OK"); /* longest prefix, not file order */
	CHECK_STR(ask(&inst, "client_address", "::ffff:192.0.2.1"), "REJECT 5.7.1 net"); /* IPv4-mapped client */
	CHECK_STR(ask(&inst, "client_address", "::FFFF:192.0.2.7"), "OK");
	CHECK_STR(ask(&inst, "client_address", "198.51.100.9"), "HOLD mapped key"); /* a mapped key is IPv4 */
	CHECK_STR(ask(&inst, "client_address", "2001:db8:5::9"), "DEFER_IF_PERMIT 4.7.1 v6 net");
	CHECK_STR(ask(&inst, "client_address", "2001:DB8:1::1"), "550 5.7.1 v6 host");
	CHECK_STR(ask(&inst, "client_address", "2001:db9::1"), "WARN any v6");
	CHECK_STR(ask(&inst, "client_address", "203.0.113.1"), "");       /* ::/0 is not every IPv4 client */
	CHECK_STR(ask(&inst, "client_address", "::ffff:203.0.113.1"), ""); /* nor a mapped one */
	CHECK_STR(ask(&inst, "client_address", "not-an-address"), "");
	CHECK_STR(ask(&inst, "client_address", NULL), ""); /* no such attribute: the table is skipped */
	stop(&inst, cfg);
}

/* test_exact - user@domain, user@, @domain, domain, <>, case, no parent domains */
static void test_exact(void)
{
	pd_instance inst;
	cfg_t *cfg;
	const char *p = file("exact", "alice@example.org   REJECT alice\n"
				      "postmaster@         OK\n"
				      "@example.com        REJECT domain\n"
				      "example.net         DISCARD bare domain\n"
				      "<>                  DEFER_IF_PERMIT 4.7.1 null sender\n");

	STARTED(one_table("sender", "exact", p));
	CHECK_STR(ask(&inst, "sender", "alice@example.org"), "REJECT alice");
	CHECK_STR(ask(&inst, "sender", "<Alice@EXAMPLE.org>"), "REJECT alice");
	CHECK_STR(ask(&inst, "sender", "alice@example.org."), "REJECT alice"); /* one trailing dot */
	CHECK_STR(ask(&inst, "sender", "bob@example.org"), "");
	CHECK_STR(ask(&inst, "sender", "postmaster@anywhere.test"), "OK");
	CHECK_STR(ask(&inst, "sender", "carol@example.com"), "REJECT domain");
	CHECK_STR(ask(&inst, "sender", "carol@sub.example.com"), ""); /* @domain: not its subdomains */
	CHECK_STR(ask(&inst, "sender", "dave@example.net"), "DISCARD bare domain");
	CHECK_STR(ask(&inst, "sender", "dave@mx.example.net"), ""); /* exact: no parent domain */
	CHECK_STR(ask(&inst, "sender", ""), "DEFER_IF_PERMIT 4.7.1 null sender");
	CHECK_STR(ask(&inst, "sender", "<>"), "DEFER_IF_PERMIT 4.7.1 null sender");
	CHECK_STR(ask(&inst, "sender", NULL), "");
	/* the address's full form is tried before @domain, @domain before user@ */
	stop(&inst, cfg);

	p = file("exact2", "postmaster@ REJECT local part\n@example.com DISCARD domain\n");
	STARTED(one_table("recipient", "exact", p));
	CHECK_STR(ask(&inst, "recipient", "postmaster@example.com"), "DISCARD domain");
	CHECK_STR(ask(&inst, "recipient", "postmaster@example.org"), "REJECT local part");
	CHECK_STR(ask(&inst, "recipient", ""), ""); /* an empty recipient is not the null sender */
	stop(&inst, cfg);

	/* .domain needs a suffix table */
	p = file("exact3", ".example.com REJECT\n");
	stderr_begin();
	CHECK(start(&inst, &cfg, one_table("sender", "exact", p)) != 0);
	{
		char *log = stderr_end();
		CHECK(strstr(log, "exact3:1:") != NULL);
		free(log);
	}
}

/* test_suffix - domain and its subdomains, .domain only subdomains, @domain only itself */
static void test_suffix(void)
{
	pd_instance inst;
	cfg_t *cfg;
	const char *p = file("suffix", "example.com        REJECT domain and below\n"
				       ".sub.example.org   REJECT below only\n"
				       "@example.net       REJECT that domain\n"
				       "user@example.info  HOLD user\n"
				       "example.info       REJECT info\n");

	STARTED(one_table("recipient", "suffix", p));
	CHECK_STR(ask(&inst, "recipient", "a@example.com"), "REJECT domain and below");
	CHECK_STR(ask(&inst, "recipient", "a@b.c.example.com"), "REJECT domain and below");
	CHECK_STR(ask(&inst, "recipient", "a@notexample.com"), "");
	CHECK_STR(ask(&inst, "recipient", "a@sub.example.org"), ""); /* .domain: not the domain itself */
	CHECK_STR(ask(&inst, "recipient", "a@x.sub.example.org"), "REJECT below only");
	CHECK_STR(ask(&inst, "recipient", "a@example.net"), "REJECT that domain");
	CHECK_STR(ask(&inst, "recipient", "a@x.example.net"), ""); /* @domain never matches subdomains */
	CHECK_STR(ask(&inst, "recipient", "user@example.info"), "HOLD user"); /* user@domain before domain */
	CHECK_STR(ask(&inst, "recipient", "other@example.info"), "REJECT info");
	stop(&inst, cfg);

	/* a host name (no '@'): the domain and its parents */
	p = file("names", ".dyn.example.net REJECT 5.7.1 dynamic\n");
	STARTED(one_table("client_name", "suffix", p));
	CHECK_STR(ask(&inst, "client_name", "host-1.dyn.example.net"), "REJECT 5.7.1 dynamic");
	CHECK_STR(ask(&inst, "client_name", "dyn.example.net"), "");
	CHECK_STR(ask(&inst, "client_name", "unknown"), "");
	stop(&inst, cfg);
}

/* test_regex - POSIX extended, case-insensitive, unanchored unless the admin anchors, in file order */
static void test_regex(void)
{
	pd_instance inst;
	cfg_t *cfg;
	const char *p = file("regex", "/^[0-9]+-[0-9]+-[0-9]+\\.dyn\\.example\\.net$/ REJECT 5.7.1 dynamic\n"
				      "/(mail|smtp)[0-9]?\\.example\\.org$/ OK\n"
				      "/example/ WARN unanchored\n"
				      "/^.*$/ REJECT everything else\n");

	STARTED(one_table("client_name", "regex", p));
	CHECK_STR(ask(&inst, "client_name", "10-1-2.dyn.example.net"), "REJECT 5.7.1 dynamic");
	CHECK_STR(ask(&inst, "client_name", "10-1-2.DYN.Example.NET"), "REJECT 5.7.1 dynamic");
	CHECK_STR(ask(&inst, "client_name", "x10-1-2.dyn.example.net.evil"), "WARN unanchored");
	CHECK_STR(ask(&inst, "client_name", "smtp2.example.org"), "OK"); /* ERE alternation and ? */
	CHECK_STR(ask(&inst, "client_name", "mail.example.org.evil.test"), "WARN unanchored");
	CHECK_STR(ask(&inst, "client_name", "other.test"), "REJECT everything else");
	stop(&inst, cfg);

	p = file("regex-bad", "/ok/ OK\n/([unclosed/ REJECT\n");
	stderr_begin();
	CHECK(start(&inst, &cfg, one_table("client_name", "regex", p)) != 0);
	{
		char *log = stderr_end();
		CHECK(strstr(log, "regex-bad:2:") != NULL);
		free(log);
	}
}

/* test_order - tables in order, the first match wins; a score answers DUNNO and adds to the score */
static void test_order(void)
{
	pd_instance inst;
	cfg_t *cfg;
	char text[2048];
	const char *a = file("o-clients", "192.0.2.0/24 score:+3.5\n198.51.100.0/24 REJECT client\n");
	const char *b = file("o-senders", "@example.org REJECT sender\n@example.com score:-2\n");
	double score = 0;

	snprintf(text, sizeof(text),
		 "table \"clients\" { attribute = \"client_address\" file = \"%s\" match = \"cidr\" }\n"
		 "table \"senders\" { attribute = \"sender\" file = \"%s\" match = \"exact\" }\n",
		 a, b);
	STARTED(text);
	/* both tables match: the first (clients) answers */
	CHECK_STR(ask2(&inst, "client_address", "198.51.100.1", "sender", "x@example.org", NULL), "REJECT client");
	/* the first does not match: the second answers */
	CHECK_STR(ask2(&inst, "client_address", "203.0.113.1", "sender", "x@example.org", NULL), "REJECT sender");
	/* a score is the first table's answer: DUNNO, the second table is not asked */
	CHECK_STR(ask2(&inst, "client_address", "192.0.2.1", "sender", "x@example.org", &score), "");
	CHECK(fabs(score - 3.5) < 1e-9);
	CHECK_STR(ask2(&inst, "client_address", "203.0.113.1", "sender", "x@example.com", &score), "");
	CHECK(fabs(score + 2) < 1e-9);
	CHECK_STR(ask2(&inst, "client_address", "203.0.113.1", "sender", "x@example.net", &score), "");
	CHECK(score == 0);
	stop(&inst, cfg);

	/* the other order: senders first */
	snprintf(text, sizeof(text),
		 "table \"senders\" { attribute = \"sender\" file = \"%s\" match = \"exact\" }\n"
		 "table \"clients\" { attribute = \"client_address\" file = \"%s\" match = \"cidr\" }\n",
		 b, a);
	STARTED(text);
	CHECK_STR(ask2(&inst, "client_address", "198.51.100.1", "sender", "x@example.org", NULL), "REJECT sender");
	stop(&inst, cfg);
}

/* bad_table - a table of KIND with CONTENT fails the init, and the log names NEEDLE */
static void bad_table(const char *kind, const char *content, const char *needle)
{
	pd_instance inst;
	cfg_t *cfg;
	const char *p = file("bad", content);
	char *log;

	stderr_begin();
	CHECK(start(&inst, &cfg, one_table("sender", kind, p)) != 0);
	log = stderr_end();
	if (!strstr(log, needle)) {
		printf("FAIL: expected \"%s\" in the log of a bad table:\n%s", needle, log);
		tap_fail++;
	}
	free(log);
}

/* test_values - actions are checked at load: a known word (with or without text as it requires), 4NN/5NN, score */
static void test_values(void)
{
	pd_instance inst;
	cfg_t *cfg;
	const char *p = file("good", "a@x OK\nb@x dunno\nc@x REJECT\nd@x reject 5.7.1 text\ne@x 450 4.7.1 later\n"
				     "f@x 550\ng@x DEFER_IF_REJECT x\nh@x BCC archive@example.org\n"
				     "i@x FILTER smtp:[127.0.0.1]:10025\nj@x PREPEND X-Test: yes\n"
				     "k@x REDIRECT other@example.org\nl@x HOLD\nm@x DISCARD\nn@x INFO note\nw@x WARN\n"
				     "o@x DEFER\np@x DEFER_IF_PERMIT\nq@x score:+1\nr@x score:-0.5\ns@x SCORE:+.5\n");

	STARTED(one_table("sender", "exact", p));
	CHECK_STR(ask(&inst, "sender", "d@x"), "reject 5.7.1 text");
	CHECK_STR(ask(&inst, "sender", "j@x"), "PREPEND X-Test: yes");
	stop(&inst, cfg);

	bad_table("exact", "a@x OK\nb@x REJECTED\n", "bad:2: ");
	bad_table("exact", "a@x OK\n\n# c\nb@x OK please\n", "bad:4: ");
	bad_table("exact", "b@x BCC\n", "BCC needs an argument");
	bad_table("exact", "b@x 250 ok\n", "bad:1: ");
	bad_table("exact", "b@x 4501 no\n", "bad:1: ");
	bad_table("exact", "b@x score:3\n", "score:+N");
	bad_table("exact", "b@x score:+3x\n", "bad:1: ");
	bad_table("exact", "b@x score:+1e9\n", "bad:1: ");
	bad_table("exact", "b@x score:+nan\n", "bad:1: ");
	bad_table("exact", "b@x permit_mynetworks\n", "is not an action");
	bad_table("exact", "b@x\n", "bad:1: "); /* a key without an action */
	bad_table("cidr", "192.0.2.1/24 REJECT\n", "bad:1: "); /* host bits past the prefix */
	bad_table("cidr", "192.0.2.300 REJECT\n", "bad:1: ");
	bad_table("exact", "a@x OK\n  b@x OK\n", "bad:2: "); /* a continuation line */
	{
		char text[256];
		snprintf(text, sizeof(text), "%s/nonexistent", dir);
		stderr_begin();
		CHECK(start(&inst, &cfg, one_table("sender", "exact", text)) != 0);
		free(stderr_end());
	}
}

/* test_validate - the section's own checks, with the section's line */
static void test_validate(void)
{
	static const char *const bad[] = {
	    "",
	    "table \"t\" { attribute = \"sender\" file = \"/x\" match = \"glob\" }",
	    "table \"t\" { attribute = \"\" file = \"/x\" match = \"exact\" }",
	    "table \"t\" { attribute = \"send er\" file = \"/x\" match = \"exact\" }",
	    "table \"t\" { attribute = \"sender\" file = \"\" match = \"exact\" }",
	    "table \"t\" { attribute = \"sender\" file = \"/x\" }",
	    "table \"t\" { attribute = \"sender\" file = \"relative\" match = \"exact\" }",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg_t *cfg = mock_section(pd_plugin.options, bad[i]);

		CHECK(cfg != NULL);
		if (!cfg)
			continue;
		stderr_begin();
		if (pd_plugin.validate(cfg) == 0) {
			printf("FAIL: validate accepted %s\n", bad[i]);
			tap_fail++;
		} else {
			tap_pass++;
		}
		free(stderr_end());
		cfg_free(cfg);
	}
	/* two tables of one name */
	CHECK(mock_section(pd_plugin.options, "table \"t\" { attribute = \"sender\" file = \"/x\" match = \"exact\" }\n"
					      "table \"t\" { attribute = \"sender\" file = \"/y\" match = \"exact\" }") ==
	      NULL);
}

/* test_big - 100k entries of each kind look up right (the scale itself is bench/table-bench's and bench/run's) */
static void test_big(void)
{
	pd_instance inst;
	cfg_t *cfg;
	char path[256], text[1024], ip[64], addr[64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/big", dir);
	f = fopen(path, "w");
	for (unsigned i = 0; i < 100000; i++)
		fprintf(f, "10.%u.%u.%u %s\n", (i >> 16) & 255, (i >> 8) & 255, i & 255, i % 2 ? "REJECT odd" : "OK");
	fclose(f);
	snprintf(text, sizeof(text), "table \"t\" { attribute = \"client_address\" file = \"%s\" match = \"cidr\" }\n",
		 path);
	STARTED(text);
	snprintf(ip, sizeof(ip), "10.%u.%u.%u", (77777u >> 16) & 255, (77777u >> 8) & 255, 77777u & 255);
	CHECK_STR(ask(&inst, "client_address", ip), "REJECT odd");
	CHECK_STR(ask(&inst, "client_address", "10.1.134.158"), "OK"); /* entry 99998, the last but one */
	CHECK_STR(ask(&inst, "client_address", "10.2.0.0"), "");
	stop(&inst, cfg);

	f = fopen(path, "w");
	for (unsigned i = 0; i < 100000; i++)
		fprintf(f, "user%u@d%u.example.org REJECT %u\n", i, i % 977, i);
	fclose(f);
	snprintf(text, sizeof(text), "table \"t\" { attribute = \"sender\" file = \"%s\" match = \"exact\" }\n", path);
	STARTED(text);
	snprintf(addr, sizeof(addr), "user%u@d%u.example.org", 54321u, 54321u % 977);
	CHECK_STR(ask(&inst, "sender", addr), "REJECT 54321");
	snprintf(addr, sizeof(addr), "user%u@d%u.example.org", 54321u, 54322u % 977);
	CHECK_STR(ask(&inst, "sender", addr), "");
	stop(&inst, cfg);
}

/* main - every case, in a private directory */
int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	CHECK(pd_plugin.abi == PD_PLUGIN_ABI);
	test_cidr();
	test_exact();
	test_suffix();
	test_regex();
	test_order();
	test_values();
	test_validate();
	test_big();
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return tap_done();
}
