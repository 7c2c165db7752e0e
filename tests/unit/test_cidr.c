/* test_cidr.c - unit tests of IPv4/IPv6 network matching */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cidr.h"
#include "tap.h"

#include <sys/socket.h>

/* in_list - does TEXT match the networks NETS */
static int in_list(const char *const *nets, size_t n, const char *text)
{
	pd_cidr list[8];
	unsigned char addr[16];
	int fam;

	for (size_t i = 0; i < n; i++)
		if (pd_cidr_parse(nets[i], &list[i]) < 0)
			return -1;
	if (pd_addr_parse(text, &fam, addr) < 0)
		return -1;
	return pd_cidr_match(list, n, fam, addr);
}

int main(void)
{
	static const char *const nets[] = {"127.0.0.0/8", "192.0.2.128/25", "2001:db8::/32", "::1"};
	pd_cidr c;

	CHECK(in_list(nets, 4, "127.1.2.3") == 1);
	CHECK(in_list(nets, 4, "192.0.2.200") == 1);
	CHECK(in_list(nets, 4, "192.0.2.100") == 0);
	CHECK(in_list(nets, 4, "2001:db8:1::5") == 1);
	CHECK(in_list(nets, 4, "2001:db9::5") == 0);
	CHECK(in_list(nets, 4, "::1") == 1);
	CHECK(in_list(nets, 4, "::2") == 0);
	CHECK(in_list(nets, 4, "::ffff:127.0.0.1") == 1); /* IPv4-mapped counts as IPv4 */
	CHECK(in_list(nets, 4, "not-an-ip") == -1);
	CHECK(pd_cidr_parse("10.0.0.0/33", &c) < 0);
	CHECK(pd_cidr_parse("10.0.0.0/", &c) < 0);
	CHECK(pd_cidr_parse("2001:db8::/129", &c) < 0);
	CHECK(pd_cidr_parse("10.1.2.3/8", &c) == 0 && c.addr[1] == 0 && c.prefix == 8);
	CHECK(pd_cidr_parse("0.0.0.0/0", &c) == 0 && c.family == AF_INET);
	/* an IPv4-mapped network in IPv6 form: its prefix counts from 128 (issue 12.10) */
	CHECK(pd_cidr_parse("::ffff:192.0.2.0/120", &c) == 0 && c.family == AF_INET && c.prefix == 24);
	CHECK(pd_cidr_parse("::ffff:192.0.2.7/128", &c) == 0 && c.family == AF_INET && c.prefix == 32);
	CHECK(pd_cidr_parse("::ffff:0.0.0.0/96", &c) == 0 && c.prefix == 0);
	CHECK(pd_cidr_parse("::ffff:192.0.2.0/95", &c) < 0); /* reaches outside the mapped range */
	CHECK(pd_cidr_parse("::ffff:192.0.2.0/129", &c) < 0);
	{
		static const char *const mapped[] = {"::ffff:192.0.2.0/120"};

		CHECK(in_list(mapped, 1, "192.0.2.77") == 1);
		CHECK(in_list(mapped, 1, "::ffff:192.0.2.77") == 1);
		CHECK(in_list(mapped, 1, "192.0.3.1") == 0);
	}
	/* strict parsing, for table keys */
	{
		const char *why = NULL;

		CHECK(pd_cidr_parse_strict("192.0.2.0/24", &c, &why) == 0 && c.prefix == 24 && why == NULL);
		CHECK(pd_cidr_parse_strict("192.0.2.1", &c, &why) == 0 && c.prefix == 32);
		CHECK(pd_cidr_parse_strict("2001:db8::/32", &c, &why) == 0 && c.family == AF_INET6);
		CHECK(pd_cidr_parse_strict("::ffff:192.0.2.0/120", &c, &why) == 0 && c.family == AF_INET && c.prefix == 24);
		CHECK(pd_cidr_parse_strict("0.0.0.0/0", &c, &why) == 0 && c.prefix == 0);
		CHECK(pd_cidr_parse_strict("::/0", &c, &why) == 0 && c.family == AF_INET6 && c.prefix == 0);
		why = NULL;
		CHECK(pd_cidr_parse_strict("192.0.2.1/24", &c, &why) < 0 && why && strstr(why, "past the prefix"));
		CHECK(pd_cidr_parse_strict("2001:db8::1/64", &c, &why) < 0);
		CHECK(pd_cidr_parse_strict("::ffff:192.0.2.1/120", &c, &why) < 0);
		CHECK(pd_cidr_parse_strict("10.0.0.0/ 8", &c, &why) < 0);
		CHECK(pd_cidr_parse("10.0.0.0/ 8", &c) == 0); /* the lenient parse is unchanged */
		CHECK(pd_cidr_parse_strict("10.0.0.0/+8", &c, &why) < 0);
		CHECK(pd_cidr_parse_strict("10.0.0.0/-0", &c, &why) < 0);
		CHECK(pd_cidr_parse_strict("10.0.0.0/", &c, &why) < 0);
		CHECK(pd_cidr_parse_strict("10.0.0.0/0008", &c, &why) < 0);
		CHECK(pd_cidr_parse_strict("10.0.0.0/33", &c, &why) < 0 && strstr(why, "out of range"));
		CHECK(pd_cidr_parse_strict("10.0.0.0/x", &c, &why) < 0 && strstr(why, "decimal"));
		CHECK(pd_cidr_parse_strict("10.0.0.0/", &c, &why) < 0 && strstr(why, "no prefix"));
		CHECK(pd_cidr_parse_strict("10.0.0.256", &c, &why) < 0 && strstr(why, "address"));
		CHECK(pd_cidr_parse("10.0.0.0/x", &c) < 0);
		CHECK(pd_cidr_parse("10.0.0.0/08", &c) == 0 && c.prefix == 8); /* lenient, as before */
		CHECK(pd_cidr_parse_strict("example.com", &c, NULL) < 0);
	}
	return tap_done();
}
