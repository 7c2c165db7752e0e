/* spf-dns.c - loopback DNS server for the benchmarks: SPF TXT, DNSBL zones, A/MX for HELO checks, an optional delay per answer */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * usage: spf-dns [-D MS] [-j MS] [-z ZONE=ADDR:PERCENT]... [-a ADDR]
 *                [-s] [-t SECONDS] [-m MAX] [-q] ADDRESS PORT [SPF-RECORD]
 *
 * One thread, UDP only, IPv4. It stands in for a local caching resolver
 * (or, with -D, for a resolver that has to ask the Internet), so that the
 * policy servers measured against it, not it, are the limit.
 *
 * Names under a DNSBL zone given with -z (e.g. -z zen.test=127.0.0.2:30):
 * the RFC 5782 test entries 2.0.0.127.ZONE (listed) and 1.0.0.127.ZONE
 * (not listed); any other name is listed for PERCENT % of the names,
 * chosen by a hash of the whole name, so that repeated queries agree. A
 * listed name has an A record ADDR (and a TXT record saying so); a name
 * that is not listed is NXDOMAIN, with the zone's SOA (negative TTL 300)
 * in the authority section.
 *
 * Every other name: TXT (and ANY) gets one record holding SPF-RECORD
 * (default: the documentation networks that policyd-bench uses as client
 * addresses, then -all); A gets ADDR of -a (default 192.0.2.25), AAAA
 * 2001:db8::25, MX "10 NAME" (the name itself, which has the A record):
 * what HELO and sender-domain checks look up. Any other type gets an
 * empty NOERROR answer.
 *
 * -D MS answers every query MS milliseconds (a decimal) after it arrived,
 * without holding up the others: the answers wait in a timer heap (up to
 * -m MAX, default 200000, in flight; queries beyond that are dropped and
 * counted). -j MS adds a uniform jitter of +-MS to each delay. Without -D
 * (or with -D 0) each query is answered at once, in batches
 * (recvmmsg/sendmmsg).
 * -s (silent) drops every query: a resolver that never answers.
 * -t SECONDS bounds the run (default 3600); SIGTERM or SIGINT stop it too.
 * SIGUSR1 prints the counters without stopping. On exit the counters are
 * printed on stderr as one line:
 *   spf-dns: queries=N answered=N dropped=N listed=N nxdomain=N
 *   a=N aaaa=N txt=N mx=N other=N max_in_flight=N seconds=S
 * -q prints nothing else (no start line).
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SPF "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 " \
	"ip4:203.0.113.0/24 ip6:2001:db8::/32 ip4:198.18.0.0/15 " \
	"ip4:100.64.0.0/10 -all"
#define PKT 512			/* longest answer (plain UDP DNS) */
#define BATCH 64		/* datagrams per recvmmsg/sendmmsg */
#define MAXZONES 16
#define NEG_TTL 300		/* SOA minimum: negative caching TTL */

static volatile sig_atomic_t stopping, want_counters;

static struct zone {
	char name[256];
	size_t len;
	unsigned char addr[4];
	unsigned pct;
} zones[MAXZONES];
static int nzones;

static struct {
	double delay, jitter;	/* seconds */
	int silent, quiet;
	double seconds;
	size_t max_pending;
	unsigned char a4[4], a6[16];
	const char *txt;
} opt = { .seconds = 3600, .max_pending = 200000 };

static struct {
	unsigned long long queries, answered, dropped, overflow, malformed,
	    listed, nxdomain, a, aaaa, txt, mx, other;
	size_t max_in_flight;
} cnt;

/* a delayed answer, in a slab; the heap orders slot numbers by due time */
struct slot {
	struct sockaddr_in to;
	uint16_t len;
	unsigned char buf[PKT];
};
struct hent {
	double due;
	uint32_t slot;
};
static struct slot *slab;
static uint32_t *freelist;
static size_t nfree, slab_cap;
static struct hent *heap;
static size_t nheap;

static double t_start;

/* remember a signal for the main loop */
static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_counters = 1;
	else
		stopping = 1;
}

/* monotonic time in seconds */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* print the counters on stderr */
static void
print_counters(void)
{
	fprintf(stderr, "spf-dns: queries=%llu answered=%llu dropped=%llu "
	    "listed=%llu nxdomain=%llu a=%llu aaaa=%llu txt=%llu mx=%llu "
	    "other=%llu max_in_flight=%zu seconds=%.1f",
	    cnt.queries, cnt.answered, cnt.dropped, cnt.listed, cnt.nxdomain,
	    cnt.a, cnt.aaaa, cnt.txt, cnt.mx, cnt.other, cnt.max_in_flight,
	    now() - t_start);
	if (cnt.overflow || cnt.malformed)
		fprintf(stderr, " (overflow=%llu malformed=%llu)", cnt.overflow,
		    cnt.malformed);
	fputc('\n', stderr);
	fflush(stderr);
}

/* 64-bit FNV-1a over a string, finished with a splitmix64 round */
static uint64_t
name_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

/* append a resource record header: name pointer, type, class IN, ttl, rdlength */
static size_t
rr(unsigned char *out, size_t p, unsigned ptr, unsigned type, unsigned ttl,
    unsigned rdlen)
{
	out[p++] = (unsigned char)(0xc0 | (ptr >> 8));
	out[p++] = (unsigned char)(ptr & 0xff);
	out[p++] = (unsigned char)(type >> 8);
	out[p++] = (unsigned char)type;
	out[p++] = 0;
	out[p++] = 1;
	out[p++] = (unsigned char)(ttl >> 24);
	out[p++] = (unsigned char)(ttl >> 16);
	out[p++] = (unsigned char)(ttl >> 8);
	out[p++] = (unsigned char)ttl;
	out[p++] = (unsigned char)(rdlen >> 8);
	out[p++] = (unsigned char)rdlen;
	return p;
}

/* append one TXT record whose rdata is the string s (<= 255 bytes) */
static size_t
rr_txt(unsigned char *out, size_t p, const char *s, unsigned ttl)
{
	size_t l = strlen(s);

	p = rr(out, p, 12, 16, ttl, (unsigned)l + 1);
	out[p++] = (unsigned char)l;
	memcpy(out + p, s, l);
	return p + l;
}

/* append the SOA of the zone whose name starts at offset zoff */
static size_t
rr_soa(unsigned char *out, size_t p, unsigned zoff)
{
	static const unsigned char tail[20] = {
		0, 0, 0, 1,		/* serial */
		0, 0, 0x0e, 0x10,	/* refresh 3600 */
		0, 0, 0x02, 0x58,	/* retry 600 */
		0, 1, 0x51, 0x80,	/* expire 86400 */
		0, 0, NEG_TTL >> 8, NEG_TTL & 0xff,	/* minimum */
	};
	size_t rd;

	p = rr(out, p, zoff, 6, NEG_TTL, 0);
	rd = p;
	out[p++] = 2;
	memcpy(out + p, "ns", 2);
	p += 2;
	out[p++] = (unsigned char)(0xc0 | (zoff >> 8));
	out[p++] = (unsigned char)(zoff & 0xff);
	out[p++] = 10;
	memcpy(out + p, "hostmaster", 10);
	p += 10;
	out[p++] = (unsigned char)(0xc0 | (zoff >> 8));
	out[p++] = (unsigned char)(zoff & 0xff);
	memcpy(out + p, tail, sizeof(tail));
	p += sizeof(tail);
	out[rd - 2] = (unsigned char)((p - rd) >> 8);
	out[rd - 1] = (unsigned char)((p - rd) & 0xff);
	return p;
}

/* count a query by type */
static void
count_type(unsigned qtype)
{
	switch (qtype) {
	case 1: cnt.a++; break;
	case 28: cnt.aaaa++; break;
	case 16: cnt.txt++; break;
	case 15: cnt.mx++; break;
	default: cnt.other++;
	}
}

/* build the answer to query q (n bytes) in out; returns its length or 0 */
static size_t
answer(const unsigned char *q, size_t n, unsigned char *out)
{
	size_t p = 12, nl = 0;
	unsigned qtype, labels[128];
	int nlab = 0, z;
	char name[256];

	if (n < 17 || (q[2] & 0x80) || (q[2] & 0x78) || q[4] != 0 || q[5] != 1)
		return 0;	/* not a one-question standard query */
	while (p < n && q[p] != 0) {	/* walk the question name */
		size_t l = q[p];

		if ((l & 0xc0) != 0 || p + 1 + l >= n || nl + l + 1 >= sizeof(name)
		    || nlab == 128)
			return 0;
		labels[nlab++] = (unsigned)p;
		if (nl)
			name[nl++] = '.';
		for (size_t i = 0; i < l; i++) {
			char ch = (char)q[p + 1 + i];

			name[nl++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
		}
		p += l + 1;
	}
	name[nl] = 0;
	if (p + 5 > n)
		return 0;
	qtype = (unsigned)(q[p + 1] << 8 | q[p + 2]);
	p += 5;			/* end of the question */
	count_type(qtype);
	memcpy(out, q, p);
	out[2] = (unsigned char)(0x84 | (q[2] & 0x01));	/* QR, AA, keep RD */
	out[3] = 0x80;		/* RA, NOERROR */
	memset(out + 6, 0, 6);	/* AN, NS, AR counts */

	/* a DNSBL zone? */
	for (z = 0; z < nzones; z++) {
		const struct zone *zz = &zones[z];
		size_t pre;
		int listed, k;
		unsigned zoff = 0;

		if (nl < zz->len || memcmp(name + nl - zz->len, zz->name, zz->len) != 0)
			continue;
		if (nl > zz->len && name[nl - zz->len - 1] != '.')
			continue;
		/* the offset of the zone's first label in the question */
		for (k = 0, pre = 0; k < nlab; k++) {
			if (pre == nl - zz->len) {
				zoff = labels[k];
				break;
			}
			pre += q[labels[k]] + 1u;
		}
		if (nl == zz->len) {	/* the apex: no data here */
			out[9] = 1;
			return rr_soa(out, p, 12);
		}
		pre = nl - zz->len - 1;
		if (pre == 9 && memcmp(name, "2.0.0.127", 9) == 0)
			listed = 1;
		else if (pre == 9 && memcmp(name, "1.0.0.127", 9) == 0)
			listed = 0;
		else
			listed = name_hash(name, nl) % 100 < zz->pct;
		if (!listed) {
			cnt.nxdomain++;
			out[3] = 0x83;	/* RA, NXDOMAIN */
			out[9] = 1;
			return rr_soa(out, p, zoff);
		}
		cnt.listed++;
		if (qtype == 1 || qtype == 255) {
			out[7] = 1;
			p = rr(out, p, 12, 1, 300, 4);
			memcpy(out + p, zz->addr, 4);
			return p + 4;
		}
		if (qtype == 16) {
			out[7] = 1;
			return rr_txt(out, p, "listed by the benchmark DNS server", 300);
		}
		out[9] = 1;	/* NODATA */
		return rr_soa(out, p, zoff);
	}

	switch (qtype) {
	case 16:
	case 255:
		if (p + 12 + strlen(opt.txt) + 1 > PKT)
			return 0;
		out[7] = 1;
		return rr_txt(out, p, opt.txt, 3600);
	case 1:
		out[7] = 1;
		p = rr(out, p, 12, 1, 3600, 4);
		memcpy(out + p, opt.a4, 4);
		return p + 4;
	case 28:
		out[7] = 1;
		p = rr(out, p, 12, 28, 3600, 16);
		memcpy(out + p, opt.a6, 16);
		return p + 16;
	case 15:
		out[7] = 1;
		p = rr(out, p, 12, 15, 3600, 4);
		out[p++] = 0;
		out[p++] = 10;	/* preference */
		out[p++] = 0xc0;
		out[p++] = 12;	/* exchange: the name itself */
		return p;
	default:
		return p;	/* NOERROR, no data */
	}
}

/* heap of pending answers ordered by due time */
static void
heap_push(double due, uint32_t slot)
{
	size_t i = nheap++;

	while (i > 0) {
		size_t up = (i - 1) / 2;

		if (heap[up].due <= due)
			break;
		heap[i] = heap[up];
		i = up;
	}
	heap[i].due = due;
	heap[i].slot = slot;
}

static void
heap_pop(void)
{
	struct hent last = heap[--nheap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= nheap)
			break;
		if (c + 1 < nheap && heap[c + 1].due < heap[c].due)
			c++;
		if (heap[c].due >= last.due)
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (nheap > 0)
		heap[i] = last;
}

/* a free slot for a delayed answer (the slab grows on demand) */
static int
slot_get(uint32_t *s)
{
	if (nfree == 0) {
		size_t ncap = slab_cap ? slab_cap * 2 : 1024, i;
		struct slot *ns;
		uint32_t *nf;
		struct hent *nh;

		if (ncap > opt.max_pending)
			ncap = opt.max_pending;
		if (ncap <= slab_cap)
			return -1;
		ns = realloc(slab, ncap * sizeof(*slab));
		nf = realloc(freelist, ncap * sizeof(*freelist));
		nh = realloc(heap, ncap * sizeof(*heap));
		if (ns)
			slab = ns;
		if (nf)
			freelist = nf;
		if (nh)
			heap = nh;
		if (!ns || !nf || !nh)
			return -1;
		for (i = ncap; i > slab_cap; i--)
			freelist[nfree++] = (uint32_t)(i - 1);
		slab_cap = ncap;
	}
	*s = freelist[--nfree];
	return 0;
}

/* uniform in [0, 1) from a xorshift generator */
static double
rnd(void)
{
	static uint64_t x = 0x9e3779b97f4a7c15ULL;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return (double)(x >> 11) / 9007199254740992.0;
}

/* send n prepared datagrams; failures count as dropped */
static void
send_batch(int fd, struct mmsghdr *m, unsigned n)
{
	unsigned off = 0;

	while (off < n) {
		int r = sendmmsg(fd, m + off, n - off, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* the datagram at off could not go: drop it, go on */
			cnt.dropped++;
			off++;
			continue;
		}
		cnt.answered += (unsigned)r;
		off += (unsigned)r;
	}
}

/* parse "A.B.C.D" into 4 bytes or exit */
static void
parse_a4(const char *s, unsigned char *a, const char *what)
{
	if (inet_pton(AF_INET, s, a) != 1) {
		fprintf(stderr, "spf-dns: bad IPv4 address for %s: %s\n", what, s);
		exit(2);
	}
}

/* -z ZONE=ADDR:PERCENT */
static void
parse_zone(const char *arg)
{
	struct zone *z;
	const char *eq = strchr(arg, '='), *colon;
	char a[64];
	size_t l;
	char *end;
	unsigned long pct;

	if (nzones == MAXZONES) {
		fprintf(stderr, "spf-dns: at most %d zones\n", MAXZONES);
		exit(2);
	}
	z = &zones[nzones];
	if (eq == NULL || (colon = strchr(eq, ':')) == NULL ||
	    (size_t)(eq - arg) >= sizeof(z->name) || eq == arg ||
	    (size_t)(colon - eq - 1) >= sizeof(a)) {
		fprintf(stderr, "spf-dns: -z wants ZONE=ADDR:PERCENT, not %s\n", arg);
		exit(2);
	}
	l = (size_t)(eq - arg);
	while (l > 0 && arg[l - 1] == '.')
		l--;
	for (size_t i = 0; i < l; i++)
		z->name[i] = (arg[i] >= 'A' && arg[i] <= 'Z') ? (char)(arg[i] + 32) : arg[i];
	z->name[l] = 0;
	z->len = l;
	memcpy(a, eq + 1, (size_t)(colon - eq - 1));
	a[colon - eq - 1] = 0;
	parse_a4(a, z->addr, "-z");
	pct = strtoul(colon + 1, &end, 10);
	if (*end || end == colon + 1 || pct > 100) {
		fprintf(stderr, "spf-dns: bad percentage in -z %s\n", arg);
		exit(2);
	}
	z->pct = (unsigned)pct;
	nzones++;
}

static void
usage(void)
{
	fprintf(stderr, "usage: spf-dns [-D MS] [-j MS] [-z ZONE=ADDR:PERCENT]... "
	    "[-a ADDR] [-s] [-t SECONDS] [-m MAX] [-q] ADDRESS PORT [SPF-RECORD]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	static unsigned char qbuf[BATCH][PKT], abuf[BATCH][PKT];
	static struct sockaddr_in from[BATCH];
	static struct iovec qiov[BATCH], aiov[BATCH];
	static struct mmsghdr qm[BATCH], am[BATCH];
	int fd, ch, i, sz = 8 << 20;
	struct sigaction act;
	double deadline;

	opt.txt = DEFAULT_SPF;
	parse_a4("192.0.2.25", opt.a4, "default");
	inet_pton(AF_INET6, "2001:db8::25", opt.a6);
	while ((ch = getopt(argc, argv, "D:j:z:a:st:m:qh")) != -1) {
		char *end;

		switch (ch) {
		case 'D':
			opt.delay = strtod(optarg, &end) / 1e3;
			if (*end || opt.delay < 0)
				usage();
			break;
		case 'j':
			opt.jitter = strtod(optarg, &end) / 1e3;
			if (*end || opt.jitter < 0)
				usage();
			break;
		case 'z': parse_zone(optarg); break;
		case 'a': parse_a4(optarg, opt.a4, "-a"); break;
		case 's': opt.silent = 1; break;
		case 'q': opt.quiet = 1; break;
		case 't':
			opt.seconds = strtod(optarg, &end);
			if (*end || opt.seconds <= 0)
				usage();
			break;
		case 'm':
			opt.max_pending = (size_t)strtoul(optarg, &end, 10);
			if (*end || opt.max_pending == 0)
				usage();
			break;
		default: usage();
		}
	}
	if (argc - optind < 2 || argc - optind > 3)
		usage();
	if (argc - optind == 3)
		opt.txt = argv[optind + 2];
	if (strlen(opt.txt) > 255) {
		fprintf(stderr, "spf-dns: the TXT record is over 255 bytes\n");
		return 2;
	}
	memset(&act, 0, sizeof(act));
	act.sa_handler = on_signal;	/* no SA_RESTART: ppoll returns */
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	sigaction(SIGUSR1, &act, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(argv[optind + 1]));
	if (inet_pton(AF_INET, argv[optind], &sa.sin_addr) != 1) {
		fprintf(stderr, "spf-dns: bad IPv4 address %s\n", argv[optind]);
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "spf-dns: bind %s:%s: %s\n", argv[optind],
		    argv[optind + 1], strerror(errno));
		return 1;
	}
	/* room for bursts of thousands of queries (FORCE works as root) */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	for (i = 0; i < BATCH; i++) {
		qiov[i].iov_base = qbuf[i];
		qiov[i].iov_len = PKT;
		qm[i].msg_hdr.msg_iov = &qiov[i];
		qm[i].msg_hdr.msg_iovlen = 1;
		aiov[i].iov_base = abuf[i];
		am[i].msg_hdr.msg_iov = &aiov[i];
		am[i].msg_hdr.msg_iovlen = 1;
		am[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
	}
	t_start = now();
	deadline = t_start + opt.seconds;
	if (!opt.quiet)
		fprintf(stderr, "spf-dns: serving %s:%s, delay %.1f ms (jitter %.1f), "
		    "%d DNSBL zone%s%s, for at most %.0f s\n", argv[optind],
		    argv[optind + 1], opt.delay * 1e3, opt.jitter * 1e3, nzones,
		    nzones == 1 ? "" : "s", opt.silent ? ", silent" : "",
		    opt.seconds);

	while (!stopping) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		struct timespec ts;
		double t = now(), wait = deadline - t;
		int r, rounds;

		if (want_counters) {
			want_counters = 0;
			print_counters();
		}
		if (wait <= 0)
			break;
		if (nheap > 0 && heap[0].due - t < wait)
			wait = heap[0].due - t;
		if (wait < 0)
			wait = 0;
		if (wait > 1)
			wait = 1;
		ts.tv_sec = (time_t)wait;
		ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
		r = ppoll(&pfd, 1, &ts, NULL);
		if (r < 0 && errno != EINTR)
			break;
		/* read what is there, a bounded number of batches at a time
		 * so that due answers are not held up */
		for (rounds = 0; r > 0 && rounds < 16; rounds++) {
			int got, k;
			unsigned na = 0;
			double tq;

			for (k = 0; k < BATCH; k++) {
				qm[k].msg_hdr.msg_name = &from[k];
				qm[k].msg_hdr.msg_namelen = sizeof(from[k]);
			}
			got = recvmmsg(fd, qm, BATCH, MSG_DONTWAIT, NULL);
			if (got <= 0)
				break;
			tq = now();
			for (k = 0; k < got; k++) {
				size_t m;
				uint32_t s;

				cnt.queries++;
				if (opt.silent) {
					cnt.dropped++;
					continue;
				}
				if (opt.delay <= 0 && opt.jitter <= 0) {
					m = answer(qbuf[k], qm[k].msg_len, abuf[na]);
					if (m == 0) {
						cnt.malformed++;
						cnt.dropped++;
						continue;
					}
					aiov[na].iov_len = m;
					am[na].msg_hdr.msg_name = &from[k];
					am[na].msg_hdr.msg_namelen = qm[k].msg_hdr.msg_namelen;
					na++;
					continue;
				}
				if (slot_get(&s) < 0) {
					cnt.overflow++;
					cnt.dropped++;
					continue;
				}
				m = answer(qbuf[k], qm[k].msg_len, slab[s].buf);
				if (m == 0) {
					freelist[nfree++] = s;
					cnt.malformed++;
					cnt.dropped++;
					continue;
				}
				slab[s].len = (uint16_t)m;
				slab[s].to = from[k];
				{
					double d = opt.delay;

					if (opt.jitter > 0)
						d += (2 * rnd() - 1) * opt.jitter;
					heap_push(tq + (d > 0 ? d : 0), s);
				}
				if (nheap > cnt.max_in_flight)
					cnt.max_in_flight = nheap;
			}
			if (na > 0)
				send_batch(fd, am, na);
			if (got < BATCH)
				break;
		}
		/* send the answers that are due */
		t = now();
		while (nheap > 0 && heap[0].due <= t) {
			unsigned na = 0;
			uint32_t done[BATCH];

			while (nheap > 0 && heap[0].due <= t && na < BATCH) {
				uint32_t s = heap[0].slot;

				heap_pop();
				aiov[na].iov_base = slab[s].buf;
				aiov[na].iov_len = slab[s].len;
				am[na].msg_hdr.msg_name = &slab[s].to;
				am[na].msg_hdr.msg_namelen = sizeof(slab[s].to);
				done[na++] = s;
			}
			send_batch(fd, am, na);
			while (na > 0)
				freelist[nfree++] = done[--na];
		}
		for (i = 0; i < BATCH; i++)
			aiov[i].iov_base = abuf[i];
	}
	cnt.dropped += nheap;	/* still waiting when stopped */
	print_counters();
	return 0;
}
