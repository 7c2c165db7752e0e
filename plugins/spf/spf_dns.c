/* spf_dns.c - a small stub resolver with hard deadlines and a bounded TTL cache */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "spf_int.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spf2/spf_dns_rr.h>

#define MAX_NS       3
#define MAX_PKT      65535
#define UDP_BUF      4096
#define FIRST_TRY_MS 800

/* One cached answer. */
struct centry {
	struct centry *hnext;         /* hash chain */
	struct centry *older, *newer; /* insertion order, for eviction */
	unsigned hash;
	ns_type type;
	time_t expires;
	SPF_dns_rr_t *rr;
	char name[];
};

struct pd_spf_resolver {
	struct sockaddr_storage ns[MAX_NS];
	socklen_t nslen[MAX_NS];
	int nns;
	time_t (*now)(void);
	unsigned max_ttl;
	size_t cache_max, cache_n, nbuckets;
	struct centry **buckets;
	struct centry *oldest, *newest;
	pthread_mutex_t lock;
	struct pd_spf_dns_stats st;
};

/* pd_spf_ms_left - milliseconds until DEADLINE, never negative */
long pd_spf_ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long)(deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? ms : 0;
}

/* add_ns - parse one nameserver address (IPv4 or IPv6) on port 53 */
static void add_ns(pd_spf_resolver *r, const char *addr)
{
	struct sockaddr_in *s4;
	struct sockaddr_in6 *s6;

	if (r->nns >= MAX_NS)
		return;
	s4 = (struct sockaddr_in *)&r->ns[r->nns];
	s6 = (struct sockaddr_in6 *)&r->ns[r->nns];
	memset(&r->ns[r->nns], 0, sizeof(r->ns[0]));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(53);
		r->nslen[r->nns++] = sizeof(*s4);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(53);
		r->nslen[r->nns++] = sizeof(*s6);
	}
}

/* read_resolv_conf - take the nameserver lines of PATH; default to loopback */
static void read_resolv_conf(pd_spf_resolver *r, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char kw[16], addr[64];

			if (sscanf(line, "%15s %63s", kw, addr) == 2 && strcmp(kw, "nameserver") == 0) {
				char *pct = strchr(addr, '%');

				if (pct)
					*pct = 0; /* no scoped addresses */
				add_ns(r, addr);
			}
		}
		fclose(f);
	}
	if (r->nns == 0)
		add_ns(r, "127.0.0.1");
}

/* pd_spf_resolver_new - make a resolver with a cache of CACHE_SIZE answers */
pd_spf_resolver *pd_spf_resolver_new(const char *resolv_conf, size_t cache_size, unsigned max_ttl, time_t (*now)(void),
                                     char *errbuf, size_t errlen)
{
	pd_spf_resolver *r = calloc(1, sizeof(*r));

	if (!r) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	read_resolv_conf(r, resolv_conf ? resolv_conf : "/etc/resolv.conf");
	r->now = now;
	r->max_ttl = max_ttl;
	r->cache_max = cache_size;
	r->nbuckets = 64;
	while (r->nbuckets < cache_size / 2 && r->nbuckets < (1u << 20))
		r->nbuckets <<= 1;
	r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
	if (!r->buckets) {
		free(r);
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

/* unlink_entry - remove E from the order list and its chain; caller holds lock */
static void unlink_entry(pd_spf_resolver *r, struct centry *e)
{
	struct centry **pp = &r->buckets[e->hash & (r->nbuckets - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	if (e->older)
		e->older->newer = e->newer;
	else
		r->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		r->newest = e->older;
	r->cache_n--;
	SPF_dns_rr_free(e->rr);
	free(e);
}

/* pd_spf_resolver_free - free the resolver and its cache */
void pd_spf_resolver_free(pd_spf_resolver *r)
{
	if (!r)
		return;
	while (r->oldest)
		unlink_entry(r, r->oldest);
	free(r->buckets);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* pd_spf_resolver_now - the resolver's clock */
time_t pd_spf_resolver_now(pd_spf_resolver *r)
{
	return r->now();
}

/* pd_spf_resolver_stats - copy the counters */
void pd_spf_resolver_stats(pd_spf_resolver *r, struct pd_spf_dns_stats *st)
{
	pthread_mutex_lock(&r->lock);
	*st = r->st;
	pthread_mutex_unlock(&r->lock);
}

/* name_hash - case-insensitive FNV-1a of NAME and TYPE */
static unsigned name_hash(const char *name, ns_type type)
{
	unsigned h = 2166136261u ^ (unsigned)type;

	for (; *name; name++)
		h = (h ^ (unsigned char)tolower((unsigned char)*name)) * 16777619u;
	return h;
}

/* cache_get - a copy of the live cached answer for NAME/TYPE (its expiry in
 * *EXPIRES), or NULL */
static SPF_dns_rr_t *cache_get(pd_spf_resolver *r, const char *name, ns_type type, time_t *expires)
{
	unsigned h;
	struct centry *e;
	SPF_dns_rr_t *copy = NULL;

	if (r->cache_max == 0)
		return NULL;
	h = name_hash(name, type);
	pthread_mutex_lock(&r->lock);
	for (e = r->buckets[h & (r->nbuckets - 1)]; e; e = e->hnext)
		if (e->hash == h && e->type == type && strcasecmp(e->name, name) == 0)
			break;
	if (e && e->expires <= r->now()) {
		unlink_entry(r, e);
		e = NULL;
	}
	if (e && SPF_dns_rr_dup(&copy, e->rr) != SPF_E_SUCCESS) {
		if (copy)
			SPF_dns_rr_free(copy);
		copy = NULL;
	}
	if (copy) {
		r->st.cache_hits++;
		*expires = e->expires;
	}
	pthread_mutex_unlock(&r->lock);
	return copy;
}

/* cache_put - remember a copy of RR for TTL seconds, evicting the oldest when full */
static void cache_put(pd_spf_resolver *r, const char *name, ns_type type, const SPF_dns_rr_t *rr, unsigned ttl)
{
	size_t len = strlen(name);
	struct centry *e, *old;
	unsigned h;

	if (r->cache_max == 0 || ttl == 0)
		return;
	if (ttl > r->max_ttl)
		ttl = r->max_ttl;
	e = calloc(1, sizeof(*e) + len + 1);
	if (!e)
		return;
	if (SPF_dns_rr_dup(&e->rr, (SPF_dns_rr_t *)rr) != SPF_E_SUCCESS) {
		if (e->rr)
			SPF_dns_rr_free(e->rr);
		free(e);
		return;
	}
	memcpy(e->name, name, len + 1);
	e->type = type;
	h = e->hash = name_hash(name, type);
	pthread_mutex_lock(&r->lock);
	e->expires = r->now() + (time_t)ttl;
	for (old = r->buckets[h & (r->nbuckets - 1)]; old; old = old->hnext)
		if (old->hash == h && old->type == type && strcasecmp(old->name, name) == 0)
			break;
	if (old)
		unlink_entry(r, old);
	while (r->cache_n >= r->cache_max && r->oldest)
		unlink_entry(r, r->oldest);
	e->hnext = r->buckets[h & (r->nbuckets - 1)];
	r->buckets[h & (r->nbuckets - 1)] = e;
	e->older = r->newest;
	if (r->newest)
		r->newest->newer = e;
	else
		r->oldest = e;
	r->newest = e;
	r->cache_n++;
	pthread_mutex_unlock(&r->lock);
}

/* rand16 - an unpredictable query id */
static unsigned rand16(void)
{
	unsigned short v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = (unsigned short)(ts.tv_nsec ^ (long)pthread_self());
	}
	return v;
}

/* make_query - encode a recursive query with EDNS0 into BUF; length or -1 */
static int make_query(unsigned char *buf, size_t len, const char *name, ns_type type, unsigned id)
{
	unsigned char *p = buf + 12;
	const char *s = name;

	if (len < 512)
		return -1;
	memset(buf, 0, 12);
	buf[0] = (unsigned char)(id >> 8);
	buf[1] = (unsigned char)id;
	buf[2] = 0x01; /* RD */
	buf[5] = 1;    /* QDCOUNT */
	buf[11] = 1;   /* ARCOUNT: OPT */
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);

		if (l == 0 || l > 63 || (size_t)(p - buf) + l + 2 > 12 + 255)
			return -1;
		*p++ = (unsigned char)l;
		memcpy(p, s, l);
		p += l;
		s += l;
		if (*s == '.')
			s++;
	}
	*p++ = 0;
	*p++ = (unsigned char)(type >> 8);
	*p++ = (unsigned char)type;
	*p++ = 0;
	*p++ = 1; /* IN */
	/* OPT: root name, type 41, payload size, no flags */
	*p++ = 0;
	*p++ = 0;
	*p++ = 41;
	*p++ = (unsigned char)(UDP_BUF >> 8);
	*p++ = (unsigned char)(UDP_BUF & 0xff);
	memset(p, 0, 6);
	p += 6;
	return (int)(p - buf);
}

/* wait_fd - poll FD for EVENTS at most MS milliseconds; 1 ready, 0 timeout, -1 error */
static int wait_fd(int fd, short events, long ms)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int n;

	if (ms > 0x7fffffffL)
		ms = 0x7fffffffL;
	do
		n = poll(&pfd, 1, (int)ms);
	while (n < 0 && errno == EINTR);
	return n;
}

/* reply_matches - does the answer in BUF (LEN) answer query Q (QLEN, id ID)? */
static int reply_matches(const unsigned char *buf, int len, const unsigned char *q, int qlen)
{
	int qd = qlen - 12 - 11; /* question section: after the header, before our OPT */

	if (len < 12 + qd || buf[0] != q[0] || buf[1] != q[1] || !(buf[2] & 0x80) || buf[4] != 0 || buf[5] != 1)
		return 0;
	/* same name (ASCII case-insensitive, RFC 4343), type and class */
	for (int i = 0; i < qd; i++) {
		int a = buf[12 + i], b = q[12 + i];

		if (a != b && tolower(a) != tolower(b))
			return 0;
	}
	return 1;
}

/* query_udp - one UDP exchange with server NS; answer length, 0 timeout, -1 error */
static int query_udp(pd_spf_resolver *r, int ns, const unsigned char *q, int qlen, unsigned char *ans, long ms,
                     const struct timespec *deadline)
{
	int fd = socket(r->ns[ns].ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct timespec until;
	int n = -1;

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&r->ns[ns], r->nslen[ns]) < 0 || send(fd, q, (size_t)qlen, 0) != qlen)
		goto out;
	pthread_mutex_lock(&r->lock);
	r->st.queries++;
	pthread_mutex_unlock(&r->lock);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	if (until.tv_sec > deadline->tv_sec || (until.tv_sec == deadline->tv_sec && until.tv_nsec > deadline->tv_nsec))
		until = *deadline;
	for (;;) {
		long left = pd_spf_ms_left(&until);
		ssize_t got;

		if (left <= 0 || wait_fd(fd, POLLIN, left) <= 0) {
			n = 0;
			break;
		}
		got = recv(fd, ans, UDP_BUF, 0);
		if (got < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break; /* ECONNREFUSED: this server is dead */
		}
		if (reply_matches(ans, (int)got, q, qlen)) {
			n = (int)got;
			break;
		}
	}
out:
	close(fd);
	return n;
}

/* io_all - send or receive exactly LEN bytes before DEADLINE; 0 or -1 */
static int io_all(int fd, unsigned char *buf, size_t len, int sending, const struct timespec *deadline)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;

		if (wait_fd(fd, sending ? POLLOUT : POLLIN, pd_spf_ms_left(deadline)) <= 0)
			return -1;
		n = sending ? send(fd, buf + done, len - done, MSG_NOSIGNAL) : recv(fd, buf + done, len - done, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* query_tcp - the same query over TCP (after a truncated reply); length or -1 */
static int query_tcp(pd_spf_resolver *r, int ns, const unsigned char *q, int qlen, unsigned char *ans,
                     const struct timespec *deadline)
{
	int fd = socket(r->ns[ns].ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	unsigned char hdr[2];
	unsigned char *qq = NULL;
	int n = -1, len;

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&r->ns[ns], r->nslen[ns]) < 0 && errno != EINPROGRESS)
		goto out;
	qq = malloc((size_t)qlen + 2);
	if (!qq)
		goto out;
	qq[0] = (unsigned char)(qlen >> 8);
	qq[1] = (unsigned char)qlen;
	memcpy(qq + 2, q, (size_t)qlen);
	if (io_all(fd, qq, (size_t)qlen + 2, 1, deadline) < 0 || io_all(fd, hdr, 2, 0, deadline) < 0)
		goto out;
	len = (hdr[0] << 8) | hdr[1];
	if (io_all(fd, ans, (size_t)len, 0, deadline) < 0)
		goto out;
	if (reply_matches(ans, len, q, qlen))
		n = len;
out:
	free(qq);
	close(fd);
	return n;
}

/* soa_ttl - negative-caching TTL from the SOA in the authority section, 0 if none */
static unsigned soa_ttl(ns_msg *msg)
{
	ns_rr rr;

	for (int i = 0; i < ns_msg_count(*msg, ns_s_ns); i++) {
		if (ns_parserr(msg, ns_s_ns, i, &rr) < 0)
			break;
		if (ns_rr_type(rr) == ns_t_soa && ns_rr_rdlen(rr) >= 20) {
			const unsigned char *min = ns_rr_rdata(rr) + ns_rr_rdlen(rr) - 4;
			unsigned m =
			    ((unsigned)min[0] << 24) | ((unsigned)min[1] << 16) | ((unsigned)min[2] << 8) | min[3];

			return m < ns_rr_ttl(rr) ? m : ns_rr_ttl(rr);
		}
	}
	return 0;
}

/* txt_join - concatenate the character-strings of a TXT rdata into OUT */
static int txt_join(const unsigned char *rd, size_t rdlen, char *out, size_t outlen)
{
	size_t o = 0, i = 0;

	while (i < rdlen) {
		size_t l = rd[i++];

		if (i + l > rdlen || o + l >= outlen)
			return -1;
		/* a NUL would end the string early: make it an (invalid) control char */
		for (size_t k = 0; k < l; k++)
			out[o + k] = rd[i + k] ? (char)rd[i + k] : '\x01';
		o += l;
		i += l;
	}
	out[o] = 0;
	return (int)o;
}

/* parse_answer - turn a reply into an SPF_dns_rr_t; *TTL gets its cache lifetime */
static SPF_dns_rr_t *parse_answer(SPF_dns_server_t *layer, const unsigned char *buf, int len, const char *name,
                                  ns_type type, unsigned *ttl)
{
	ns_msg msg;
	ns_rr rr;
	SPF_dns_rr_t *out;
	int rcode, n = 0;
	unsigned minttl = ~0u;
	char text[MAX_PKT > 8192 ? 8192 : MAX_PKT];

	*ttl = 0;
	if (ns_initparse(buf, len, &msg) < 0)
		return SPF_dns_rr_new_init(layer, name, type, 0, TRY_AGAIN);
	rcode = ns_msg_getflag(msg, ns_f_rcode);
	if (rcode == ns_r_nxdomain) {
		*ttl = soa_ttl(&msg);
		return SPF_dns_rr_new_init(layer, name, type, (int)*ttl, HOST_NOT_FOUND);
	}
	if (rcode != ns_r_noerror)
		return SPF_dns_rr_new_init(layer, name, type, 0, TRY_AGAIN);
	out = SPF_dns_rr_new_init(layer, name, type, 0, NETDB_SUCCESS);
	if (!out)
		return NULL;
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		const unsigned char *rd;
		size_t need;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			break;
		if (ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in)
			continue;
		rd = ns_rr_rdata(rr);
		switch (type) {
		case ns_t_a:
			if (ns_rr_rdlen(rr) != 4)
				continue;
			need = sizeof(struct in_addr);
			break;
		case ns_t_aaaa:
			if (ns_rr_rdlen(rr) != 16)
				continue;
			need = sizeof(struct in6_addr);
			break;
		case ns_t_txt:
		case ns_t_spf:
			if (txt_join(rd, ns_rr_rdlen(rr), text, sizeof(text)) < 0)
				continue;
			need = strlen(text) + 1;
			break;
		case ns_t_mx:
			if (ns_rr_rdlen(rr) < 3 ||
			    ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), rd + 2, text, sizeof(text)) < 0)
				continue;
			need = strlen(text) + 1;
			break;
		case ns_t_ptr:
			if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), rd, text, sizeof(text)) < 0)
				continue;
			need = strlen(text) + 1;
			break;
		default:
			continue;
		}
		if (SPF_dns_rr_buf_realloc(out, n, need) != SPF_E_SUCCESS) {
			SPF_dns_rr_free(out);
			return NULL;
		}
		if (type == ns_t_a)
			memcpy(&out->rr[n]->a, rd, 4);
		else if (type == ns_t_aaaa)
			memcpy(&out->rr[n]->aaaa, rd, 16);
		else
			memcpy(out->rr[n]->txt, text, need);
		n++;
		if (ns_rr_ttl(rr) < minttl)
			minttl = ns_rr_ttl(rr);
	}
	out->num_rr = n;
	if (n == 0) {
		out->herrno = NO_DATA;
		*ttl = soa_ttl(&msg);
	} else {
		*ttl = minttl;
	}
	out->ttl = (time_t)*ttl;
	return out;
}

/* valid_name - may NAME (without trailing dot) be sent as a query? */
static int valid_name(const char *name)
{
	size_t len = strlen(name), lab = 0;

	if (len == 0 || len > 253)
		return 0;
	for (const char *p = name; *p; p++) {
		if (*p == '.') {
			if (lab == 0)
				return 0;
			lab = 0;
		} else if (++lab > 63) {
			return 0;
		}
	}
	return lab > 0;
}

__thread int pd_spf_cache_only;
__thread int pd_spf_missed;
__thread time_t pd_spf_valid_until;

/* valid_until - an answer used by this thread's check stays true until T */
static void valid_until(time_t t)
{
	if (t < pd_spf_valid_until)
		pd_spf_valid_until = t;
}

/* pd_spf_resolve - look NAME/TYPE up through the cache and the nameservers */
SPF_dns_rr_t *pd_spf_resolve(pd_spf_resolver *r, SPF_dns_server_t *layer, const char *name, ns_type type,
                             const struct timespec *deadline)
{
	char qname[256];
	size_t len = strlen(name);
	unsigned char q[512];
	unsigned char *ans;
	SPF_dns_rr_t *rr;
	int qlen;
	unsigned ttl;
	time_t expires = 0;
	long try_ms = FIRST_TRY_MS;
	int refused = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len >= sizeof(qname) || (memcpy(qname, name, len), qname[len] = 0, !valid_name(qname)))
		return SPF_dns_rr_new_init(layer, name, type, 0, HOST_NOT_FOUND);
	rr = cache_get(r, qname, type, &expires);
	if (rr) {
		valid_until(expires);
		return rr;
	}
	valid_until(0); /* an answer from the network or none: the check's result is not kept */
	if (pd_spf_cache_only) { /* not here: the caller retries where it may wait */
		pd_spf_missed = 1;
		return SPF_dns_rr_new_init(layer, name, type, 0, TRY_AGAIN);
	}
	ans = malloc(MAX_PKT);
	if (!ans)
		return NULL;
	for (int attempt = 0; pd_spf_ms_left(deadline) > 0; attempt++, try_ms *= 2) {
		int ns = attempt % r->nns;
		unsigned id = rand16();
		int n;

		qlen = make_query(q, sizeof(q), qname, type, id);
		if (qlen < 0)
			break;
		n = query_udp(r, ns, q, qlen, ans, try_ms, deadline);
		if (n > 0 && (ans[2] & 0x02)) /* TC */
			n = query_tcp(r, ns, q, qlen, ans, deadline);
		if (n < 0) {
			/* refused (nothing listens) or broken: give up once every server did */
			if (++refused >= r->nns)
				break;
			continue;
		}
		if (n <= 0)
			continue;
		rr = parse_answer(layer, ans, n, name, type, &ttl);
		if (rr && rr->herrno != TRY_AGAIN)
			cache_put(r, qname, type, rr, ttl);
		if (rr && rr->herrno == TRY_AGAIN && pd_spf_ms_left(deadline) > 0 && attempt + 1 < r->nns) {
			SPF_dns_rr_free(rr); /* SERVFAIL: ask the next server */
			continue;
		}
		free(ans);
		return rr;
	}
	free(ans);
	pthread_mutex_lock(&r->lock);
	r->st.timeouts++;
	pthread_mutex_unlock(&r->lock);
	return SPF_dns_rr_new_init(layer, name, type, 0, TRY_AGAIN);
}
