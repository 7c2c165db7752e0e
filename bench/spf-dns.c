/* spf-dns.c - minimal loopback DNS server for the SPF benchmarks: every TXT query gets one SPF record */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * usage: spf-dns ADDRESS PORT [SPF-RECORD]
 * One thread, UDP only. Every query for type TXT (or ANY) is answered
 * with one TXT record holding SPF-RECORD (default: the documentation
 * networks that policyd-bench uses as client addresses, then -all); every
 * other query gets an empty NOERROR answer. It stands in for a local
 * caching resolver, so that the SPF servers measured here, not the DNS
 * server, are the limit. SIGTERM/SIGINT stop it.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_SPF "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 " \
	"ip4:203.0.113.0/24 ip6:2001:db8::/32 -all"

static volatile sig_atomic_t stopping;

/* remember a termination signal */
static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* build the answer to query q (n bytes) in out; returns its length or 0 */
static size_t
answer(const unsigned char *q, size_t n, unsigned char *out, size_t cap,
    const char *txt)
{
	size_t p = 12, tl = strlen(txt);
	unsigned qtype;

	if (n < 17 || (q[2] & 0x80) || q[4] != 0 || q[5] != 1)
		return 0;	/* not a one-question query */
	while (p < n && q[p] != 0) {	/* walk the question name */
		if ((q[p] & 0xc0) != 0)
			return 0;
		p += (size_t)q[p] + 1;
	}
	if (p + 5 > n)
		return 0;
	qtype = (unsigned)(q[p + 1] << 8 | q[p + 2]);
	p += 5;			/* end of the question */
	if (p + 12 + tl + 1 > cap || tl > 255)
		return 0;
	memcpy(out, q, p);
	out[2] = (unsigned char)(0x84 | (q[2] & 0x01));	/* QR, AA, keep RD */
	out[3] = 0x80;		/* RA, NOERROR */
	memset(out + 6, 0, 6);	/* AN, NS, AR counts */
	if (qtype != 16 && qtype != 255)
		return p;
	out[7] = 1;
	out[p++] = 0xc0;	/* name: pointer to the question */
	out[p++] = 12;
	out[p++] = 0;
	out[p++] = 16;		/* TXT */
	out[p++] = 0;
	out[p++] = 1;		/* IN */
	out[p++] = 0;
	out[p++] = 0;
	out[p++] = 0x0e;
	out[p++] = 0x10;	/* TTL 3600 */
	out[p++] = (unsigned char)((tl + 1) >> 8);
	out[p++] = (unsigned char)((tl + 1) & 0xff);
	out[p++] = (unsigned char)tl;
	memcpy(out + p, txt, tl);
	return p + tl;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	unsigned char q[1500], a[1500];
	const char *txt = argc > 3 ? argv[3] : DEFAULT_SPF;
	int fd;
	struct sigaction act;

	if (argc < 3) {
		fprintf(stderr, "usage: spf-dns ADDRESS PORT [SPF-RECORD]\n");
		return 2;
	}
	memset(&act, 0, sizeof(act));
	act.sa_handler = on_signal;	/* no SA_RESTART: recvfrom returns */
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "spf-dns: bad IPv4 address %s\n", argv[1]);
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "spf-dns: bind %s:%s: %s\n", argv[1], argv[2],
		    strerror(errno));
		return 1;
	}
	while (!stopping) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, q, sizeof(q), 0,
		    (struct sockaddr *)&from, &fl);
		size_t m;

		if (n < 0)
			continue;
		m = answer(q, (size_t)n, a, sizeof(a), txt);
		if (m > 0)
			sendto(fd, a, m, 0, (struct sockaddr *)&from, fl);
	}
	return 0;
}
