/* cidr.c - IPv4/IPv6 networks: parse, match (skip_networks, access tables, whitelists) */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cidr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* pd_addr_parse - parse a client address; IPv4-mapped IPv6 becomes IPv4 */
int pd_addr_parse(const char *text, int *family, unsigned char addr[16])
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(addr, 0, 16);
	if (!strchr(text, ':')) { /* IPv6 text always has a colon, IPv4 never */
		if (inet_pton(AF_INET, text, addr) != 1)
			return -1;
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, addr) == 1) {
		if (memcmp(addr, mapped, 12) == 0) {
			memmove(addr, addr + 12, 4);
			memset(addr + 4, 0, 12);
			*family = AF_INET;
		} else {
			*family = AF_INET6;
		}
		return 0;
	}
	return -1;
}

/* mask_bits - clear the bits past PREFIX */
static void mask_bits(unsigned char *addr, int prefix, int bytes)
{
	for (int i = 0; i < bytes; i++) {
		int keep = prefix - i * 8;

		if (keep >= 8)
			continue;
		addr[i] &= keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
	}
}

/* cidr_parse - a network or host; STRICT: digits-only prefix, no host bits, *WHY says what is wrong */
static int cidr_parse(const char *text, pd_cidr *out, int strict, const char **why)
{
	char buf[64];
	const char *slash = strchr(text, '/');
	size_t len = slash ? (size_t)(slash - text) : strlen(text);
	unsigned char host[16];
	int max, bytes;

	*why = slash ? "not an IPv4/IPv6 network" : "not an IPv4/IPv6 address";
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len);
	buf[len] = 0;
	if (pd_addr_parse(buf, &out->family, out->addr) < 0)
		return -1;
	max = strchr(buf, ':') ? 128 : 32; /* as written: an IPv4-mapped network counts from 128 */
	if (slash) {
		char *end;
		long p;

		if (strict) {
			const char *d = slash + 1;

			for (; *d; d++)
				if (*d < '0' || *d > '9')
					break;
			if (*d || !slash[1] || d - slash > 4) {
				*why = !slash[1]       ? "no prefix length after '/'"
				       : *d            ? "the prefix length is not a decimal number"
						       : "prefix length out of range";
				return -1;
			}
		}
		p = strtol(slash + 1, &end, 10);
		*why = "prefix length out of range";
		if (!slash[1] || *end || p < 0 || p > max)
			return -1;
		/* an IPv4-mapped network written in IPv6 form: shift the prefix */
		if (out->family == AF_INET && max == 128)
			p = p >= 96 ? p - 96 : -1;
		if (p < 0) {
			*why = "an IPv4-mapped network (::ffff:a.b.c.d) needs a prefix length of 96 to 128";
			return -1;
		}
		out->prefix = (int)p;
	} else {
		out->prefix = out->family == AF_INET ? 32 : 128;
	}
	bytes = out->family == AF_INET ? 4 : 16;
	memcpy(host, out->addr, (size_t)bytes);
	mask_bits(out->addr, out->prefix, bytes);
	if (strict && memcmp(host, out->addr, (size_t)bytes) != 0) {
		*why = "bits set past the prefix length (host part of a network)";
		return -1;
	}
	return 0;
}

/* pd_cidr_parse - parse a network in CIDR notation or a host address */
int pd_cidr_parse(const char *text, pd_cidr *out)
{
	const char *why;

	return cidr_parse(text, out, 0, &why);
}

/* pd_cidr_parse_strict - parse a network as a table key: digits-only prefix, no host bits */
int pd_cidr_parse_strict(const char *text, pd_cidr *out, const char **why)
{
	const char *reason;

	if (cidr_parse(text, out, 1, &reason) == 0)
		return 0;
	if (why)
		*why = reason; /* set on failure only */
	return -1;
}

/* pd_cidr_match - does ADDR lie in any listed network */
int pd_cidr_match(const pd_cidr *list, size_t n, int family, const unsigned char *addr)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char tmp[16];
		int bytes = family == AF_INET ? 4 : 16;

		if (list[i].family != family)
			continue;
		memcpy(tmp, addr, (size_t)bytes);
		mask_bits(tmp, list[i].prefix, bytes);
		if (memcmp(tmp, list[i].addr, (size_t)bytes) == 0)
			return 1;
	}
	return 0;
}
