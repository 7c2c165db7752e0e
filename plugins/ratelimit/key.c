/* key.c - the ratelimit plugin's keys: a rule's first non-empty key choice, attributes joined by '+' */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "cidr.h"
#include "siphash.h"
#include "rl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* rl_key_attr_ok - an attribute name: 1 to 64 of a-z 0-9 _ (sender_domain and recipient_domain are derived) */
int rl_key_attr_ok(const char *name)
{
	size_t n = strlen(name);

	return n >= 1 && n <= 64 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* domain_of - what follows the last '@' of an address ("" if none) */
static const char *domain_of(const char *a)
{
	const char *at = a ? strrchr(a, '@') : NULL;

	return at ? at + 1 : "";
}

/* network - ADDR (a client address) as its network under R's prefixes into OUT: "192.0.2.7" at /32,
 * "192.0.2.0/24", "2001:db8:1:2::/64"; the text as given if it is not an address */
static const char *network(const struct rl_rule *r, const char *addr, char *out, size_t cap)
{
	unsigned char a[16];
	int family, bits, bytes;
	char text[INET6_ADDRSTRLEN];

	if (pd_addr_parse(addr, &family, a) < 0)
		return addr;
	bits = family == AF_INET ? r->prefix4 : r->prefix6;
	bytes = family == AF_INET ? 4 : 16;
	for (int i = 0; i < bytes; i++) {
		int keep = bits - i * 8;

		if (keep <= 0)
			a[i] = 0;
		else if (keep < 8)
			a[i] &= (unsigned char)(0xff << (8 - keep));
	}
	inet_ntop(family, a, text, sizeof(text));
	if (bits == bytes * 8)
		snprintf(out, cap, "%s", text);
	else
		snprintf(out, cap, "%s/%d", text, bits);
	return out;
}

/* put - V lower-cased into OUT at *O, control bytes, space and '%' (and '+' when PLUS) as %XX; stops when full */
static void put(char *out, size_t cap, size_t *o, const char *v, int plus)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		unsigned char c = *p;

		if (c <= 0x20 || c == 0x7f || c == '%' || (plus && c == '+')) {
			if (*o + 4 > cap)
				return;
			out[(*o)++] = '%';
			out[(*o)++] = hex[c >> 4];
			out[(*o)++] = hex[c & 15];
		} else {
			if (*o + 2 > cap)
				return;
			out[(*o)++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
	}
	out[*o] = 0;
}

/* rl_key_value - the value of key choice K for REQ into OUT: its attributes, lower-cased, joined by '+' (a '+'
 * inside one written %2B when there are several); 1, or 0 if one of them is empty or missing. A value that does
 * not fit is cut short: longer than RL_VALUE_MAX, it is hashed in the store key (CAP > 2 * RL_VALUE_MAX) */
int rl_key_value(const pd_host *h, const pd_request *req, const struct rl_rule *r, const struct rl_key *k,
		 char *out, size_t cap)
{
	size_t o = 0;
	char net[INET6_ADDRSTRLEN + 8];

	out[0] = 0;
	for (size_t i = 0; i < k->n; i++) {
		const char *name = k->part[i], *v;

		if (!strcmp(name, "sender_domain"))
			v = domain_of(h->attr(req, "sender"));
		else if (!strcmp(name, "recipient_domain"))
			v = domain_of(h->attr(req, "recipient"));
		else
			v = h->attr(req, name);
		if (!v || !*v)
			return 0;
		if (!strcmp(name, "client_address"))
			v = network(r, v, net, sizeof(net));
		if (i && o + 2 <= cap) {
			out[o++] = '+';
			out[o] = 0;
		}
		put(out, cap, &o, v, k->n > 1);
	}
	return 1;
}

/* rl_store_key - the store key of VALUE under rule R, choice K and WINDOW: "RULE/WINDOW/CHOICE=VALUE",
 * VALUE replaced by "#" and its SipHash (hex) when it is longer than RL_VALUE_MAX */
void rl_store_key(const struct rl_rule *r, const struct rl_key *k, unsigned window, const char *value,
		  char *out, size_t cap)
{
	static const unsigned char sk[16] = "policyd-ratelim";
	size_t vl = strlen(value);

	if (vl > RL_VALUE_MAX)
		snprintf(out, cap, "%s/%u/%s=#%016llx", r->name, window, k->text,
			 (unsigned long long)pd_siphash64(sk, value, vl));
	else
		snprintf(out, cap, "%s/%u/%s=%s", r->name, window, k->text, value);
}
