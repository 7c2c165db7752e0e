/* policyd-bench.c - load generator for Postfix SMTPD access-policy servers */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Speaks the Postfix policy delegation protocol to an inet (IPv4/IPv6) or
 * unix target, either Postfix style (persistent connections, one request
 * in flight on each) or Exim style (a connection per request, the request
 * followed by shutdown(SHUT_WR), the reply read until EOF). Each worker
 * thread runs its own epoll loop over its share of the connections.
 * Prints requests/s, latency percentiles, actions by kind and errors, and
 * optionally the target's CPU time and resident memory read from /proc.
 * See doc/policyd-bench.1.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQ_MAX 2048		/* one generated request */
#define REPLY_MAX 4096		/* longest reply accepted */
#define MAX_KINDS 32		/* distinct action kinds counted */
#define KIND_LEN 32		/* longest action kind kept */
#define MAX_PIDS 64		/* server processes watched */
#define HIST_SUB 7		/* log-linear histogram: 2^7 sub-buckets */
#define HIST_N ((64 - HIST_SUB + 1) << HIST_SUB)

enum mix { MIX_UNIQUE, MIX_POOL, MIX_RETRY };
enum cstate { C_IDLE, C_CONNECTING, C_WRITING, C_READING, C_DONE,
	C_WAITING };		/* --rate: the next request is not due yet */

/* the run's settings, shared read-only by the threads */
static struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char target[256];
	int conns, threads, exim, json, full, quiet;
	enum mix mix;
	uint64_t pool;		/* pool size, or retry distance */
	unsigned v6pct;
	uint64_t nreq;		/* 0 = unbounded (time bound only) */
	double seconds;
	uint64_t seed;
	int timeout_ms;
	pid_t pids[MAX_PIDS];
	int npids;
	long idle;		/* --idle N: hold N connections */
	double hold;		/* seconds to hold them */
	double rate;		/* --rate: requests/s offered in all, 0 = as fast as answered */
	uint64_t domains;	/* --domains N: sender domains; 0 = unique per triplet */
	uint64_t rdomains;	/* --rcpt-domains N: recipients at rD.example.net, D < N; 0 = example.net */
	int clients_unique;	/* --clients unique: a new IPv4 address per triplet */
	uint64_t users;		/* -M K: message mode, K SASL users / senders */
	unsigned rcpts;		/* -M K:R: mean recipients per message */
	int sasl;		/* message mode: sasl_username set (--no-sasl: not) */
	int show;		/* --show: print the first reply of each kind */
	double warmup;		/* --warmup: seconds before counting starts */
} opt = {
	.conns = 1, .threads = 1, .full = 1, .mix = MIX_UNIQUE,
	.pool = 10000, .nreq = 100000, .seconds = 10, .timeout_ms = 5000,
	.hold = 2, .domains = 50, .rcpts = 3, .sasl = 1,
};

static atomic_uint_fast64_t next_seq;	/* next request number to send */
static atomic_uint_fast64_t next_msg;	/* -M: next message number */
static pthread_mutex_t show_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop_flag;
static double t_start, t_deadline;
static double t_measure;	/* --warmup: replies before this are not counted */

/* one thread's counters */
struct stats {
	uint64_t done, errors, timeouts, connects, conn_errors, unfinished;
	uint64_t warm;		/* replies during --warmup, not counted */
	uint64_t conns_answered;	/* connection slots with a counted reply */
	uint64_t bytes;
	uint64_t hist[HIST_N];
	uint64_t lat_max, lat_sum;
	char kind[MAX_KINDS][KIND_LEN];
	uint64_t kind_n[MAX_KINDS];
	int nkinds;
	uint64_t other_kinds;
	double last_done;
};

/* one connection slot */
struct conn {
	int fd;
	enum cstate st;
	char req[REQ_MAX];
	size_t reqlen, reqoff;
	char rep[REPLY_MAX];
	size_t replen;
	double t0;		/* request start (--rate: when it was due) */
	int want_out;		/* EPOLLOUT registered */
	uint64_t seq;		/* the request's number */
	/* -M: the message under way on this connection */
	uint64_t msg;
	unsigned step, nrcpt;	/* steps 0..nrcpt-1: RCPT; nrcpt: END-OF-MESSAGE */
	int in_msg, eom;	/* a message is under way; this request is its EOM */
	int answered;		/* a counted reply came on this slot */
};

struct worker {
	pthread_t th;
	int id, nconns, ep;
	struct conn *c;
	struct stats st;
	struct conn **wq;	/* --rate: waiting connections, in due order */
	int wq_head, wq_n;
};

/* print a message to stderr and exit with status 2 */
static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("policyd-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* monotonic time in seconds */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* a 64-bit bijective mix (splitmix64 finaliser) */
static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* histogram bucket of a latency in ns */
static int
hist_index(uint64_t v)
{
	int msb;

	if (v < (1u << HIST_SUB))
		return (int)v;
	msb = 63 - __builtin_clzll(v);
	return ((msb - HIST_SUB + 1) << HIST_SUB) +
	    (int)((v >> (msb - HIST_SUB)) - (1u << HIST_SUB));
}

/* the highest latency in ns that falls in bucket i */
static uint64_t
hist_upper(int i)
{
	int k = i >> HIST_SUB;
	uint64_t sub = (uint64_t)(i & ((1 << HIST_SUB) - 1));

	if (k == 0)
		return sub;
	return (((1ULL << HIST_SUB) + sub + 1) << (k - 1)) - 1;
}

/* record one completed request of latency ns */
static void
stats_lat(struct stats *s, uint64_t ns)
{
	s->hist[hist_index(ns)]++;
	s->lat_sum += ns;
	if (ns > s->lat_max)
		s->lat_max = ns;
}

/* count one reply under its action kind (the first word of action=,
 * after prefix: "EOM:" for an END-OF-MESSAGE request in message mode);
 * returns 1 the first time this thread sees the kind */
static int
stats_kind(struct stats *s, const char *prefix, const char *act, size_t len,
    char *k)
{
	size_t n = strlen(prefix), p0;
	int i;

	memcpy(k, prefix, n);
	p0 = n;
	while (n - p0 < len && n < KIND_LEN - 1 && act[n - p0] != ' ' &&
	    act[n - p0] != '\t' && act[n - p0] != '\n') {
		char ch = act[n - p0];
		k[n++] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
	}
	k[n] = 0;
	/* numeric replies: 450, 554 ... counted by their first digit */
	if (n - p0 == 3 && k[p0] >= '2' && k[p0] <= '5' && k[p0 + 1] >= '0' &&
	    k[p0 + 1] <= '9')
		k[p0 + 1] = k[p0 + 2] = 'N';
	for (i = 0; i < s->nkinds; i++)
		if (strcmp(s->kind[i], k) == 0) {
			s->kind_n[i]++;
			return 0;
		}
	if (s->nkinds == MAX_KINDS) {
		s->other_kinds++;
		return 0;
	}
	memcpy(s->kind[s->nkinds], k, n + 1);
	s->kind_n[s->nkinds++] = 1;
	return 1;
}

/* print the value of attribute name (with its '=') in request req */
static void
show_attr(const char *req, size_t len, const char *name)
{
	size_t nl = strlen(name);
	const char *p = req, *end = req + len, *e;

	while (p < end) {
		e = memchr(p, '\n', (size_t)(end - p));
		if (e == NULL)
			e = end;
		if ((size_t)(e - p) >= nl && memcmp(p, name, nl) == 0) {
			if ((size_t)(e - p) > nl)
				fprintf(stderr, " %.*s", (int)(e - p), p);
			return;
		}
		p = e + 1;
	}
}

/* --show: print the first reply of each kind (over all threads) and the
 * request it answered, abridged */
static void
show_first(const char *kind, uint64_t seq, const char *req, size_t reqlen,
    const char *rep, size_t replen)
{
	static char seen[2 * MAX_KINDS][KIND_LEN];
	static int nseen;
	static const char *const attrs[] = { "protocol_state=",
	    "client_address=", "helo_name=", "sender=", "sasl_username=",
	    "recipient=", "recipient_count=", "size=", "instance=", NULL };
	int i;

	pthread_mutex_lock(&show_lock);
	for (i = 0; i < nseen; i++)
		if (strcmp(seen[i], kind) == 0)
			break;
	if (i == nseen && nseen < 2 * MAX_KINDS) {
		strcpy(seen[nseen++], kind);
		fprintf(stderr, "policyd-bench: first %s reply, to request %" PRIu64
		    ":", kind, seq + 1);
		for (i = 0; attrs[i]; i++)
			show_attr(req, reqlen, attrs[i]);
		while (replen > 0 && rep[replen - 1] == '\n')
			replen--;
		fprintf(stderr, "\n    -> %.*s\n", (int)replen, rep);
	}
	pthread_mutex_unlock(&show_lock);
}

/* bounded string builder used by the request generator */
struct sb {
	char *p, *end;
};

/* append a string */
static void
sb_s(struct sb *b, const char *s)
{
	size_t n = strlen(s);

	if (n > (size_t)(b->end - b->p))
		n = (size_t)(b->end - b->p);
	memcpy(b->p, s, n);
	b->p += n;
}

/* append an unsigned decimal */
static void
sb_u(struct sb *b, uint64_t v)
{
	char t[24];
	int n = 0;

	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0 && b->p < b->end)
		*b->p++ = t[--n];
}

/* append v as exactly w lower-case hex digits (upper case if uc) */
static void
sb_x(struct sb *b, uint64_t v, int w, int uc)
{
	const char *dig = uc ? "0123456789ABCDEF" : "0123456789abcdef";
	int i;

	if (w > (int)(b->end - b->p))
		return;
	for (i = w - 1; i >= 0; i--) {
		b->p[i] = dig[v & 15];
		v >>= 4;
	}
	b->p += w;
}

/* append v as hex without leading zeros (IPv6 group style) */
static void
sb_xg(struct sb *b, unsigned v)
{
	int w = 1;

	while (w < 4 && (v >> (4 * w)) != 0)
		w++;
	sb_x(b, v, w, 0);
}

/* append a client address: IPv6 (2001:db8::/32) or IPv4; with --clients
 * unique the IPv4 address is the triplet's own, counting up from an offset
 * given by the seed through 198.18.0.0/15 (RFC 2544, benchmarking) and
 * 100.64.0.0/10 (4,325,376 in all, then again), and the IPv6 one carries
 * the triplet number and 16 bits of the seed; otherwise IPv4 comes from
 * the 762 addresses of the three documentation networks */
static void
sb_client(struct sb *b, int v6, uint64_t r, uint64_t tid)
{
	if (v6 && opt.clients_unique) {
		sb_s(b, "2001:db8:");
		sb_xg(b, (unsigned)((opt.seed ^ (tid >> 32)) & 0xffff));
		sb_s(b, ":");
		sb_xg(b, (unsigned)((tid >> 16) & 0xffff));
		sb_s(b, ":");
		sb_xg(b, (unsigned)(tid & 0xffff));
		sb_s(b, "::");
		sb_xg(b, (unsigned)(((r >> 4) & 0xfffe) + 1));
	} else if (v6) {
		sb_s(b, "2001:db8:");
		sb_xg(b, (unsigned)((r >> 24) & 0xffff));
		sb_s(b, ":");
		sb_xg(b, (unsigned)((r >> 40) & 0xffff));
		sb_s(b, "::");
		sb_xg(b, (unsigned)(((r >> 4) & 0xfffe) + 1));
	} else if (opt.clients_unique) {
		/* from an offset that the seed gives: runs with other seeds
		 * mostly ask about other addresses */
		uint64_t i = (tid + mix64(opt.seed)) % (131072 + 4194304);
		uint32_t a = i < 131072 ? (198u << 24 | 18u << 16) + (uint32_t)i :
		    (100u << 24 | 64u << 16) + (uint32_t)(i - 131072);

		sb_u(b, a >> 24);
		sb_s(b, ".");
		sb_u(b, (a >> 16) & 255);
		sb_s(b, ".");
		sb_u(b, (a >> 8) & 255);
		sb_s(b, ".");
		sb_u(b, a & 255);
	} else {
		static const char *const net[3] =
		    { "192.0.2.", "198.51.100.", "203.0.113." };
		sb_s(b, net[(r >> 24) % 3]);
		sb_u(b, 1 + (r >> 32) % 254);
	}
}

/* the triplet number that request seq carries, by the chosen mix */
static uint64_t
triplet_of(uint64_t seq)
{
	uint64_t half;

	switch (opt.mix) {
	case MIX_POOL:
		return seq % opt.pool;
	case MIX_RETRY:
		/* even: a new triplet; odd: an early retry of one sent
		 * opt.pool pairs earlier (or of the latest, at the start) */
		half = seq / 2;
		if ((seq & 1) == 0)
			return half;
		return half >= opt.pool ? half - opt.pool : half;
	default:
		return seq;
	}
}

/* build the request for sequence number seq into c->req */
static void
build_request(struct conn *c, uint64_t seq)
{
	struct sb b = { c->req, c->req + REQ_MAX - 2 };
	uint64_t tid = triplet_of(seq);
	uint64_t h = mix64(opt.seed ^ mix64(tid));	/* the triplet's identity */
	uint64_t r = mix64(h);				/* its other properties */
	uint64_t q = mix64(opt.seed + seq);		/* per request */
	int v6 = (r % 100) < opt.v6pct;
	char name[64];
	struct sb nb = { name, name + sizeof(name) - 1 };

	/* client hostname: mx<N>.mail<M>.example.com, or with --domains
	 * unique one name per triplet */
	if (opt.domains == 0) {
		sb_s(&nb, "mx.h");
		sb_x(&nb, h >> 16, 12, 0);
	} else {
		sb_s(&nb, "mx");
		sb_u(&nb, (r >> 8) % 20);
		sb_s(&nb, ".mail");
		sb_u(&nb, (r >> 16) % 5000);
	}
	sb_s(&nb, ".example.com");
	*nb.p = 0;

	sb_s(&b, "request=smtpd_access_policy\nprotocol_state=RCPT\n"
	    "protocol_name=ESMTP\nclient_address=");
	sb_client(&b, v6, r, tid);
	sb_s(&b, "\nclient_name=");
	sb_s(&b, name);
	if (opt.full) {
		sb_s(&b, "\nreverse_client_name=");
		sb_s(&b, name);
	}
	sb_s(&b, "\nhelo_name=");
	sb_s(&b, name);
	/* sender: unique per triplet; recipient: from a set of 5000 */
	sb_s(&b, "\nsender=bounce-");
	sb_x(&b, h, 16, 0);
	if (opt.domains == 0) {
		sb_s(&b, "@d");
		sb_x(&b, r, 16, 0);
	} else {
		sb_s(&b, "@list");
		sb_u(&b, (r >> 48) % opt.domains);
	}
	sb_s(&b, ".example.org\nrecipient=user");
	sb_u(&b, (r >> 12) % 5000);
	if (opt.rdomains) {
		sb_s(&b, "@r");
		sb_u(&b, (q >> 7) % opt.rdomains);
		sb_s(&b, ".example.net\n");
	} else {
		sb_s(&b, "@example.net\n");
	}
	if (opt.full) {
		sb_s(&b, "client_port=");
		sb_u(&b, 1024 + q % 64000);
		sb_s(&b, "\nserver_address=192.0.2.25\nserver_port=25\n"
		    "recipient_count=0\nqueue_id=");
		sb_x(&b, q >> 20, 10, 1);
		sb_s(&b, "\ninstance=");
		sb_x(&b, q & 0xfff, 3, 0);
		sb_s(&b, ".");
		sb_x(&b, seq & 0xffffffff, 8, 0);
		sb_s(&b, ".");
		sb_x(&b, (q >> 12) & 0xffff, 5, 0);
		sb_s(&b, ".0\nsize=");
		sb_u(&b, 1000 + (q >> 40) % 200000);
		sb_s(&b, "\netrn_domain=\nstress=\nsasl_method=\nsasl_username=\n"
		    "sasl_sender=\nccert_subject=\nccert_issuer=\n"
		    "ccert_fingerprint=\nccert_pubkey_fingerprint=\n"
		    "encryption_protocol=TLSv1.3\n"
		    "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
		    "encryption_keysize=256\npolicy_context=\n"
		    "compatibility_level=3.6\nmail_version=3.7.11\n");
	} else {
		sb_s(&b, "instance=");
		sb_x(&b, seq, 12, 0);
		sb_s(&b, "\n");
	}
	*b.p++ = '\n';
	c->reqlen = (size_t)(b.p - c->req);
	c->reqoff = 0;
}

/* -M: build step c->step of message c->msg into c->req: RCPT requests
 * for its recipients, then END-OF-MESSAGE with recipient_count and size;
 * one user (sasl_username and sender) of opt.users, one instance,
 * queue_id, client and size for the whole message */
static void
build_msg_request(struct conn *c)
{
	struct sb b = { c->req, c->req + REQ_MAX - 2 };
	uint64_t m = mix64(opt.seed ^ mix64(c->msg ^ 0x6d657373616765ULL));
	uint64_t user = m % opt.users;
	uint64_t hu = mix64(opt.seed ^ mix64(user + 0x7573657273ULL));
	int eom = c->step == c->nrcpt;
	int v6 = (hu % 100) < opt.v6pct;
	char name[64];
	struct sb nb = { name, name + sizeof(name) - 1 };

	/* the user's machine: a stable client per user */
	sb_s(&nb, "host");
	sb_u(&nb, user);
	sb_s(&nb, ".clients.example.com");
	*nb.p = 0;
	sb_s(&b, "request=smtpd_access_policy\nprotocol_state=");
	sb_s(&b, eom ? "END-OF-MESSAGE" : "RCPT");
	sb_s(&b, "\nprotocol_name=ESMTP\nclient_address=");
	sb_client(&b, v6, hu, user);
	sb_s(&b, "\nclient_name=");
	sb_s(&b, name);
	if (opt.full) {
		sb_s(&b, "\nreverse_client_name=");
		sb_s(&b, name);
	}
	sb_s(&b, "\nhelo_name=");
	sb_s(&b, name);
	sb_s(&b, "\nsender=user");
	sb_u(&b, user);
	sb_s(&b, "@example.org\nrecipient=");
	if (!eom) {
		sb_s(&b, "rcpt");
		sb_u(&b, mix64(m + c->step) % 100000);
		sb_s(&b, "@example.net");
	}
	sb_s(&b, "\nrecipient_count=");
	sb_u(&b, eom ? c->nrcpt : 0);
	sb_s(&b, "\nsize=");
	sb_u(&b, 1000 + (m >> 20) % 200000);
	sb_s(&b, "\ninstance=");
	sb_x(&b, c->msg & 0xfff, 3, 0);
	sb_s(&b, ".");
	sb_x(&b, (m >> 8) & 0xffffffff, 8, 0);
	sb_s(&b, ".");
	sb_x(&b, c->msg & 0xfffff, 5, 0);
	sb_s(&b, ".0");
	if (opt.sasl) {
		sb_s(&b, "\nsasl_method=PLAIN\nsasl_username=user");
		sb_u(&b, user);
	} else {
		sb_s(&b, "\nsasl_method=\nsasl_username=");
	}
	sb_s(&b, "\n");
	if (opt.full) {
		sb_s(&b, "client_port=");
		sb_u(&b, 1024 + (m >> 40) % 64000);
		sb_s(&b, "\nserver_address=192.0.2.25\nserver_port=587\n"
		    "queue_id=");
		sb_x(&b, m >> 24, 10, 1);
		sb_s(&b, "\netrn_domain=\nstress=\nsasl_sender=\n"
		    "ccert_subject=\nccert_issuer=\nccert_fingerprint=\n"
		    "ccert_pubkey_fingerprint=\nencryption_protocol=TLSv1.3\n"
		    "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
		    "encryption_keysize=256\npolicy_context=\n"
		    "compatibility_level=3.6\nmail_version=3.7.11\n");
	}
	*b.p++ = '\n';
	c->reqlen = (size_t)(b.p - c->req);
	c->reqoff = 0;
	c->eom = eom;
}

/* -M: the next request on c: the next step of its message, or the first
 * of a new one */
static void
next_msg_request(struct conn *c)
{
	if (!c->in_msg || c->step > c->nrcpt) {
		uint64_t m;

		c->msg = atomic_fetch_add_explicit(&next_msg, 1,
		    memory_order_relaxed);
		m = mix64(opt.seed ^ mix64(c->msg ^ 0x72637074ULL));
		/* 1 .. 2R-1 recipients, R on average */
		c->nrcpt = opt.rcpts > 1 ? 1 + (unsigned)(m % (2 * opt.rcpts - 1)) : 1;
		c->step = 0;
		c->in_msg = 1;
	}
	build_msg_request(c);
	c->step++;
}

/* parse host:port, [v6]:port, inet:..., unix:PATH or /PATH into opt.addr */
static void
parse_target(const char *t)
{
	char host[256], *port;
	struct addrinfo hints, *res;
	int e;

	if (strlen(t) >= sizeof(opt.target))
		die("target too long");
	strcpy(opt.target, t);
	if (strncmp(t, "unix:", 5) == 0 || t[0] == '/') {
		struct sockaddr_un *su = (struct sockaddr_un *)&opt.addr;
		const char *p = t[0] == '/' ? t : t + 5;

		if (strlen(p) >= sizeof(su->sun_path))
			die("unix socket path too long: %s", p);
		su->sun_family = AF_UNIX;
		strcpy(su->sun_path, p);
		opt.addrlen = sizeof(*su);
		return;
	}
	if (strncmp(t, "inet:", 5) == 0)
		t += 5;
	if (strlen(t) >= sizeof(host))
		die("target too long");
	if (t[0] == '[') {
		char *end;

		strcpy(host, t + 1);
		end = strchr(host, ']');
		if (end == NULL || end[1] != ':')
			die("bad target %s (want [ADDR]:PORT)", t);
		*end = 0;
		port = end + 2;
	} else {
		strcpy(host, t);
		port = strrchr(host, ':');
		if (port == NULL)
			die("bad target %s (want HOST:PORT or unix:PATH)", t);
		*port++ = 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0)
		die("%s: %s", t, gai_strerror(e));
	memcpy(&opt.addr, res->ai_addr, res->ai_addrlen);
	opt.addrlen = res->ai_addrlen;
	freeaddrinfo(res);
}

/* (re)register a connection's fd with the worker's epoll for ev */
static void
ep_set(struct worker *w, struct conn *c, uint32_t ev, int op)
{
	struct epoll_event e;

	e.events = ev;
	e.data.ptr = c;
	if (epoll_ctl(w->ep, op, c->fd, &e) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

/* close a connection slot */
static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->st = C_IDLE;
}

/* claim the next request number; 0 when the run is over */
static int
claim(uint64_t *seq)
{
	if (atomic_load_explicit(&stop_flag, memory_order_relaxed))
		return 0;
	*seq = atomic_fetch_add_explicit(&next_seq, 1, memory_order_relaxed);
	if (opt.nreq && *seq >= opt.nreq)
		return 0;
	return 1;
}

/* start a non-blocking connect on slot c; -1 on immediate failure */
static int
conn_open(struct worker *w, struct conn *c)
{
	int fd, one = 1;

	fd = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0) {
		w->st.conn_errors++;
		return -1;
	}
	if (opt.addr.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	w->st.connects++;
	if (connect(fd, (struct sockaddr *)&opt.addr, opt.addrlen) == 0) {
		c->st = C_WRITING;
	} else if (errno == EINPROGRESS || errno == EAGAIN) {
		c->st = C_CONNECTING;
	} else {
		w->st.conn_errors++;
		conn_close(c);
		return -1;
	}
	c->want_out = 1;
	ep_set(w, c, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
	return 0;
}

/* begin the next request on c (connecting first if needed); 0 if none */
static int
conn_next(struct worker *w, struct conn *c)
{
	uint64_t seq;

	if (!claim(&seq)) {
		if (c->fd >= 0 && !opt.exim)
			conn_close(c);
		c->st = C_DONE;
		return 0;
	}
	c->seq = seq;
	if (opt.users)
		next_msg_request(c);
	else
		build_request(c, seq);
	c->replen = 0;
	c->t0 = now();
	if (opt.rate > 0) {
		/* due at its place in the schedule; latency counts from there,
		 * so a server that holds every connection cannot hide its delay */
		double due = t_start + (double)seq / opt.rate;

		if (due > c->t0) {
			c->t0 = due;
			c->st = C_WAITING;
			w->wq[(w->wq_head + w->wq_n++) % w->nconns] = c;
			return 1;
		}
		c->t0 = due;
	}
	if (c->fd < 0) {
		if (conn_open(w, c) < 0) {
			w->st.errors++;
			return -1;
		}
		return 1;
	}
	c->st = C_WRITING;
	return 1;
}

/* write what is pending; returns -1 on error */
static int
conn_write(struct worker *w, struct conn *c)
{
	while (c->reqoff < c->reqlen) {
		ssize_t n = send(c->fd, c->req + c->reqoff, c->reqlen - c->reqoff,
		    MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN) {
				if (!c->want_out) {
					c->want_out = 1;
					ep_set(w, c, EPOLLIN | EPOLLOUT,
					    EPOLL_CTL_MOD);
				}
				return 0;
			}
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->reqoff += (size_t)n;
		w->st.bytes += (uint64_t)n;
	}
	if (opt.exim && shutdown(c->fd, SHUT_WR) < 0)
		return -1;
	if (c->want_out) {
		c->want_out = 0;
		ep_set(w, c, EPOLLIN, EPOLL_CTL_MOD);
	}
	c->st = C_READING;
	return 0;
}

/* the request on c failed: count it and start over on a new connection */
static void
conn_fail(struct worker *w, struct conn *c, int timeout)
{
	if (timeout)
		w->st.timeouts++;
	w->st.errors++;
	conn_close(c);
	c->in_msg = 0;		/* the message is given up, as smtpd would */
	conn_next(w, c);
}

/* a complete reply is in c->rep: record it and move on */
static void
conn_reply(struct worker *w, struct conn *c)
{
	double t = now();
	const char *a = c->rep;

	if (c->replen < 8 || strncmp(a, "action=", 7) != 0) {
		/* Postfix tolerates other attributes first; so do we */
		a = memmem(c->rep, c->replen, "\naction=", 8);
		if (a == NULL) {
			conn_fail(w, c, 0);
			return;
		}
		a++;
	}
	if (c->t0 < t_measure) {
		w->st.warm++;	/* --warmup: begun before counting, not counted */
	} else {
		char k[KIND_LEN];

		if (stats_kind(&w->st, opt.users && c->eom ? "EOM:" : "", a + 7,
		    c->replen - (size_t)(a + 7 - c->rep), k) && opt.show)
			show_first(k, c->seq, c->req, c->reqlen, a,
			    c->replen - (size_t)(a - c->rep));
		stats_lat(&w->st, (uint64_t)((t - c->t0) * 1e9));
		w->st.done++;
		w->st.last_done = t;
		if (!c->answered) {
			c->answered = 1;
			w->st.conns_answered++;
		}
	}
	if (opt.exim)
		conn_close(c);
	conn_next(w, c);
	if (c->st == C_WRITING && c->fd >= 0 && conn_write(w, c) < 0)
		conn_fail(w, c, 0);
}

/* read what the server sent; detect end of reply */
static void
conn_read(struct worker *w, struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->rep + c->replen,
		    REPLY_MAX - 1 - c->replen, 0);

		if (n < 0) {
			if (errno == EAGAIN)
				return;
			if (errno == EINTR)
				continue;
			conn_fail(w, c, 0);
			return;
		}
		if (n == 0) {
			/* EOF: ends the reply in Exim mode, an error otherwise */
			if (opt.exim && c->replen > 0) {
				c->rep[c->replen] = 0;
				conn_reply(w, c);
			} else {
				conn_fail(w, c, 0);
			}
			return;
		}
		c->replen += (size_t)n;
		c->rep[c->replen] = 0;
		if (!opt.exim) {
			if (c->replen >= 2 && c->rep[c->replen - 1] == '\n' &&
			    c->rep[c->replen - 2] == '\n') {
				conn_reply(w, c);
				return;
			}
			if (memmem(c->rep, c->replen, "\n\n", 2) != NULL) {
				/* data after the blank line: not one reply */
				conn_fail(w, c, 0);
				return;
			}
		}
		if (c->replen >= REPLY_MAX - 1) {
			conn_fail(w, c, 0);
			return;
		}
	}
}

/* handle readiness on a connection */
static void
conn_event(struct worker *w, struct conn *c, uint32_t ev)
{
	if (c->st == C_WAITING) {
		/* idle between requests: the server closed the connection (a
		 * new one is opened when the request is due) or sent junk */
		char junk[256];
		ssize_t n = recv(c->fd, junk, sizeof(junk), 0);

		(void)ev;
		if (n > 0)
			w->st.errors++;
		if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
			close(c->fd);
			c->fd = -1;
		}
		return;
	}
	if (c->st == C_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 ||
		    err != 0) {
			w->st.conn_errors++;
			conn_fail(w, c, 0);
			return;
		}
		c->st = C_WRITING;
	}
	if (c->st == C_WRITING && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		if (conn_write(w, c) < 0) {
			conn_fail(w, c, 0);
			return;
		}
	}
	if (c->st == C_READING && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		conn_read(w, c);
}

/* --rate: send the requests that are due on their waiting connections */
static void
release_due(struct worker *w, double t)
{
	while (w->wq_n > 0) {
		struct conn *c = w->wq[w->wq_head];

		if (c->st == C_WAITING && c->t0 > t)
			return;
		w->wq_head = (w->wq_head + 1) % w->nconns;
		w->wq_n--;
		if (c->st != C_WAITING)
			continue;
		if (c->fd < 0) {
			if (conn_open(w, c) < 0) {
				w->st.errors++;
				conn_next(w, c);
			}
		} else {
			c->st = C_WRITING;
			if (conn_write(w, c) < 0)
				conn_fail(w, c, 0);
		}
	}
}

/* epoll_wait until an event, the next due request or 100 ms */
static int
wait_events(struct worker *w, struct epoll_event *ev, int max)
{
	double dt = 0.1;

	if (w->wq_n > 0) {
		double d = w->wq[w->wq_head]->t0 - now();

		dt = d < 0 ? 0 : d < dt ? d : dt;
	}
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
	{
		struct timespec ts;

		ts.tv_sec = (time_t)dt;
		ts.tv_nsec = (long)((dt - (double)ts.tv_sec) * 1e9);
		return epoll_pwait2(w->ep, ev, max, &ts, NULL);
	}
#else
	return epoll_wait(w->ep, ev, max, (int)(dt * 1000 + 0.999));
#endif
}

/* a worker thread: drive its connections until the run ends */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[256];
	double last_scan = now();
	int i, active;

	/* each request is written once EPOLLOUT reports its connect done */
	for (i = 0; i < w->nconns; i++) {
		w->c[i].fd = -1;
		conn_next(w, &w->c[i]);
	}
	for (;;) {
		int n = wait_events(w, ev, 256);
		double t;

		for (i = 0; i < n; i++)
			conn_event(w, ev[i].data.ptr, ev[i].events);
		t = now();
		if (opt.rate > 0 && !atomic_load(&stop_flag))
			release_due(w, t);
		if (t >= t_deadline)
			atomic_store(&stop_flag, 1);
		if (t - last_scan >= 0.1 || atomic_load(&stop_flag)) {
			last_scan = t;
			active = 0;
			for (i = 0; i < w->nconns; i++) {
				struct conn *c = &w->c[i];

				if (c->st == C_DONE)
					continue;
				if (atomic_load(&stop_flag)) {
					if (c->st == C_READING ||
					    c->st == C_WRITING ||
					    c->st == C_CONNECTING)
						w->st.unfinished++;
					conn_close(c);
					c->st = C_DONE;
					continue;
				}
				if (c->st == C_IDLE) {	/* failed to connect */
					conn_next(w, c);
				} else if (c->st != C_WAITING &&
				    (t - c->t0) * 1000 > opt.timeout_ms) {
					conn_fail(w, c, 1);
				}
				active++;
			}
			if (active == 0)
				break;
		}
	}
	return NULL;
}

/* CPU ticks (utime+stime+cutime+cstime) and VmRSS (kB) of one process;
 * -1 if it is gone */
static int
proc_one(pid_t pid, uint64_t *ticks, long *rss_kb)
{
	char path[64], buf[4096], *p;
	FILE *f;
	size_t n;
	unsigned long ut, stt;
	long cut, cst;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* skip "pid (comm)": comm may hold spaces and parentheses */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu "
	    "%ld %ld", &ut, &stt, &cut, &cst) != 4)
		return -1;
	/* reaped children's time moves into cutime/cstime: count it too, so
	 * the sum over a process tree stays right when a child exits */
	*ticks = (uint64_t)ut + stt + (uint64_t)(cut > 0 ? cut : 0) +
	    (uint64_t)(cst > 0 ? cst : 0);
	*rss_kb = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) != NULL) {
		while (fgets(buf, sizeof(buf), f))
			if (strncmp(buf, "VmRSS:", 6) == 0) {
				*rss_kb = atol(buf + 6);
				break;
			}
		fclose(f);
	}
	return 0;
}

/* the same summed over a process and its live descendants (a supervising
 * master and its worker processes, say); -1 if pid itself is gone */
static int
proc_sample(pid_t pid, uint64_t *ticks, long *rss_kb, int depth)
{
	char path[64], buf[4096], *p, *end;
	FILE *f;
	size_t n;

	if (proc_one(pid, ticks, rss_kb) < 0)
		return -1;
	if (depth > 4)
		return 0;
	/* children of the main thread (threads other than the main one
	 * rarely fork; a daemon's master does from its main thread) */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid,
	    (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	for (p = buf;; p = end) {
		long c = strtol(p, &end, 10);
		uint64_t t;
		long r;

		if (end == p || c <= 0)
			break;
		if (proc_sample((pid_t)c, &t, &r, depth + 1) == 0) {
			*ticks += t;
			*rss_kb += r;
		}
	}
	return 0;
}

/* sum CPU ticks and RSS over the watched PIDs */
static int
procs_sample(uint64_t *ticks, long *rss_kb)
{
	int i;

	*ticks = 0;
	*rss_kb = 0;
	for (i = 0; i < opt.npids; i++) {
		uint64_t t;
		long r;

		if (proc_sample(opt.pids[i], &t, &r, 0) < 0)
			return -1;
		*ticks += t;
		*rss_kb += r > 0 ? r : 0;
	}
	return 0;
}

/* busy and total clock ticks of the whole machine, from /proc/stat */
static int
machine_ticks(uint64_t *busy, uint64_t *total)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int n, i;

	if (f == NULL)
		return -1;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
	    &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 4)
		return -1;
	*total = 0;
	for (i = 0; i < 8; i++)
		*total += v[i];
	*busy = *total - v[3] - v[4];	/* less idle and iowait */
	return 0;
}

/* latency (ns) at quantile q over the merged histogram */
static uint64_t
quantile(const struct stats *s, double q)
{
	uint64_t want, acc = 0;
	int i;

	if (s->done == 0)
		return 0;
	want = (uint64_t)(q * (double)s->done);
	if (want < 1)
		want = 1;
	for (i = 0; i < HIST_N; i++) {
		acc += s->hist[i];
		if (acc >= want)
			return hist_upper(i) < s->lat_max ? hist_upper(i) : s->lat_max;
	}
	return s->lat_max;
}

/* fold worker stats b into a */
static void
stats_merge(struct stats *a, const struct stats *b)
{
	int i, j;

	a->done += b->done;
	a->errors += b->errors;
	a->timeouts += b->timeouts;
	a->connects += b->connects;
	a->conn_errors += b->conn_errors;
	a->unfinished += b->unfinished;
	a->warm += b->warm;
	a->conns_answered += b->conns_answered;
	a->bytes += b->bytes;
	a->lat_sum += b->lat_sum;
	a->other_kinds += b->other_kinds;
	if (b->lat_max > a->lat_max)
		a->lat_max = b->lat_max;
	if (b->last_done > a->last_done)
		a->last_done = b->last_done;
	for (i = 0; i < HIST_N; i++)
		a->hist[i] += b->hist[i];
	for (j = 0; j < b->nkinds; j++) {
		for (i = 0; i < a->nkinds; i++)
			if (strcmp(a->kind[i], b->kind[j]) == 0)
				break;
		if (i == a->nkinds) {
			if (a->nkinds == MAX_KINDS) {
				a->other_kinds += b->kind_n[j];
				continue;
			}
			strcpy(a->kind[a->nkinds++], b->kind[j]);
		}
		a->kind_n[i] += b->kind_n[j];
	}
}

/* print a JSON string value (bounded, escaped) */
static void
json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static const char *const mix_name[] = { "unique", "pool", "retry" };

/* print the results */
static void
report(const struct stats *s, double elapsed, double cpu_client,
    int have_srv, double srv_cpu, long rss0, long rss1, double busy)
{
	double rate = elapsed > 0 ? (double)s->done / elapsed : 0;
	double us_per = s->done && have_srv ? srv_cpu * 1e6 / (double)s->done : 0;
	double mean = s->done ? (double)s->lat_sum / (double)s->done / 1e3 : 0;
	int i;

	if (opt.json) {
		printf("{\"target\":");
		json_str(opt.target);
		printf(",\"mode\":\"%s\",\"connections\":%d,\"threads\":%d,"
		    "\"mix\":\"%s\",\"pool\":%" PRIu64 ",\"ipv6_percent\":%u,"
		    "\"attributes\":\"%s\",\"seed\":%" PRIu64 ","
		    "\"requests\":%" PRIu64 ",\"errors\":%" PRIu64 ","
		    "\"timeouts\":%" PRIu64 ",\"connect_errors\":%" PRIu64 ","
		    "\"unfinished\":%" PRIu64 ",\"connects\":%" PRIu64 ","
		    "\"seconds\":%.6f,\"requests_per_second\":%.1f,"
		    "\"latency_us\":{\"mean\":%.1f,\"p50\":%.1f,\"p95\":%.1f,"
		    "\"p99\":%.1f,\"max\":%.1f},\"client_cpu_us_per_request\":%.2f,"
		    "\"client_cpu_seconds\":%.2f,\"machine_busy_cores\":%.2f,"
		    "\"actions\":{",
		    opt.exim ? "exim" : "persistent", opt.conns, opt.threads,
		    mix_name[opt.mix], opt.pool, opt.v6pct,
		    opt.full ? "full" : "minimal", opt.seed, s->done, s->errors,
		    s->timeouts, s->conn_errors, s->unfinished, s->connects,
		    elapsed, rate, mean, quantile(s, .50) / 1e3,
		    quantile(s, .95) / 1e3, quantile(s, .99) / 1e3,
		    s->lat_max / 1e3,
		    s->done ? cpu_client * 1e6 / (double)s->done : 0,
		    cpu_client, busy);
		for (i = 0; i < s->nkinds; i++) {
			printf("%s", i ? "," : "");
			json_str(s->kind[i]);
			printf(":%" PRIu64, s->kind_n[i]);
		}
		if (s->other_kinds)
			printf("%s\"OTHER\":%" PRIu64, s->nkinds ? "," : "",
			    s->other_kinds);
		printf("}");
		if (have_srv)
			printf(",\"server_cpu_seconds\":%.2f,"
			    "\"server_cpu_us_per_request\":%.2f,"
			    "\"server_rss_kb_before\":%ld,\"server_rss_kb_after\":%ld",
			    srv_cpu, us_per, rss0, rss1);
		if (opt.rate > 0)
			printf(",\"offered_rate\":%.1f", opt.rate);
		printf(",\"domains\":%" PRIu64 ",\"clients\":\"%s\"", opt.domains,
		    opt.clients_unique ? "unique" : "doc");
		if (opt.warmup > 0)
			printf(",\"warmup_seconds\":%.1f,\"warmup_requests\":%"
			    PRIu64, opt.warmup, s->warm);
		printf(",\"connections_answered\":%" PRIu64, s->conns_answered);
		if (opt.users)
			printf(",\"users\":%" PRIu64 ",\"recipients_per_message\":%u,"
			    "\"sasl\":%s,\"messages\":%" PRIu64, opt.users, opt.rcpts,
			    opt.sasl ? "true" : "false",
			    (uint64_t)atomic_load(&next_msg));
		printf("}\n");
		return;
	}
	printf("target       %s (%s, %d connection%s, %d thread%s)\n",
	    opt.target, opt.exim ? "connection per request" : "persistent",
	    opt.conns, opt.conns == 1 ? "" : "s", opt.threads,
	    opt.threads == 1 ? "" : "s");
	printf("mix          %s", mix_name[opt.mix]);
	if (opt.mix != MIX_UNIQUE)
		printf(":%" PRIu64, opt.pool);
	printf(", %s attributes, %u%% IPv6, seed %" PRIu64 "\n",
	    opt.full ? "full Postfix 3.7" : "minimal", opt.v6pct, opt.seed);
	printf("names        ");
	if (opt.domains)
		printf("%" PRIu64 " sender domains", opt.domains);
	else
		printf("a sender domain and a HELO name per triplet");
	printf(", %s client addresses\n", opt.clients_unique ?
	    "a new IPv4 address per triplet" : "762 documentation IPv4");
	if (opt.users)
		printf("messages     %" PRIu64 " started by %" PRIu64 " users%s, "
		    "%u recipients on average, RCPT then END-OF-MESSAGE\n",
		    (uint64_t)atomic_load(&next_msg), opt.users,
		    opt.sasl ? " (SASL)" : " (senders, no SASL)", opt.rcpts);
	printf("requests     %" PRIu64 " in %.3f s, %" PRIu64 " errors (%"
	    PRIu64 " timeouts, %" PRIu64 " connect), %" PRIu64 " unfinished\n",
	    s->done, elapsed, s->errors, s->timeouts, s->conn_errors,
	    s->unfinished);
	if (s->conns_answered < (uint64_t)opt.conns && !opt.exim)
		printf("connections  only %" PRIu64 " of %d got a reply\n",
		    s->conns_answered, opt.conns);
	if (opt.warmup > 0)
		printf("warm-up      %.1f s, %" PRIu64 " replies not counted\n",
		    opt.warmup, s->warm);
	printf("rate         %.0f requests/s", rate);
	if (opt.rate > 0)
		printf(" (offered %.0f/s; latency from when each was due)",
		    opt.rate);
	printf("\n");
	printf("latency      p50 %.1f us  p95 %.1f us  p99 %.1f us  max %.1f us"
	    "  mean %.1f us\n", quantile(s, .50) / 1e3, quantile(s, .95) / 1e3,
	    quantile(s, .99) / 1e3, s->lat_max / 1e3, mean);
	printf("actions     ");
	for (i = 0; i < s->nkinds; i++)
		printf(" %s %" PRIu64, s->kind[i], s->kind_n[i]);
	if (s->other_kinds)
		printf(" OTHER %" PRIu64, s->other_kinds);
	printf("\n");
	if (have_srv) {
		printf("server cpu   %.2f s user+sys, %.2f us/request",
		    srv_cpu, us_per);
		printf(" (pid");
		for (i = 0; i < opt.npids; i++)
			printf(" %d", (int)opt.pids[i]);
		printf(")\nserver rss   %ld kB before, %ld kB after\n", rss0, rss1);
	}
	printf("client cpu   %.2f us/request\n",
	    s->done ? cpu_client * 1e6 / (double)s->done : 0);
	printf("machine      %.2f of %ld cores busy on average (client %.2f%s)\n",
	    busy, sysconf(_SC_NPROCESSORS_ONLN),
	    elapsed > 0 ? cpu_client / elapsed : 0,
	    have_srv ? ", server below" : "");
	if (have_srv)
		printf("             server %.2f cores\n",
		    elapsed > 0 ? srv_cpu / elapsed : 0);
}

/* this process's user+system CPU seconds */
static double
self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* raise the open-file limit for n connections (the hard limit too when
 * allowed: as root up to fs.nr_open); dies if it stays too low */
static void
raise_nofile(long n)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)n + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want) {
		struct rlimit hi = { want, want };

		if (setrlimit(RLIMIT_NOFILE, &hi) == 0)
			return;
	}
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
		die("%ld connections need %lu open files; the limit is %lu "
		    "(hard %lu): raise it (ulimit -n, or run as root)", n,
		    (unsigned long)want, (unsigned long)rl.rlim_cur,
		    (unsigned long)rl.rlim_max);
}

/* send one request on a blocking fd and wait for its reply; 0 when ok */
static int
one_request(int fd, uint64_t seq, int timeout_ms)
{
	static struct conn c;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;

	build_request(&c, seq);
	if (send(fd, c.req, c.reqlen, MSG_NOSIGNAL) != (ssize_t)c.reqlen)
		return -1;
	while (got < 2 || c.rep[got - 1] != '\n' || c.rep[got - 2] != '\n') {
		ssize_t n;

		if (poll(&p, 1, timeout_ms) <= 0)
			return -1;
		n = recv(fd, c.rep + got, REPLY_MAX - 1 - got, 0);
		if (n <= 0 || got + (size_t)n >= REPLY_MAX - 1)
			return -1;
		got += (size_t)n;
	}
	return strncmp(c.rep, "action=", 7) == 0 ? 0 : -1;
}

/* connect a blocking socket to the target; -1 on failure */
static int
connect_blocking(void)
{
	int fd = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&opt.addr, opt.addrlen) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* --idle: hold N connections each after one request, report server RSS */
static int
run_idle(void)
{
	int *fds;
	long i, ok = 0;
	long rss0 = -1, rss1 = -1;
	uint64_t ticks;
	double t0;

	raise_nofile(opt.idle);
	if ((fds = calloc((size_t)opt.idle, sizeof(int))) == NULL)
		die("out of memory");
	if (opt.npids)
		procs_sample(&ticks, &rss0);
	t0 = now();
	for (i = 0; i < opt.idle; i++) {
		fds[i] = connect_blocking();
		if (fds[i] < 0) {
			fprintf(stderr, "policyd-bench: connection %ld: %s\n",
			    i + 1, strerror(errno));
			break;
		}
		if (one_request(fds[i], (uint64_t)i, opt.timeout_ms) == 0)
			ok++;
		if (now() - t0 > opt.seconds) {
			fprintf(stderr, "policyd-bench: time bound reached after "
			    "%ld connections\n", i + 1);
			i++;
			break;
		}
	}
	/* let the server settle with all connections idle, then measure */
	usleep((useconds_t)(opt.hold * 1e6));
	if (opt.npids)
		procs_sample(&ticks, &rss1);
	/* the connections are still usable: check a sample of them */
	{
		long alive = 0, step = i > 100 ? i / 100 : 1, j, tried = 0;

		for (j = 0; j < i; j += step, tried++)
			if (one_request(fds[j], (uint64_t)(opt.idle + j),
			    opt.timeout_ms) == 0)
				alive++;
		if (opt.json)
			printf("{\"target\":\"%s\",\"idle_connections\":%ld,"
			    "\"answered\":%ld,\"sample_alive\":%ld,"
			    "\"sample_tried\":%ld,\"server_rss_kb_before\":%ld,"
			    "\"server_rss_kb_held\":%ld}\n", opt.target, i, ok,
			    alive, tried, rss0, rss1);
		else
			printf("idle         %ld connections held (%ld answered "
			    "their first request; after %.1f s %ld of %ld sampled "
			    "still answer)\nserver rss   %ld kB before, %ld kB "
			    "with the connections held\n", i, ok, opt.hold, alive,
			    tried, rss0, rss1);
		for (j = 0; j < i; j++)
			close(fds[j]);
		free(fds);
		return (i == opt.idle && ok == i && alive == tried) ? 0 : 1;
	}
}

/* --ready: start a command and time until the target answers a request */
static int
run_ready(char **argv)
{
	pid_t pid;
	double t0, limit = opt.seconds;
	int status;

	t0 = now();
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "policyd-bench: %s: %s\n", argv[0],
		    strerror(errno));
		_exit(127);
	}
	for (;;) {
		int fd = connect_blocking();

		if (fd >= 0) {
			int r = one_request(fd, 0, opt.timeout_ms);

			close(fd);
			if (r == 0)
				break;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "policyd-bench: %s exited before it served\n",
			    argv[0]);
			return 1;
		}
		if (now() - t0 > limit) {
			fprintf(stderr, "policyd-bench: not ready after %.1f s; "
			    "pid %d left running\n", limit, (int)pid);
			printf("pid=%d ready_ms=-1\n", (int)pid);
			return 1;
		}
		usleep(500);
	}
	if (opt.json)
		printf("{\"pid\":%d,\"ready_ms\":%.2f}\n", (int)pid,
		    (now() - t0) * 1e3);
	else
		printf("pid=%d ready_ms=%.2f\n", (int)pid, (now() - t0) * 1e3);
	return 0;
}

/* print usage and exit */
static void
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: policyd-bench -t TARGET [-c CONNS] [-n REQUESTS] [-d SECONDS]\n"
	    "         [-m unique|pool[:N]|retry[:N]] [-6 PERCENT] [-a full|minimal]\n"
	    "         [-T THREADS] [-s SEED] [-p PID]... [-w TIMEOUT_MS] [-r RATE]\n"
	    "         [--domains unique|N] [--clients unique|doc] [--rcpt-domains N]\n"
	    "         [-M USERS[:RECIPIENTS]] [--no-sasl] [--show] [--warmup SECONDS]\n"
	    "         [--exim] [--json]\n"
	    "       policyd-bench -t TARGET --idle N [--hold SECONDS] [-p PID]\n"
	    "       policyd-bench -t TARGET --ready [-d SECONDS] -- COMMAND [ARG]...\n"
	    "TARGET: HOST:PORT, [IPV6]:PORT, inet:HOST:PORT, unix:PATH or /PATH\n");
	exit(code);
}

/* parse a positive number option or die */
static double
num(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || v < 0)
		die("bad %s: %s", what, s);
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "exim", no_argument, NULL, 'E' },
		{ "json", no_argument, NULL, 'J' },
		{ "idle", required_argument, NULL, 'I' },
		{ "hold", required_argument, NULL, 'H' },
		{ "ready", no_argument, NULL, 'R' },
		{ "rate", required_argument, NULL, 'r' },
		{ "domains", required_argument, NULL, 'O' },
		{ "rcpt-domains", required_argument, NULL, 'D' },
		{ "clients", required_argument, NULL, 'C' },
		{ "messages", required_argument, NULL, 'M' },
		{ "no-sasl", no_argument, NULL, 'N' },
		{ "show", no_argument, NULL, 'S' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct worker *w;
	struct stats total;
	int ch, i, ready = 0, have_srv = 0, seeded = 0;
	double cpu0, elapsed, wall, srv_cpu = 0, busy = 0;
	uint64_t tk0 = 0, tk1 = 0, mb0, mt0, mb1, mt1;
	long rss0 = -1, rss1 = -1;

	while ((ch = getopt_long(argc, argv, "+t:c:n:d:m:6:a:T:s:p:w:r:M:qh", lo,
	    NULL)) != -1) {
		switch (ch) {
		case 't': parse_target(optarg); break;
		case 'c': opt.conns = (int)num(optarg, "connections"); break;
		case 'n': opt.nreq = (uint64_t)num(optarg, "request count"); break;
		case 'd': opt.seconds = num(optarg, "duration"); break;
		case 'T': opt.threads = (int)num(optarg, "threads"); break;
		case 'w': opt.timeout_ms = (int)num(optarg, "timeout"); break;
		case 'r': opt.rate = num(optarg, "rate"); break;
		case 'q': opt.quiet = 1; break;
		case 'E': opt.exim = 1; break;
		case 'J': opt.json = 1; break;
		case 'R': ready = 1; break;
		case 'I': opt.idle = (long)num(optarg, "idle count"); break;
		case 'H': opt.hold = num(optarg, "hold time"); break;
		case 's':
			opt.seed = strtoull(optarg, NULL, 0);
			seeded = 1;
			break;
		case '6':
			opt.v6pct = (unsigned)num(optarg, "IPv6 percentage");
			if (opt.v6pct > 100)
				die("IPv6 percentage over 100");
			break;
		case 'a':
			if (strcmp(optarg, "full") == 0)
				opt.full = 1;
			else if (strcmp(optarg, "minimal") == 0)
				opt.full = 0;
			else
				die("-a wants full or minimal");
			break;
		case 'm': {
			const char *colon = strchr(optarg, ':');
			size_t l = colon ? (size_t)(colon - optarg) : strlen(optarg);

			if (l == 6 && strncmp(optarg, "unique", 6) == 0)
				opt.mix = MIX_UNIQUE;
			else if (l == 4 && strncmp(optarg, "pool", 4) == 0)
				opt.mix = MIX_POOL;
			else if (l == 5 && strncmp(optarg, "retry", 5) == 0) {
				opt.mix = MIX_RETRY;
				if (!colon)
					opt.pool = 1000;
			} else
				die("-m wants unique, pool[:N] or retry[:N]");
			if (colon)
				opt.pool = (uint64_t)num(colon + 1, "pool size");
			if (opt.pool == 0)
				die("pool size must be positive");
			break;
		}
		case 'p':
			if (opt.npids == MAX_PIDS)
				die("too many -p");
			opt.pids[opt.npids] = (pid_t)num(optarg, "pid");
			if (opt.pids[opt.npids] <= 0)
				die("bad pid %s", optarg);
			opt.npids++;
			break;
		case 'O':
			if (strcmp(optarg, "unique") == 0)
				opt.domains = 0;
			else if ((opt.domains = (uint64_t)num(optarg,
			    "domain count")) == 0)
				die("--domains wants unique or a positive count");
			break;
		case 'D':
			if ((opt.rdomains = (uint64_t)num(optarg, "recipient domain count")) == 0)
				die("--rcpt-domains wants a positive count");
			break;
		case 'C':
			if (strcmp(optarg, "unique") == 0)
				opt.clients_unique = 1;
			else if (strcmp(optarg, "doc") == 0)
				opt.clients_unique = 0;
			else
				die("--clients wants unique or doc");
			break;
		case 'M': {
			char *colon = strchr(optarg, ':');

			if (colon)
				*colon = 0;
			opt.users = (uint64_t)num(optarg, "user count");
			if (colon)
				opt.rcpts = (unsigned)num(colon + 1,
				    "recipients per message");
			if (opt.users == 0 || opt.rcpts == 0)
				die("-M wants USERS[:RECIPIENTS], both positive");
			break;
		}
		case 'N': opt.sasl = 0; break;
		case 'S': opt.show = 1; break;
		case 'W': opt.warmup = num(optarg, "warm-up time"); break;
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (opt.target[0] == 0)
		usage(2);
	if (!seeded)
		opt.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	signal(SIGPIPE, SIG_IGN);
	if (ready) {
		if (optind >= argc)
			die("--ready wants a command after --");
		return run_ready(argv + optind);
	}
	if (optind != argc)
		usage(2);
	if (opt.idle > 0)
		return run_idle();
	if (opt.conns < 1 || opt.threads < 1)
		die("connections and threads must be at least 1");
	if (opt.threads > opt.conns)
		opt.threads = opt.conns;
	if (opt.seconds <= 0 && opt.nreq == 0)
		die("give a request count (-n) or a duration (-d)");
	raise_nofile(opt.conns);

	if ((w = calloc((size_t)opt.threads, sizeof(*w))) == NULL)
		die("out of memory");
	for (i = 0; i < opt.threads; i++) {
		w[i].id = i;
		w[i].nconns = opt.conns / opt.threads +
		    (i < opt.conns % opt.threads);
		w[i].c = calloc((size_t)w[i].nconns, sizeof(struct conn));
		w[i].wq = calloc((size_t)w[i].nconns, sizeof(struct conn *));
		w[i].ep = epoll_create1(EPOLL_CLOEXEC);
		if (w[i].c == NULL || w[i].wq == NULL || w[i].ep < 0)
			die("out of memory or epoll: %s", strerror(errno));
	}
	if (opt.npids && procs_sample(&tk0, &rss0) < 0)
		die("cannot read /proc for the given pid(s)");
	if (machine_ticks(&mb0, &mt0) < 0)
		mb0 = mt0 = 0;
	cpu0 = self_cpu();
	t_start = now();
	t_measure = t_start + opt.warmup;
	t_deadline = opt.seconds > 0 ? t_measure + opt.seconds : 1e300;
	for (i = 0; i < opt.threads; i++)
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0)
			die("pthread_create failed");
	if (opt.warmup > 0) {
		/* the CPU and memory figures start with the counting, too */
		double d;

		while ((d = t_measure - now()) > 0)
			usleep((useconds_t)(d * 1e6) + 1);
		if (opt.npids && procs_sample(&tk0, &rss0) < 0)
			die("the server is gone after the warm-up");
		if (machine_ticks(&mb0, &mt0) < 0)
			mb0 = mt0 = 0;
		cpu0 = self_cpu();
	}
	for (i = 0; i < opt.threads; i++)
		pthread_join(w[i].th, NULL);
	wall = now() - t_measure;
	if (machine_ticks(&mb1, &mt1) == 0 && wall > 0)
		busy = (double)(mb1 - mb0) / (double)sysconf(_SC_CLK_TCK) / wall;
	elapsed = wall;
	if (opt.npids && procs_sample(&tk1, &rss1) == 0) {
		have_srv = 1;
		srv_cpu = (double)(tk1 - tk0) / (double)sysconf(_SC_CLK_TCK);
	}
	memset(&total, 0, sizeof(total));
	for (i = 0; i < opt.threads; i++)
		stats_merge(&total, &w[i].st);
	/* the rate counts up to the last reply, unless the clock stopped us */
	if (total.unfinished == 0 && total.last_done > t_measure)
		elapsed = total.last_done - t_measure;
	report(&total, elapsed, self_cpu() - cpu0, have_srv, srv_cpu, rss0, rss1,
	    busy);
	for (i = 0; i < opt.threads; i++) {
		close(w[i].ep);
		free(w[i].c);
		free(w[i].wq);
	}
	free(w);
	if (total.done == 0)
		return 1;
	return total.errors ? 1 : 0;
}
