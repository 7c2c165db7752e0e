/* table-bench.c - lib/table at scale: load time, lookups per second, memory per entry (prints numbers, asserts nothing) */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Generates a cidr table file (IPv4 /32, /28, /24, /20 and IPv6 /128, /64,
 * /48) and address table files (user@domain, @domain, domain, user@; the
 * suffix one also .domain) of N entries each, loads them with
 * pd_table_load as cidr, exact and suffix tables, and prints the load time, lookups per second for
 * hits and for misses, and the memory per entry by the table's own
 * accounting (pd_table_memory) and by the growth of the resident set.
 * Usage: table-bench [-n ENTRIES] [-l LOOKUPS] [-t THREADS] [-d DIR] [-k]
 * (-k keeps the generated files, for profiling a load).
 * Built by make check, never run by it: timings belong in a report.
 */

#include "config.h"
#include "table.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KEYMAX 64 /* one generated lookup string */

static const char *const actions[] = {"REJECT 5.7.1 listed", "OK", "DUNNO", "score:+3.5", "DEFER_IF_PERMIT try later"};

/* rng - xorshift64*, deterministic */
static uint64_t rng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* now - monotonic seconds */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* rss - resident set size in bytes */
static size_t rss(void)
{
	unsigned long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%lu %lu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* v4_net - the I-th generated IPv4 network (a /32, /28, /24 or /20 in 1.0.0.0-223.255.255.255) */
static void v4_net(uint64_t *s, char *key, size_t cap, char *inside, size_t icap)
{
	static const int lens[] = {32, 32, 32, 32, 32, 24, 24, 24, 28, 20};
	int len = lens[rng(s) % 10];
	uint32_t a = (uint32_t)(1 + rng(s) % 223) << 24 | (uint32_t)(rng(s) & 0xffffff);
	uint32_t m = len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
	uint32_t h;

	a &= m;
	h = a | ((uint32_t)rng(s) & ~m);
	if (len == 32)
		snprintf(key, cap, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
	else
		snprintf(key, cap, "%u.%u.%u.%u/%d", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255, len);
	snprintf(inside, icap, "%u.%u.%u.%u", h >> 24, (h >> 16) & 255, (h >> 8) & 255, h & 255);
}

/* v6_net - a generated IPv6 network in 2001:db8::/32 (/128, /64 or /48) */
static void v6_net(uint64_t *s, char *key, size_t cap, char *inside, size_t icap)
{
	static const int lens[] = {128, 128, 64, 64, 48};
	int len = lens[rng(s) % 5];
	unsigned w[6];

	for (int i = 0; i < 6; i++)
		w[i] = (unsigned)(rng(s) & 0xffff);
	if (len == 48) {
		snprintf(key, cap, "2001:db8:%x::/48", w[0]);
		snprintf(inside, icap, "2001:db8:%x:%x:%x::%x", w[0], w[1], w[2], w[3]);
	} else if (len == 64) {
		snprintf(key, cap, "2001:db8:%x:%x::/64", w[0], w[1]);
		snprintf(inside, icap, "2001:db8:%x:%x:%x::%x", w[0], w[1], w[2], w[3]);
	} else {
		snprintf(key, cap, "2001:db8:%x:%x::%x:%x", w[0], w[1], w[4], w[5]);
		snprintf(inside, icap, "2001:db8:%x:%x::%x:%x", w[0], w[1], w[4], w[5]);
	}
}

/* gen_cidr - write N networks (70% IPv4) to PATH; HITS gets addresses inside some of them */
static void gen_cidr(const char *path, long n, char (*hits)[KEYMAX], long nl)
{
	FILE *f = fopen(path, "w");
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	char key[KEYMAX], in[KEYMAX];

	if (!f) {
		perror(path);
		exit(1);
	}
	for (long i = 0; i < n; i++) {
		if (i % 10 < 7)
			v4_net(&s, key, sizeof(key), in, sizeof(in));
		else
			v6_net(&s, key, sizeof(key), in, sizeof(in));
		fprintf(f, "%s %s\n", key, actions[i % 5]);
		if (i < nl)
			memcpy(hits[i], in, KEYMAX);
	}
	fclose(f);
}

/* gen_addr - write N address keys to PATH (90% user@domain, 5% @domain, 4% domain or, SUFFIX, half .domain, 1% user@) */
static void gen_addr(const char *path, long n, int suffix)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		exit(1);
	}
	for (long i = 0; i < n; i++) {
		if (i % 100 < 90)
			fprintf(f, "user%ld@d%ld.example.net %s\n", i, i % 50000, actions[i % 5]);
		else if (i % 100 < 95)
			fprintf(f, "@host%ld.example.org %s\n", i, actions[i % 5]);
		else if (i % 100 < 99)
			fprintf(f, "%ssub%ld.example.org %s\n", suffix && i % 2 ? "." : "", i, actions[i % 5]);
		else
			fprintf(f, "role%ld@ %s\n", i, actions[i % 5]);
	}
	fclose(f);
}

typedef struct job {
	const pd_table *t;
	char (*keys)[KEYMAX];
	long from, to, found;
} job;

/* run_job - look up keys [from, to) */
static void *run_job(void *arg)
{
	job *j = arg;

	for (long i = j->from; i < j->to; i++)
		j->found += pd_table_match(j->t, j->keys[i]) != NULL;
	return NULL;
}

/* lookups - look up NL keys with NT threads; prints and returns lookups per second */
static void lookups(const char *name, const char *what, const pd_table *t, char (*keys)[KEYMAX], long nl, int nt)
{
	pthread_t th[64];
	job jobs[64];
	long found = 0;
	double t0, dt;

	t0 = now();
	for (int i = 0; i < nt; i++) {
		jobs[i] = (job){t, keys, nl * i / nt, nl * (i + 1) / nt, 0};
		if (pthread_create(&th[i], NULL, run_job, &jobs[i]) != 0) {
			perror("pthread_create");
			exit(1);
		}
	}
	for (int i = 0; i < nt; i++) {
		pthread_join(th[i], NULL);
		found += jobs[i].found;
	}
	dt = now() - t0;
	printf("%-7s %-26s %8.2f M lookups/s  %6.0f ns each  (%ld of %ld found)\n", name, what, (double)nl / dt / 1e6,
	       dt / (double)nl * 1e9 * nt, found, nl);
}

/* load - load PATH as KIND; prints load time and memory */
static pd_table *load(const char *name, enum pd_table_kind kind, const char *path)
{
	pd_table *t = pd_table_new(kind);
	char err[512];
	size_t r0 = rss(), r1;
	double t0 = now(), dt;

	if (pd_table_load(t, path, 0, err, sizeof(err)) != 0) {
		fprintf(stderr, "table-bench: %s\n", err);
		exit(1);
	}
	dt = now() - t0;
	r1 = rss();
	printf("%-7s load %.3f s  %zu entries (%zu duplicate keys)  %.1f B/entry (pd_table_memory)  %.1f B/entry (RSS)\n",
	       name, dt, pd_table_size(t), pd_table_duplicates(t, NULL),
	       (double)pd_table_memory(t) / (double)pd_table_size(t), (double)(r1 - r0) / (double)pd_table_size(t));
	return t;
}

int main(int argc, char **argv)
{
	long n = 1000000, nl = 1000000;
	int nt = 1, keep = 0, opt;
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char dir[256], cidr_path[300], addr_path[300], suffix_path[300];
	char(*keys)[KEYMAX];
	pd_table *tc, *te, *ts;
	uint64_t s = 42;
	double t0;

	while ((opt = getopt(argc, argv, "n:l:t:d:k")) != -1) {
		switch (opt) {
		case 'n':
			n = atol(optarg);
			break;
		case 'l':
			nl = atol(optarg);
			break;
		case 't':
			nt = atoi(optarg);
			break;
		case 'd':
			base = optarg;
			break;
		case 'k':
			keep = 1;
			break;
		default:
			fprintf(stderr, "usage: table-bench [-n ENTRIES] [-l LOOKUPS] [-t THREADS] [-d DIR] [-k]\n");
			return 2;
		}
	}
	if (n < 1 || nl < 1 || nl > n || nt < 1 || nt > 64) {
		fprintf(stderr, "table-bench: need 1 <= LOOKUPS <= ENTRIES and 1..64 threads\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/table-bench.XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror(dir);
		return 1;
	}
	snprintf(cidr_path, sizeof(cidr_path), "%s/cidr", dir);
	snprintf(addr_path, sizeof(addr_path), "%s/addr", dir);
	snprintf(suffix_path, sizeof(suffix_path), "%s/suffix", dir);
	keys = calloc((size_t)nl, KEYMAX);
	if (!keys) {
		perror("calloc");
		return 1;
	}
	printf("table-bench: %ld entries per file, %ld lookups per run, %d thread(s)\n", n, nl, nt);
	t0 = now();
	gen_cidr(cidr_path, n, keys, nl);
	gen_addr(addr_path, n, 0);
	gen_addr(suffix_path, n, 1);
	printf("(files generated in %.2f s)\n", now() - t0);

	/* cidr: hits are addresses inside the first NL networks, misses 240/4 and 2001:db9::/32 */
	tc = load("cidr", PD_TABLE_CIDR, cidr_path);
	lookups("cidr", "hits (v4 70%, v6 30%)", tc, keys, nl, nt);
	for (long i = 0; i < nl; i++) {
		uint64_t r = rng(&s);

		if (i % 10 < 7)
			snprintf(keys[i], KEYMAX, "%u.%u.%u.%u", 240 + (unsigned)(r & 15), (unsigned)(r >> 8) & 255,
				 (unsigned)(r >> 16) & 255, (unsigned)(r >> 24) & 255);
		else
			snprintf(keys[i], KEYMAX, "2001:db9:%x::%x", (unsigned)(r & 0xffff), (unsigned)(r >> 16) & 0xffff);
	}
	lookups("cidr", "misses (v4 70%, v6 30%)", tc, keys, nl, nt);

	/* exact and suffix */
	te = load("exact", PD_TABLE_EXACT, addr_path);
	ts = load("suffix", PD_TABLE_SUFFIX, suffix_path);
	for (long i = 0; i < nl; i++) {
		long k = (long)(rng(&s) % (uint64_t)n);

		k -= k % 100; /* a user@domain key */
		snprintf(keys[i], KEYMAX, "User%ld@D%ld.Example.NET", k, k % 50000);
	}
	lookups("exact", "hits user@domain", te, keys, nl, nt);
	lookups("suffix", "hits user@domain", ts, keys, nl, nt);
	for (long i = 0; i < nl; i++) {
		long k = (long)(rng(&s) % (uint64_t)n);

		snprintf(keys[i], KEYMAX, "x%ld@mx.host%ld.example.org", k, k - k % 100 + 90);
	}
	lookups("exact", "misses (subdomain)", te, keys, nl, nt);
	lookups("suffix", "misses 4 labels", ts, keys, nl, nt);
	for (long i = 0; i < nl; i++) {
		long k = (long)(rng(&s) % (uint64_t)n);

		snprintf(keys[i], KEYMAX, "x%ld@a.b.sub%ld.example.org", k, k - k % 100 + 95 + k % 4);
	}
	lookups("suffix", "hits parent 2 levels up", ts, keys, nl, nt);
	for (long i = 0; i < nl; i++) {
		long k = (long)(rng(&s) % (uint64_t)n);

		snprintf(keys[i], KEYMAX, "nobody%ld@d%ld.example.com", k, k % 50000);
	}
	lookups("exact", "misses 3 labels", te, keys, nl, nt);
	lookups("suffix", "misses 3 labels", ts, keys, nl, nt);

	pd_table_free(tc);
	pd_table_free(te);
	pd_table_free(ts);
	free(keys);
	if (keep) {
		printf("files kept in %s\n", dir);
	} else {
		unlink(cidr_path);
		unlink(addr_path);
		unlink(suffix_path);
		rmdir(dir);
	}
	return 0;
}
