/* cidr.h - IPv4/IPv6 networks: parse, match (skip_networks, access tables, whitelists) */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_CIDR_H
#define PD_CIDR_H

#include <stddef.h>

typedef struct pd_cidr {
	int family;              /* AF_INET or AF_INET6 */
	unsigned char addr[16];  /* network, host bits cleared */
	int prefix;              /* 0..32 or 0..128 */
} pd_cidr;

/* Parse "192.0.2.0/24", "2001:db8::/32", "::1" or "192.0.2.1" (host).
 * Returns 0, or -1 if the text is not an address or prefix. */
int pd_cidr_parse(const char *text, pd_cidr *out);

/* Parse TEXT as pd_cidr_parse does, but as strictly as a lookup table key
 * must be: the prefix length is decimal digits only ("/ 24", "/+24" are
 * refused) and no bit past it may be set ("192.0.2.1/24" is a typo for a
 * host or for 192.0.2.0/24, as Postfix cidr tables say). Returns 0, or -1
 * with *WHY (if WHY is not NULL) pointing at a static reason. */
int pd_cidr_parse_strict(const char *text, pd_cidr *out, const char **why);

/* Parse a client address as Postfix sends it (IPv4, IPv6, IPv4-mapped
 * IPv6 becomes IPv4). Returns 0 and fills FAMILY/ADDR, or -1. */
int pd_addr_parse(const char *text, int *family, unsigned char addr[16]);

/* 1 if ADDR of FAMILY lies in one of the N networks of LIST, else 0. */
int pd_cidr_match(const pd_cidr *list, size_t n, int family, const unsigned char *addr);

#endif
