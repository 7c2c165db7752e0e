/* test_table.c - unit tests of lookup tables: key forms, lookup order, cidr, regex, files, errors, scale */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "table.h"
#include "tap.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

static char dir[64];
static char err[512];

/* mk - a table of KIND from key/value pairs ending in NULL (value "-": none) */
static pd_table *mk(enum pd_table_kind kind, ...)
{
	pd_table *t = pd_table_new(kind);
	const char *k;
	va_list ap;

	va_start(ap, kind);
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);

		if (pd_table_add(t, k, strcmp(v, "-") ? v : NULL, err, sizeof(err)) != 0) {
			printf("# add %s: %s\n", k, err);
			tap_fail++;
		}
	}
	va_end(ap);
	return t;
}

/* add_fails - does adding KEY/VALUE fail with a reason containing WHAT, leaving T as it was */
static int add_fails(pd_table *t, const char *key, const char *value, const char *what)
{
	size_t n = pd_table_size(t);

	err[0] = 0;
	if (pd_table_add(t, key, value, err, sizeof(err)) == 0)
		return 0;
	if (!strstr(err, what)) {
		printf("# error for %s: \"%s\" lacks \"%s\"\n", key, err, what);
		return 0;
	}
	return pd_table_size(t) == n;
}

/* file - write TEXT to DIR/NAME; returns the path (static) */
static const char *file(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f) != 0)
		abort();
	return path;
}

/* is - the value T gives TEXT is V (NULL: no match) */
static int is(const pd_table *t, const char *text, const char *v)
{
	const char *r = pd_table_match(t, text);

	if (v ? r && strcmp(r, v) == 0 : r == NULL)
		return 1;
	printf("# %s -> %s, expected %s\n", text, r ? r : "(null)", v ? v : "(null)");
	return 0;
}

/* test_forms - every key form of exact and suffix tables */
static void test_forms(void)
{
	pd_table *t = mk(PD_TABLE_SUFFIX, "user@example.com", "ADDR", "@example.com", "ATDOM", "postmaster@", "LOCAL",
			 ".example.org", "SUB", "example.net", "DOM", "<>", "NULL", NULL);

	CHECK(pd_table_size(t) == 6);
	CHECK(is(t, "user@example.com", "ADDR"));
	CHECK(is(t, "other@example.com", "ATDOM"));
	/* @domain: that domain only, not its subdomains */
	CHECK(is(t, "user@sub.example.com", NULL));
	CHECK(is(t, "postmaster@sub.example.com", "LOCAL"));
	/* user@: that local part at any domain */
	CHECK(is(t, "postmaster@anywhere.test", "LOCAL"));
	CHECK(is(t, "postmaster@example.com", "ATDOM")); /* the domain comes before user@ */
	CHECK(is(t, "postmasterx@anywhere.test", NULL));
	CHECK(is(t, "xpostmaster@anywhere.test", NULL));
	/* .domain: the subdomains, not the domain itself */
	CHECK(is(t, "a@example.org", NULL));
	CHECK(is(t, "a@mx.example.org", "SUB"));
	CHECK(is(t, "a@a.b.c.example.org", "SUB"));
	CHECK(is(t, "a@badexample.org", NULL));
	/* domain in a suffix table: the domain and its subdomains */
	CHECK(is(t, "a@example.net", "DOM"));
	CHECK(is(t, "a@mx.example.net", "DOM"));
	CHECK(is(t, "a@x.y.example.net", "DOM"));
	CHECK(is(t, "a@notexample.net", NULL));
	CHECK(is(t, "a@example.net.evil.test", NULL));
	/* the null sender */
	CHECK(is(t, "", "NULL"));
	CHECK(is(t, "<>", "NULL"));
	CHECK(is(t, "<<>>", NULL));
	/* surrounding <> */
	CHECK(is(t, "<user@example.com>", "ADDR"));
	CHECK(is(t, "<user@example.com", "ATDOM")); /* a lone < is part of the local part */
	/* bare domains (no @): the domain forms only */
	CHECK(is(t, "example.com", "ATDOM"));
	CHECK(is(t, "mx.example.org", "SUB"));
	CHECK(is(t, "mx.example.net", "DOM"));
	CHECK(is(t, "postmaster", NULL));
	CHECK(is(t, "user", NULL));
	/* degenerate addresses */
	CHECK(is(t, "@", NULL));
	CHECK(is(t, "user@", NULL));
	CHECK(is(t, "postmaster@", "LOCAL"));
	CHECK(is(t, "@example.com", "ATDOM"));
	CHECK(is(t, "@mx.example.org", "SUB"));
	CHECK(is(t, ".", NULL));
	pd_table_free(t);

	/* an exact table: domain is @domain; .domain is refused; no parent domains */
	t = mk(PD_TABLE_EXACT, "example.com", "DOM", "a@b.example.com", "ADDR", "abuse@", "LOCAL", NULL);
	CHECK(is(t, "x@example.com", "DOM"));
	CHECK(is(t, "x@sub.example.com", NULL));
	CHECK(is(t, "example.com", "DOM"));
	CHECK(is(t, "a@b.example.com", "ADDR"));
	CHECK(is(t, "abuse@b.example.com", "LOCAL"));
	CHECK(add_fails(t, ".example.org", "X", "needs a suffix table"));
	CHECK(add_fails(t, "@example.com", "X", "") == 0); /* a duplicate of "example.com": not an error */
	CHECK(pd_table_duplicates(t, NULL) == 1);
	CHECK(is(t, "x@example.com", "DOM"));
	pd_table_free(t);
}

/* test_order - user@domain, @domain, domain, parents nearest first, user@ */
static void test_order(void)
{
	pd_table *t = mk(PD_TABLE_SUFFIX, "john@", "LOCAL", "com", "TLD", ".example.com", "SUB-EX", "example.com",
			 "DOM-EX", "b.example.com", "DOM-B", ".c.b.example.com", "SUB-C", NULL);

	CHECK(is(t, "john@d.c.b.example.com", "SUB-C"));
	CHECK(is(t, "john@c.b.example.com", "DOM-B")); /* .c.b.example.com does not hold c.b.example.com */
	CHECK(is(t, "john@x.b.example.com", "DOM-B"));
	CHECK(is(t, "john@b.example.com", "DOM-B"));
	CHECK(is(t, "john@y.example.com", "SUB-EX")); /* .example.com before example.com at one level */
	CHECK(is(t, "john@example.com", "DOM-EX"));
	CHECK(is(t, "john@other.com", "TLD"));
	CHECK(is(t, "john@example.org", "LOCAL"));
	CHECK(is(t, "jane@example.org", NULL));
	pd_table_free(t);

	t = mk(PD_TABLE_SUFFIX, "a@x.test", "ADDR", "@x.test", "ATDOM", "x.test", "DOM", "a@", "LOCAL", NULL);
	CHECK(is(t, "a@x.test", "ADDR"));
	CHECK(is(t, "b@x.test", "ATDOM"));
	CHECK(is(t, "b@y.x.test", "DOM"));
	CHECK(is(t, "a@y.x.test", "DOM"));
	CHECK(is(t, "a@z.test", "LOCAL"));
	pd_table_free(t);

	/* first match wins within a table: a repeated key keeps the first value */
	t = mk(PD_TABLE_SUFFIX, "@x.test", "FIRST", "@X.Test.", "SECOND", NULL);
	{
		const char *first = NULL;

		CHECK(pd_table_size(t) == 1);
		CHECK(is(t, "a@x.test", "FIRST"));
		CHECK(pd_table_duplicates(t, &first) == 1 && first && strstr(first, "duplicate key"));
	}
	pd_table_free(t);
}

/* test_case_dots - case folding and trailing dots, in keys and in lookups */
static void test_case_dots(void)
{
	pd_table *t = mk(PD_TABLE_SUFFIX, "John.Doe@Example.COM", "ADDR", "@Example.ORG.", "ATDOM", ".Example.NET", "SUB",
			 "Abuse@", "LOCAL", NULL);

	CHECK(is(t, "john.doe@example.com", "ADDR"));
	CHECK(is(t, "JOHN.DOE@EXAMPLE.COM", "ADDR"));
	CHECK(is(t, "John.Doe@Example.Com.", "ADDR"));
	CHECK(is(t, "<JOHN.DOE@EXAMPLE.COM.>", "ADDR"));
	CHECK(is(t, "x@EXAMPLE.org", "ATDOM"));
	CHECK(is(t, "x@example.org.", "ATDOM"));
	CHECK(is(t, "x@example.org..", NULL)); /* one trailing dot only */
	CHECK(is(t, "x@MX.EXAMPLE.NET.", "SUB"));
	CHECK(is(t, "ABUSE@elsewhere.test", "LOCAL"));
	CHECK(is(t, "abuse@elsewhere.test", "LOCAL"));
	pd_table_free(t);

	/* bytes >= 0x80 compare as they are (no Unicode case folding) */
	t = mk(PD_TABLE_SUFFIX, "@b\xc3\xbc" "cher.example", "UTF8", NULL);
	CHECK(is(t, "x@B\xc3\xbc" "CHER.example", "UTF8"));
	CHECK(is(t, "x@b\xc3\x9c" "cher.example", NULL));
	pd_table_free(t);

	/* address literals: matched exactly, no parent domains */
	t = mk(PD_TABLE_SUFFIX, "@[192.0.2.1]", "LIT", "[IPv6:2001:db8::1]", "LIT6", NULL);
	CHECK(is(t, "a@[192.0.2.1]", "LIT"));
	CHECK(is(t, "a@[10.0.2.1]", NULL));
	CHECK(is(t, "a@[ipv6:2001:DB8::1]", "LIT6"));
	CHECK(is(t, "a@x.[IPv6:2001:db8::1]", NULL)); /* not a parent domain */
	pd_table_free(t);
}

/* test_bad_keys - keys refused, with reasons */
static void test_bad_keys(void)
{
	pd_table *t = pd_table_new(PD_TABLE_SUFFIX);

	CHECK(add_fails(t, "", "OK", "empty key"));
	CHECK(add_fails(t, "@", "OK", "no domain"));
	CHECK(add_fails(t, ".", "OK", "empty domain"));
	CHECK(add_fails(t, "@.example.com", "OK", "empty label"));
	CHECK(add_fails(t, "a@example..com", "OK", "empty label"));
	CHECK(add_fails(t, "example.com..", "OK", "empty label"));
	CHECK(add_fails(t, "a b@example.com", "OK", "white space"));
	CHECK(add_fails(t, "a@exa\tmple.com", "OK", "white space"));
	CHECK(add_fails(t, "a@exa/mple.com", "OK", "not allowed"));
	CHECK(add_fails(t, "/etc/policyd/list", "OK", "not allowed"));
	CHECK(add_fails(t, "a@[192.0.2.1", "OK", "address literal"));
	CHECK(add_fails(t, ".[192.0.2.1]", "OK", "no subdomains"));
	CHECK(add_fails(t, "a@example.com", "", "empty value"));
	CHECK(add_fails(t, "a@example.com", "   ", "empty value"));
	CHECK(add_fails(t, "a@example.com", "REJECT\nX", "one line"));
	CHECK(add_fails(t, "a@example.com", "REJECT\r", "one line") == 0); /* trimmed */
	CHECK(add_fails(t, "b@example.com", "RE\x1bJECT", "one line"));
	CHECK(pd_table_size(t) == 1);
	CHECK(is(t, "a@example.com", "REJECT"));
	/* a key without value matches with "" */
	CHECK(pd_table_add(t, "c@example.com", NULL, err, sizeof(err)) == 0);
	CHECK(is(t, "c@example.com", ""));
	/* a value with inner tabs and spaces is kept as is, ends trimmed */
	CHECK(pd_table_add(t, "d@example.com", "  REJECT 5.7.1\tgo  away ", err, sizeof(err)) == 0);
	CHECK(is(t, "d@example.com", "REJECT 5.7.1\tgo  away"));
	CHECK(pd_table_add(NULL, "x", "y", err, sizeof(err)) < 0);
	CHECK(pd_table_add(t, NULL, "y", err, sizeof(err)) < 0);
	CHECK(pd_table_add(t, "e@example.com", "OK", NULL, 0) == 0);
	CHECK(pd_table_add(t, "e@", "", NULL, 0) < 0); /* no error buffer: still refused */
	pd_table_free(t);
}

/* test_cidr - IPv4, IPv6, IPv4-mapped, longest prefix, /0 */
static void test_cidr(void)
{
	pd_table *t = mk(PD_TABLE_CIDR, "192.0.2.0/24", "NET24", "192.0.2.128/25", "NET25", "192.0.2.200", "HOST",
			 "198.51.100.0/24", "OTHER", "2001:db8::/32", "V6-32", "2001:db8:1::/48", "V6-48",
			 "2001:db8:1::1", "V6-HOST", "::ffff:203.0.113.0/120", "MAPPED", NULL);

	CHECK(pd_table_size(t) == 8);
	CHECK(is(t, "192.0.2.1", "NET24"));
	CHECK(is(t, "192.0.2.129", "NET25"));
	CHECK(is(t, "192.0.2.200", "HOST"));
	CHECK(is(t, "192.0.3.1", NULL));
	CHECK(is(t, "198.51.100.77", "OTHER"));
	CHECK(is(t, "2001:db8::5", "V6-32"));
	CHECK(is(t, "2001:db8:1::5", "V6-48"));
	CHECK(is(t, "2001:DB8:1::1", "V6-HOST"));
	CHECK(is(t, "2001:db8:1:0:0:0:0:1", "V6-HOST"));
	CHECK(is(t, "2001:db9::1", NULL));
	/* IPv4-mapped clients are IPv4: 192.0.2.0/24 and ::ffff:203.0.113.0/120 match them */
	CHECK(is(t, "::ffff:192.0.2.1", "NET24"));
	CHECK(is(t, "::ffff:192.0.2.200", "HOST"));
	CHECK(is(t, "203.0.113.9", "MAPPED"));
	CHECK(is(t, "::ffff:203.0.113.9", "MAPPED"));
	CHECK(is(t, "::ffff:203.0.114.9", NULL));
	/* not addresses */
	CHECK(is(t, "192.0.2", NULL));
	CHECK(is(t, "192.0.2.1/32", NULL));
	CHECK(is(t, "unknown", NULL));
	CHECK(is(t, "", NULL));
	CHECK(is(t, "fe80::1%eth0", NULL));
	CHECK(pd_table_match_addr(t, "192.0.2.1") == NULL); /* the wrong kind */
	pd_table_free(t);

	/* the order of the entries does not matter: the longest prefix wins */
	t = mk(PD_TABLE_CIDR, "10.1.2.3", "32", "10.1.2.0/24", "24", "10.0.0.0/8", "8", "10.1.0.0/16", "16", "0.0.0.0/0",
	       "ALL4", "::/0", "ALL6", "2001:db8::/126", "126", "2001:db8::/64", "64", "2001:db8::3/128", "128", NULL);
	CHECK(is(t, "10.1.2.3", "32"));
	CHECK(is(t, "10.1.2.4", "24"));
	CHECK(is(t, "10.1.3.4", "16"));
	CHECK(is(t, "10.2.3.4", "8"));
	CHECK(is(t, "11.2.3.4", "ALL4"));
	CHECK(is(t, "255.255.255.255", "ALL4"));
	CHECK(is(t, "::ffff:11.2.3.4", "ALL4")); /* mapped: IPv4, not ::/0 */
	CHECK(is(t, "2001:db8::3", "128"));
	CHECK(is(t, "2001:db8::2", "126"));
	CHECK(is(t, "2001:db8::4", "64"));
	CHECK(is(t, "2001:db8:0:1::", "ALL6"));
	CHECK(is(t, "::1", "ALL6"));
	pd_table_free(t);

	/* ::/80 spans the mapped range but does not match IPv4-mapped clients */
	t = mk(PD_TABLE_CIDR, "::/80", "V6", NULL);
	CHECK(is(t, "::ffff:192.0.2.1", NULL));
	CHECK(is(t, "::1", "V6"));
	pd_table_free(t);

	/* bad keys */
	t = pd_table_new(PD_TABLE_CIDR);
	CHECK(add_fails(t, "192.0.2.1/24", "X", "past the prefix"));
	CHECK(add_fails(t, "192.0.2.0/33", "X", "out of range"));
	CHECK(add_fails(t, "192.0.2.0/ 24", "X", "decimal"));
	CHECK(add_fails(t, "192.0.2.0/", "X", "prefix"));
	CHECK(add_fails(t, "example.com", "X", "not an IPv4/IPv6"));
	CHECK(add_fails(t, "2001:db8::1/32", "X", "past the prefix"));
	CHECK(add_fails(t, "::ffff:192.0.2.0/95", "X", "IPv4-mapped network"));
	CHECK(add_fails(t, "192.0.2.0/24", "", "empty value"));
	CHECK(pd_table_add(t, "192.0.2.0/24", "A", err, sizeof(err)) == 0);
	CHECK(pd_table_add(t, "::ffff:192.0.2.0/120", "B", err, sizeof(err)) == 0); /* the same network */
	CHECK(pd_table_size(t) == 1 && pd_table_duplicates(t, NULL) == 1);
	CHECK(is(t, "192.0.2.9", "A"));
	pd_table_free(t);
}

/* test_regex - file order, no implicit anchors, case, errors */
static void test_regex(void)
{
	pd_table *t = mk(PD_TABLE_REGEX, "/^postmaster@/", "PM", "/example\\.com$/", "EXCOM", "/@(.*\\.)?example\\.org$/",
			 "EXORG", "/spam/", "SPAM", "/^$/", "NULL", "/^a/b$/", "SLASH", NULL);

	CHECK(pd_table_size(t) == 6);
	CHECK(is(t, "postmaster@example.com", "PM")); /* the first in order, not the longest */
	CHECK(is(t, "user@example.com", "EXCOM"));
	CHECK(is(t, "USER@EXAMPLE.COM", "EXCOM"));
	CHECK(is(t, "<user@example.com>", "EXCOM"));
	CHECK(is(t, "user@mx.example.org", "EXORG"));
	CHECK(is(t, "user@badexample.org", NULL));
	CHECK(is(t, "user@example.com.evil.test", NULL));
	CHECK(is(t, "nospamhere@x.test", "SPAM")); /* not anchored unless written so */
	CHECK(is(t, "", "NULL"));
	CHECK(is(t, "<>", "NULL"));
	CHECK(is(t, "<postmaster@x.test>", "PM"));
	CHECK(is(t, "a/b", "SLASH"));
	CHECK(add_fails(t, "postmaster@", "X", "/pattern/"));
	CHECK(add_fails(t, "/a(/", "X", "bad regex"));
	CHECK(add_fails(t, "/abc/i", "X", "no flags"));
	CHECK(add_fails(t, "//", "X", "empty regex"));
	CHECK(add_fails(t, "/x/", "\n", "empty value"));
	CHECK(pd_table_size(t) == 6);
	CHECK(pd_table_match_ip(t, "192.0.2.1") == NULL);
	pd_table_free(t);
}

/* count_check - a value check that refuses values starting with "BAD" and counts its calls */
static int count_check(const char *value, char *why, size_t whylen, void *arg)
{
	(*(int *)arg)++;
	if (strncmp(value, "BAD", 3) == 0) {
		snprintf(why, whylen, "unknown action \"%s\"", value);
		return -1;
	}
	return 0;
}

/* test_check - values validated by the caller's callback */
static void test_check(void)
{
	pd_table *t = pd_table_new(PD_TABLE_EXACT);
	int calls = 0;
	const char *p;

	pd_table_set_check(t, count_check, &calls);
	CHECK(pd_table_add(t, "a@x.test", "OK", err, sizeof(err)) == 0);
	CHECK(pd_table_add(t, "b@x.test", "OK", err, sizeof(err)) == 0);
	CHECK(pd_table_add(t, "c@x.test", "REJECT", err, sizeof(err)) == 0);
	CHECK(calls == 2); /* once per distinct value */
	CHECK(add_fails(t, "d@x.test", "BADACTION", "unknown action \"BADACTION\""));
	CHECK(pd_table_add(t, "e@x.test", NULL, err, sizeof(err)) == 0); /* no value: nothing to check */
	p = file("check.txt", "f@x.test OK\ng@x.test BAD2\n");
	CHECK(pd_table_load(t, p, 0, err, sizeof(err)) < 0 && strstr(err, "check.txt:2: ") && strstr(err, "BAD2"));
	CHECK(pd_table_size(t) == 4);
	CHECK(is(t, "f@x.test", NULL));
	CHECK(is(t, "a@x.test", "OK"));
	pd_table_free(t);
}

/* test_files - file format, errors with file:line, the table left as it was */
static void test_files(void)
{
	pd_table *t = pd_table_new(PD_TABLE_SUFFIX);
	const char *p, *first;

	p = file("good.txt", "# a comment\n"
			     "\n"
			     "   \n"
			     "\t# an indented comment\n"
			     "a@x.test\tREJECT 5.7.1 go away # not a comment \n"
			     "@y.test OK\r\n"
			     ".z.test    DUNNO\n"
			     "<> REJECT no bounces\n"
			     "a@x.test OK\n"
			     "last@x.test OK");
	CHECK(pd_table_load(t, p, 0, err, sizeof(err)) == 0);
	CHECK(pd_table_size(t) == 5);
	CHECK(is(t, "a@x.test", "REJECT 5.7.1 go away # not a comment"));
	CHECK(is(t, "b@y.test", "OK"));
	CHECK(is(t, "b@mx.z.test", "DUNNO"));
	CHECK(is(t, "", "REJECT no bounces"));
	CHECK(is(t, "last@x.test", "OK")); /* no newline at the end */
	CHECK(pd_table_duplicates(t, &first) == 1 && first && strstr(first, "good.txt:9: duplicate key"));

	/* a bad line: file:line, and nothing of the file stays */
	{
		static const struct {
			const char *text, *where;
		} bad[] = {
			{"n1@x.test OK\nn2@x.test OK\nbad\x7fkey@ OK\n", "bad.txt:3: bad key \"bad\\x7fkey@\": white space or control"},
			{"n1@x.test OK\nn2@x.test\n", "bad.txt:2: no value"},
			{"n1@x.test OK\n  n2@x.test OK\n", "bad.txt:2: line starts with white space"},
			{"n1@x.test OK\nn2@x.test REJECT\x01\n", "bad.txt:2: control character"},
			{"n1@x.test OK\nn2@x..test OK\nn3@x.test OK\n", "bad.txt:2: bad key \"n2@x..test\": empty label"},
			{"n1@x.test OK\n@ OK\n", "bad.txt:2: bad key \"@\": no domain"},
			{"n1@x.test OK\n\n\n#\nn2@.x OK\n", "bad.txt:5: "},
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			size_t mem = pd_table_memory(t);

			p = file("bad.txt", bad[i].text);
			err[0] = 0;
			CHECK(pd_table_load(t, p, 0, err, sizeof(err)) < 0);
			if (!strstr(err, bad[i].where)) {
				printf("# \"%s\" lacks \"%s\"\n", err, bad[i].where);
				tap_fail++;
			}
			CHECK(pd_table_size(t) == 5);
			CHECK(is(t, "n1@x.test", NULL));
			CHECK(is(t, "a@x.test", "REJECT 5.7.1 go away # not a comment"));
			CHECK(pd_table_duplicates(t, NULL) == 1);
			CHECK(pd_table_memory(t) <= mem);
		}
	}
	/* a NUL byte in a line */
	{
		FILE *f;
		char path[128];

		snprintf(path, sizeof(path), "%s/nul.txt", dir);
		f = fopen(path, "w");
		fwrite("n1@x.test OK\nn2@x.test O\0K\n", 1, 27, f);
		fclose(f);
		CHECK(pd_table_load(t, path, 0, err, sizeof(err)) < 0 && strstr(err, "nul.txt:2: NUL"));
		CHECK(pd_table_size(t) == 5);
	}
	/* a file that cannot be read */
	{
		char missing[128];

		snprintf(missing, sizeof(missing), "%s/none.txt", dir);
		CHECK(pd_table_load(t, missing, 0, err, sizeof(err)) < 0 && strstr(err, "none.txt: No such file"));
	}
	CHECK(pd_table_load(t, dir, 0, err, sizeof(err)) < 0 && strstr(err, dir));
	/* a good second file adds to the table */
	p = file("more.txt", "n1@x.test OK\n");
	CHECK(pd_table_load(t, p, 0, err, sizeof(err)) == 0);
	CHECK(pd_table_size(t) == 6 && is(t, "n1@x.test", "OK"));
	pd_table_free(t);

	/* keys only, for chain selection */
	t = pd_table_new(PD_TABLE_SUFFIX);
	p = file("list.txt", "@example.net\n.example.org\na@b.c\nwith@value.test OK\n");
	CHECK(pd_table_load(t, p, 0, err, sizeof(err)) < 0 && strstr(err, "list.txt:1: no value"));
	CHECK(pd_table_size(t) == 0);
	CHECK(pd_table_load(t, p, PD_TABLE_VALUE_OPTIONAL, err, sizeof(err)) == 0);
	CHECK(pd_table_size(t) == 4);
	CHECK(is(t, "x@example.net", ""));
	CHECK(is(t, "x@mx.example.org", ""));
	CHECK(is(t, "a@b.c", ""));
	CHECK(is(t, "with@value.test", "OK"));
	CHECK(is(t, "x@b.c", NULL));
	pd_table_free(t);

	/* cidr and regex files, and a failed regex load undone */
	t = pd_table_new(PD_TABLE_CIDR);
	p = file("nets.txt", "192.0.2.0/24 REJECT\n2001:db8::/32 OK\n");
	CHECK(pd_table_load(t, p, 0, err, sizeof(err)) == 0 && is(t, "192.0.2.7", "REJECT") && is(t, "2001:db8::7", "OK"));
	p = file("nets2.txt", "10.0.0.0/8 A\n2001:db9::/32 B\n10.0.0.1/8 C\n");
	CHECK(pd_table_load(t, p, 0, err, sizeof(err)) < 0 && strstr(err, "nets2.txt:3: bad key \"10.0.0.1/8\""));
	CHECK(pd_table_size(t) == 2 && is(t, "10.1.1.1", NULL) && is(t, "2001:db9::1", NULL));
	CHECK(pd_table_add(t, "10.0.0.0/8", "A2", err, sizeof(err)) == 0 && is(t, "10.1.1.1", "A2"));
	pd_table_free(t);

	t = pd_table_new(PD_TABLE_REGEX);
	p = file("re.txt", "/^a@/ A\n/^b@/ B\n/^c(@/ C\n");
	CHECK(pd_table_load(t, p, 0, err, sizeof(err)) < 0 && strstr(err, "re.txt:3: bad regex"));
	CHECK(pd_table_size(t) == 0 && is(t, "a@x", NULL));
	p = file("re.txt", "/^a@/ A\n/^a/ B\n/[[:space:]]/ SPACE\n");
	CHECK(pd_table_load(t, p, 0, err, sizeof(err)) == 0 && is(t, "a@x", "A") && is(t, "ab", "B"));
	CHECK(is(t, "x y", "SPACE"));
	pd_table_free(t);
}

/* test_misc - kinds, NULL arguments, memory */
static void test_misc(void)
{
	enum pd_table_kind k;
	pd_table *t;

	CHECK(pd_table_kind_parse("cidr", &k) == 0 && k == PD_TABLE_CIDR);
	CHECK(pd_table_kind_parse("suffix", &k) == 0 && k == PD_TABLE_SUFFIX);
	CHECK(pd_table_kind_parse("hash", &k) < 0);
	CHECK(strcmp(pd_table_kind_name(PD_TABLE_REGEX), "regex") == 0);
	CHECK(pd_table_new((enum pd_table_kind)42) == NULL);
	CHECK(pd_table_match(NULL, "x") == NULL);
	CHECK(pd_table_size(NULL) == 0);
	pd_table_free(NULL);
	t = pd_table_new(PD_TABLE_EXACT);
	CHECK(pd_table_kind(t) == PD_TABLE_EXACT);
	CHECK(pd_table_match(t, NULL) == NULL);
	CHECK(is(t, "a@b", NULL));
	CHECK(is(t, "", NULL));
	CHECK(pd_table_memory(t) > 0);
	pd_table_free(t);
}

#define BIG 100000

/* big_file - BIG generated entries of KIND in NAME */
static const char *big_file(const char *name, int cidr)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	for (int i = 0; i < BIG; i++) {
		if (cidr && i % 2)
			fprintf(f, "2001:db8:%x:%x::/64 V%d\n", i >> 16, i & 0xffff, i % 7);
		else if (cidr)
			fprintf(f, "10.%d.%d.%d V%d\n", i >> 16, (i >> 8) & 255, i & 255, i % 7);
		else
			fprintf(f, "user%d@domain%d.example V%d\n", i, i % 1000, i % 7);
	}
	fclose(f);
	return path;
}

/* test_big - 100k entries loaded and every one matched */
static void test_big(void)
{
	pd_table *t = pd_table_new(PD_TABLE_EXACT);
	char a[64], v[8];
	int bad = 0;

	CHECK(pd_table_load(t, big_file("big.txt", 0), 0, err, sizeof(err)) == 0);
	CHECK(pd_table_size(t) == BIG);
	for (int i = 0; i < BIG; i++) {
		const char *r;

		snprintf(a, sizeof(a), "User%d@Domain%d.example", i, i % 1000);
		snprintf(v, sizeof(v), "V%d", i % 7);
		r = pd_table_match(t, a);
		bad += !r || strcmp(r, v) != 0;
		snprintf(a, sizeof(a), "user%d@domain%d.example", i, (i + 1) % 1000);
		bad += pd_table_match(t, a) != NULL;
	}
	CHECK(bad == 0);
	printf("# exact: %d entries, %zu bytes\n", BIG, pd_table_memory(t));
	pd_table_free(t);

	t = pd_table_new(PD_TABLE_CIDR);
	CHECK(pd_table_load(t, big_file("bignets.txt", 1), 0, err, sizeof(err)) == 0);
	CHECK(pd_table_size(t) == BIG);
	bad = 0;
	for (int i = 0; i < BIG; i++) {
		const char *r;

		if (i % 2)
			snprintf(a, sizeof(a), "2001:db8:%x:%x:1:2:3:4", i >> 16, i & 0xffff);
		else
			snprintf(a, sizeof(a), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		snprintf(v, sizeof(v), "V%d", i % 7);
		r = pd_table_match(t, a);
		bad += !r || strcmp(r, v) != 0;
		snprintf(a, sizeof(a), "2001:db8:%x:%x::1", (i >> 16) + 100, i & 0xffff);
		bad += pd_table_match(t, a) != NULL;
		snprintf(a, sizeof(a), "11.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		bad += pd_table_match(t, a) != NULL;
	}
	CHECK(bad == 0);
	printf("# cidr: %d entries, %zu bytes\n", BIG, pd_table_memory(t));
	pd_table_free(t);
}

static pd_table *shared;

/* reader - look up in the shared table from a thread; returns the number of wrong answers */
static void *reader(void *arg)
{
	uintptr_t bad = 0;

	for (int i = 0; i < 20000; i++) {
		char a[64], v[8];
		const char *r;
		int n = (i * 7919 + (int)(uintptr_t)arg) % BIG;

		snprintf(a, sizeof(a), "user%d@domain%d.example", n, n % 1000);
		snprintf(v, sizeof(v), "V%d", n % 7);
		r = pd_table_match(shared, a);
		bad += !r || strcmp(r, v) != 0;
		bad += pd_table_match(shared, "nobody@nowhere.example") != NULL;
	}
	return (void *)bad;
}

/* test_threads - concurrent lookups in a built table (correctness; run under a sanitizer to check races) */
static void test_threads(void)
{
	pthread_t th[4];
	uintptr_t bad = 0;

	shared = pd_table_new(PD_TABLE_SUFFIX);
	CHECK(pd_table_load(shared, big_file("big.txt", 0), 0, err, sizeof(err)) == 0);
	for (uintptr_t i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, reader, (void *)i) == 0);
	for (int i = 0; i < 4; i++) {
		void *r;

		pthread_join(th[i], &r);
		bad += (uintptr_t)r;
	}
	CHECK(bad == 0);
	pd_table_free(shared);
}

/* collect - pd_table_each callback: the values joined by '|' */
static int collect(const char *value, void *arg)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 256 - n, "%s%s", n ? "|" : "", value);
	return 0;
}

/* stop_at_two - pd_table_each callback that stops after the second match */
static int stop_at_two(const char *value, void *arg)
{
	(void)value;
	return ++*(int *)arg == 2;
}

/* test_each_merge_keys - every match in order, merged values, key lists (chain selection) */
static void test_each_merge_keys(void)
{
	char out[256] = "";
	int n = 0;
	pd_table *t = mk(PD_TABLE_SUFFIX, "a@x.example.com", "1", "@x.example.com", "2", ".example.com", "3",
			 "example.com", "4", "a@", "5", "other.test", "6", NULL);
	pd_table *c;

	CHECK(pd_table_each(t, "a@x.example.com", collect, out) == 0);
	CHECK_STR(out, "1|2|3|4|5"); /* every step of table.h's order, first-match order kept */
	CHECK_STR(pd_table_match_addr(t, "a@x.example.com"), "1");
	CHECK(pd_table_each(t, "a@x.example.com", stop_at_two, &n) == 1 && n == 2);
	out[0] = 0;
	CHECK(pd_table_each(t, "b@example.com", collect, out) == 0);
	CHECK_STR(out, "4"); /* ".example.com" is for subdomains only */
	pd_table_free(t);

	c = mk(PD_TABLE_CIDR, "192.0.2.0/24", "24", "192.0.0.0/16", "16", "0.0.0.0/0", "0", "2001:db8::/32", "v6", NULL);
	out[0] = 0;
	pd_table_each(c, "192.0.2.7", collect, out);
	CHECK_STR(out, "24|16|0"); /* longest network first */
	out[0] = 0;
	pd_table_each(c, "::ffff:192.0.2.7", collect, out);
	CHECK_STR(out, "24|16|0");
	out[0] = 0;
	pd_table_each(c, "2001:db8::1", collect, out);
	CHECK_STR(out, "v6");
	pd_table_free(c);

	/* merge: one key in several lists */
	t = pd_table_new(PD_TABLE_SUFFIX);
	pd_table_set_merge(t, 1);
	CHECK(pd_table_add(t, "@example.net", "0", err, sizeof(err)) == 0);
	CHECK(pd_table_add(t, "@Example.NET.", "3", err, sizeof(err)) == 0); /* the same key, normalised */
	CHECK(pd_table_add(t, "@example.net", "3", err, sizeof(err)) == 0);  /* once per value */
	CHECK(pd_table_add(t, "@example.net", "17", err, sizeof(err)) == 0);
	CHECK(pd_table_add(t, "example.org", "3", err, sizeof(err)) == 0);
	CHECK_STR(pd_table_match_addr(t, "x@example.net"), "0,3,17");
	CHECK_STR(pd_table_match_addr(t, "x@sub.example.org"), "3");
	CHECK(pd_table_size(t) == 2 && pd_table_duplicates(t, NULL) == 0);
	/* key lists from a file, each key with one value */
	CHECK(pd_table_load_keys(t, file("keys", "# customers\n@example.net\nb@example.com\n\n"), "5", err,
				 sizeof(err)) == 0);
	CHECK_STR(pd_table_match_addr(t, "x@example.net"), "0,3,17,5");
	CHECK_STR(pd_table_match_addr(t, "b@example.com"), "5");
	CHECK(pd_table_load_keys(t, file("keys2", "c@example.com OK\n"), "6", err, sizeof(err)) < 0);
	CHECK(strstr(err, "keys2:1: one key per line") != NULL);
	pd_table_free(t);
	c = pd_table_new(PD_TABLE_CIDR);
	pd_table_set_merge(c, 1);
	CHECK(pd_table_add(c, "192.0.2.0/24", "1", err, sizeof(err)) == 0);
	CHECK(pd_table_add(c, "::ffff:192.0.2.0/120", "2", err, sizeof(err)) == 0); /* the same network */
	CHECK_STR(pd_table_match_ip(c, "192.0.2.9"), "1,2");
	pd_table_free(c);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/pd-test-table.XXXXXX");
	if (!mkdtemp(dir))
		return 99;
	test_forms();
	test_order();
	test_case_dots();
	test_bad_keys();
	test_cidr();
	test_regex();
	test_each_merge_keys();
	test_check();
	test_files();
	test_misc();
	test_big();
	test_threads();
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 99;
	}
	return tap_done();
}
