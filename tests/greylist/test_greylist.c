/* test_greylist.c - unit tests of the greylist plugin against the mock host and its clock */
/* SPDX-License-Identifier: BSD-2-Clause */
/* The plugin source is included so that its instance data can be looked at;
 * key.c, decide.c, legacy.c and whitelist.c are linked. The state service is
 * the mock host's: the core's store code on a private GDBM file, judged by
 * mock_clock. */
#include "../../plugins/greylist/greylist.c"

#include <policyd/mockhost.h>

#include <dirent.h>
#include <fcntl.h>
#include <gdbm.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int failures, checks;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		checks++;                                                             \
		if (!(cond)) {                                                        \
			failures++;                                                   \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                     \
	} while (0)

#define CHECK_STR(got, want)                                                             \
	do {                                                                             \
		const char *g_ = (got), *w_ = (want);                                    \
		checks++;                                                                \
		if (strcmp(g_, w_) != 0) {                                               \
			failures++;                                                      \
			fprintf(stderr, "FAIL %s:%d: got \"%s\", want \"%s\"\n", __FILE__, \
				__LINE__, g_, w_);                                       \
		}                                                                        \
	} while (0)

static char tmpdir[] = "/tmp/gltest.XXXXXX";
static char statedir[512];
static int dircount;

/* new_state_dir - a fresh empty state directory under the test's temp dir */
static const char *new_state_dir(void)
{
	snprintf(statedir, sizeof(statedir), "%s/s%d", tmpdir, ++dircount);
	if (mkdir(statedir, 0700) != 0)
		abort();
	return statedir;
}

/* rm_tree - remove DIR with its files and subdirectories (test temp dir only) */
static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[1024];

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

typedef struct tinst {
	pd_instance inst;
	cfg_t *cfg;
	pd_reply *reply;
	char dir[512];
} tinst;

/* start - parse TEXT as the section, init an instance in a new (or DIR) state dir; NULL if init fails */
static tinst *start(const char *text, const char *dir)
{
	tinst *t = calloc(1, sizeof(*t));
	char full[2048];

	snprintf(full, sizeof(full), "%s", text ? text : "");
	t->cfg = mock_section(gl_options, full);
	if (!t->cfg) {
		free(t);
		return NULL;
	}
	/* a new state dir is a fresh state: the mock host's store forgets everything */
	if (!dir)
		mock_store_reset();
	snprintf(t->dir, sizeof(t->dir), "%s", dir ? dir : new_state_dir());
	t->reply = mock_reply_new();
	if (mock_instance_init(&t->inst, &pd_plugin, "greylist", t->cfg, t->dir) != 0) {
		cfg_free(t->cfg);
		mock_reply_free(t->reply);
		free(t);
		return NULL;
	}
	return t;
}

/* stop - fini and free */
static void stop(tinst *t)
{
	mock_instance_fini(&t->inst, &pd_plugin);
	cfg_free(t->cfg);
	mock_reply_free(t->reply);
	free(t);
}

/* ask_full - run check() for one request; returns the reply text ("" = DUNNO), "ERROR" on error */
static const char *ask_full(tinst *t, const char *client, const char *sender, const char *rcpt,
			    const char *instance, const char *name, const char *rname)
{
	static char out[PD_REPLY_MAX + 1];
	pd_request *req = mock_request_new("request=smtpd_access_policy", "protocol_state=RCPT",
					   "protocol_name=ESMTP", "helo_name=mx.example.net", NULL);
	int r;

	mock_request_set(req, "client_address", client);
	mock_request_set(req, "client_name", name ? name : "unknown");
	mock_request_set(req, "reverse_client_name", rname ? rname : "unknown");
	mock_request_set(req, "sender", sender);
	mock_request_set(req, "recipient", rcpt);
	if (instance)
		mock_request_set(req, "instance", instance);
	mock_reply_clear(t->reply);
	r = mock_check(&pd_plugin, &t->inst, req, t->reply);
	mock_request_free(req);
	snprintf(out, sizeof(out), "%s", r == PD_CHECK_OK ? mock_reply_text(t->reply) : "ERROR");
	return out;
}

/* ask - a request from a client without names */
static const char *ask(tinst *t, const char *client, const char *sender, const char *rcpt,
		       const char *instance)
{
	return ask_full(t, client, sender, rcpt, instance, NULL, NULL);
}

/* deferred - does the reply defer? */
static int deferred(const char *r)
{
	return strncmp(r, "DEFER_IF_PERMIT ", 16) == 0;
}

/* probe: a check that reads one key of the instance's store, run through mock_check so that
 * the value is released as after any check */
static const char *probe_key;
static int probe_got;
static gl_rec probe_rec;

static int probe_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	pd_store_value v;

	(void)req;
	(void)reply;
	probe_got = inst->host->store_get(inst, probe_key, &v);
	if (probe_got == 1 && gl_rec_decode(v.data, v.len, &probe_rec) != 0)
		probe_got = -1;
	return PD_CHECK_OK;
}

static const pd_plugin_desc probe = {PD_PLUGIN_HEADER, .name = "probe", .flags = PD_PLUGIN_STATE,
				     .check = probe_check};

/* probe_get - KEY's record in T's namespace at mock_clock: 1 (REC filled), 0 none, -1 error */
static int probe_get(tinst *t, const char *key, gl_rec *rec)
{
	pd_request *req = mock_request_new("protocol_state=RCPT", NULL);

	probe_key = key;
	probe_got = -1;
	mock_check(&probe, &t->inst, req, t->reply);
	mock_request_free(req);
	if (rec && probe_got == 1)
		*rec = probe_rec;
	return probe_got;
}

/* stored - the store's record of triplet (CLIENT, SENDER, RCPT) of T at mock_clock: 1 (REC
 * filled if not NULL), 0 none (or expired), -1 error */
static int stored(tinst *t, const char *client, const char *sender, const char *rcpt, gl_rec *rec)
{
	gl_inst *g = t->inst.data;
	char net[80], s[GL_ADDR_MAX + 1], r[GL_ADDR_MAX + 1], key[GL_KEY_MAX + 1];

	if (gl_client_net(&g->kc, client, net, sizeof(net)) != 0)
		return -1;
	gl_norm_sender(&g->kc, sender, s, sizeof(s));
	gl_fold_addr(rcpt, r, sizeof(r));
	if (!gl_triplet_key(&g->kc, net, s, r, key, sizeof(key)))
		return -1;
	return probe_get(t, key, rec);
}

/* client_count - the auto-whitelist count of client address ADDR (its record), or -1 without one */
static long client_count(tinst *t, const char *addr)
{
	gl_inst *g = t->inst.data;
	char net[80], key[GL_KEY_MAX + 1];
	gl_rec c;

	if (gl_addr_net(addr, g->awl_prefix4, g->awl_prefix6, net, sizeof(net)) != 0 ||
	    !gl_client_key(&g->kc, net, key, sizeof(key)))
		return -2;
	if (probe_get(t, key, &c) != 1)
		return -1;
	return (long)c.count;
}

/* test_defaults - defaults as documented */
static void test_defaults(void)
{
	cfg_t *c = mock_section(gl_options, "");

	CHECK(c != NULL);
	if (!c)
		return;
	CHECK(cfg_getint(c, "delay") == 300);
	CHECK(cfg_getint(c, "retry_window") == 2 * 86400);
	CHECK(cfg_getint(c, "lifetime") == 35 * 86400);
	CHECK(cfg_getint(c, "ipv4_prefix") == 24 && cfg_getint(c, "ipv6_prefix") == 64);
	CHECK(cfg_getint(c, "auto_whitelist") == 5);
	CHECK_STR(cfg_getstr(c, "action"), "DEFER_IF_PERMIT");
	CHECK_STR(cfg_getstr(c, "database"), "greylist.db");
	CHECK(cfg_getint(c, "auto_whitelist_interval") == 3600);
	CHECK(cfg_getint(c, "auto_whitelist_ipv4_prefix") == 32);
	CHECK(cfg_getint(c, "auto_whitelist_ipv6_prefix") == 128);
	CHECK(pd_plugin.flags & PD_PLUGIN_SKIP_SASL);
	CHECK(pd_plugin.flags & PD_PLUGIN_STATE);
	CHECK_STR(pd_plugin.default_states, "RCPT");
	cfg_free(c);
}

static void test_basic(void)
{
	tinst *t = start("", NULL);
	char host[200], want[400];

	CHECK(t != NULL);
	if (!t)
		return;
	mock_clock = 1700000000;
	CHECK_STR(ask(t, "192.0.2.10", "alice@example.org", "bob@example.com", "A1"),
		  "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 300 seconds");
	mock_clock += 100;
	CHECK_STR(ask(t, "192.0.2.10", "alice@example.org", "bob@example.com", "A2"),
		  "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 200 seconds");
	mock_clock += 199;
	CHECK(deferred(ask(t, "192.0.2.10", "alice@example.org", "bob@example.com", "A3")));
	mock_clock += 1; /* exactly delay seconds after the first attempt */
	snprintf(host, sizeof(host), "%s", ((gl_inst *)t->inst.data)->hostname);
	snprintf(want, sizeof(want),
		 "PREPEND X-Greylist: delayed 300 seconds by policyd at %s; Tue, 14 Nov 2023 22:18:20 +0000",
		 host);
	CHECK_STR(ask(t, "192.0.2.10", "alice@example.org", "bob@example.com", "A4"), want);
	/* same message, same recipient asked again: no second header */
	CHECK_STR(ask(t, "192.0.2.10", "alice@example.org", "bob@example.com", "A4"), "");
	/* a later message of the same triplet passes without a header */
	mock_clock += 3600;
	CHECK_STR(ask(t, "192.0.2.10", "ALICE@Example.ORG", "Bob@Example.com", "A5"), "");
	/* another recipient is another triplet */
	CHECK(deferred(ask(t, "192.0.2.10", "alice@example.org", "carol@example.com", "A6")));
	/* another sender is another triplet */
	CHECK(deferred(ask(t, "192.0.2.10", "mallory@example.org", "bob@example.com", "A7")));
	stop(t);
}

/* test_header_once - X-Greylist once per message over several recipients; add_header = false */
static void test_header_once(void)
{
	tinst *t = start("", NULL);
	const char *r;

	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "198.51.100.7", "a@list.example", "r1@example.com", "M1")));
	CHECK(deferred(ask(t, "198.51.100.7", "a@list.example", "r2@example.com", "M1")));
	CHECK(deferred(ask(t, "198.51.100.7", "a@list.example", "r3@example.com", "M1")));
	mock_clock += 400;
	r = ask(t, "198.51.100.7", "a@list.example", "r1@example.com", "M2");
	CHECK(strncmp(r, "PREPEND X-Greylist: delayed 400 seconds by policyd at ", 54) == 0);
	CHECK_STR(ask(t, "198.51.100.7", "a@list.example", "r2@example.com", "M2"), "");
	CHECK_STR(ask(t, "198.51.100.7", "a@list.example", "r3@example.com", "M2"), "");
	stop(t);

	t = start("add_header = false\n", NULL);
	if (!t) {
		CHECK(0);
		return;
	}
	CHECK(deferred(ask(t, "198.51.100.7", "a@list.example", "r1@example.com", "N1")));
	mock_clock += 400;
	CHECK_STR(ask(t, "198.51.100.7", "a@list.example", "r1@example.com", "N2"), "");
	stop(t);
}

/* test_retry_window - an unconfirmed triplet is forgotten after retry_window */
static void test_retry_window(void)
{
	tinst *t = start("delay = 60\nretry_window = 1h\nlifetime = 2h\nauto_whitelist = 0\n", NULL);
	gl_rec rec;

	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "192.0.2.20", "s@example.org", "r@example.com", NULL)));
	CHECK(deferred(ask(t, "192.0.2.21", "s2@example.org", "r@example.com", NULL)));
	mock_clock += 3601; /* past the window: first attempt forgotten */
	CHECK_STR(ask(t, "192.0.2.20", "s@example.org", "r@example.com", NULL),
		  "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 60 seconds");
	/* the store has forgotten the other, stale triplet and keeps the fresh one */
	CHECK(stored(t, "192.0.2.21", "s2@example.org", "r@example.com", NULL) == 0);
	CHECK(stored(t, "192.0.2.20", "s@example.org", "r@example.com", &rec) == 1 &&
	      rec.type == GL_T_PENDING && rec.first_seen == mock_clock);
	mock_clock += 60;
	CHECK(strncmp(ask(t, "192.0.2.20", "s@example.org", "r@example.com", NULL),
		      "PREPEND X-Greylist: delayed 60 seconds by policyd at ", 53) == 0);
	stop(t);
}

/* test_lifetime - a confirmed triplet lives for lifetime since it was last seen */
static void test_lifetime(void)
{
	tinst *t = start("delay = 60\nretry_window = 1h\nlifetime = 1d\nauto_whitelist = 0\n"
			 "add_header = no\n", NULL);
	gl_rec rec;

	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "192.0.2.30", "s@example.org", "r@example.com", NULL)));
	mock_clock += 61;
	CHECK_STR(ask(t, "192.0.2.30", "s@example.org", "r@example.com", NULL), "");
	mock_clock += 86000; /* within the lifetime since last seen: passes, refreshes */
	CHECK_STR(ask(t, "192.0.2.30", "s@example.org", "r@example.com", NULL), "");
	mock_clock += 86000;
	CHECK_STR(ask(t, "192.0.2.30", "s@example.org", "r@example.com", NULL), "");
	CHECK(stored(t, "192.0.2.30", "s@example.org", "r@example.com", &rec) == 1 &&
	      rec.type == GL_T_PASSED && rec.last_seen == mock_clock);
	mock_clock += 86401; /* not seen for longer than the lifetime: the store forgot it */
	CHECK(stored(t, "192.0.2.30", "s@example.org", "r@example.com", NULL) == 0);
	CHECK(deferred(ask(t, "192.0.2.30", "s@example.org", "r@example.com", NULL)));
	stop(t);
}

/* test_auto_whitelist - a triplet's first pass counts one delivery of the client's address, at
 * most once per auto_whitelist_interval; after auto_whitelist counts the address passes */
static void test_auto_whitelist(void)
{
	tinst *t = start("delay = 60\nauto_whitelist = 2\nadd_header = false\n", NULL);
	char s[64];

	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "203.0.113.5", "a@example.org", "x@example.com", "I1")));
	CHECK(deferred(ask(t, "203.0.113.5", "a@example.org", "y@example.com", "I1")));
	CHECK(client_count(t, "203.0.113.5") == -1); /* nothing counted for a deferral */
	mock_clock += 61;
	CHECK_STR(ask(t, "203.0.113.5", "a@example.org", "x@example.com", "I2"), "");
	CHECK(client_count(t, "203.0.113.5") == 1);
	/* a second triplet passing within the interval (1 h) is not counted again */
	CHECK_STR(ask(t, "203.0.113.5", "a@example.org", "y@example.com", "I2"), "");
	CHECK(client_count(t, "203.0.113.5") == 1);
	CHECK(deferred(ask(t, "203.0.113.5", "new@example.org", "z@example.com", "I3")));
	/* an hour later: the next triplet's first pass counts: whitelisted */
	mock_clock += 3600;
	CHECK(deferred(ask(t, "203.0.113.5", "b@example.org", "x@example.com", "I4")));
	mock_clock += 61;
	CHECK_STR(ask(t, "203.0.113.5", "b@example.org", "x@example.com", "I5"), "");
	CHECK(client_count(t, "203.0.113.5") == 2);
	/* now this address passes, any sender, any recipient */
	CHECK_STR(ask(t, "203.0.113.5", "other@example.net", "w@example.com", "I6"), "");
	/* its /24 neighbours do not: the count is per address */
	CHECK(deferred(ask(t, "203.0.113.77", "other@example.net", "w@example.com", "I7")));
	/* a whitelisted address's record is refreshed once per interval */
	mock_clock += 3600;
	CHECK_STR(ask(t, "203.0.113.5", "x@example.net", "w@example.com", "I8"), "");
	CHECK(client_count(t, "203.0.113.5") == 3);
	CHECK_STR(ask(t, "203.0.113.5", "y@example.net", "w@example.com", "I9"), "");
	CHECK(client_count(t, "203.0.113.5") == 3);
	stop(t);

	/* a bot that retries at once and often, from many addresses of one /24: never whitelisted */
	t = start("delay = 60\nauto_whitelist = 5\nadd_header = false\n", NULL);
	if (!t) {
		CHECK(0);
		return;
	}
	for (int i = 0; i < 10; i++) {
		char client[32];

		snprintf(client, sizeof(client), "198.51.100.%d", 10 + i);
		snprintf(s, sizeof(s), "bot%d@spam.example", i);
		CHECK(deferred(ask(t, client, s, "v@example.com", NULL)));
		mock_clock += 61;
		CHECK_STR(ask(t, client, s, "v@example.com", NULL), "");
		CHECK_STR(ask(t, client, s, "v@example.com", NULL), "");
	}
	CHECK(deferred(ask(t, "198.51.100.10", "fresh@spam.example", "v@example.com", NULL)));
	stop(t);

	/* auto_whitelist_ipv4_prefix = 24 groups as the triplets do (postgrey's default) */
	t = start("delay = 60\nauto_whitelist = 2\nadd_header = false\nauto_whitelist_interval = 1\n"
		  "auto_whitelist_ipv4_prefix = 24\n", NULL);
	if (!t) {
		CHECK(0);
		return;
	}
	for (int i = 0; i < 2; i++) {
		char client[32];

		snprintf(client, sizeof(client), "198.18.0.%d", 10 + i);
		snprintf(s, sizeof(s), "a%d@example.org", i);
		CHECK(deferred(ask(t, client, s, "v@example.com", NULL)));
		mock_clock += 61;
		CHECK_STR(ask(t, client, s, "v@example.com", NULL), "");
	}
	CHECK_STR(ask(t, "198.18.0.200", "new@example.org", "v@example.com", NULL), "");
	stop(t);

	t = start("delay = 60\nauto_whitelist = 0\nadd_header = false\n", NULL);
	if (!t) {
		CHECK(0);
		return;
	}
	for (int i = 0; i < 6; i++) {
		snprintf(s, sizeof(s), "a%d@example.org", i);
		CHECK(deferred(ask(t, "203.0.113.5", s, "x@example.com", NULL)));
		mock_clock += 3700;
		CHECK_STR(ask(t, "203.0.113.5", s, "x@example.com", NULL), "");
	}
	CHECK(deferred(ask(t, "203.0.113.5", "new@example.org", "z@example.com", "J9")));
	CHECK(client_count(t, "203.0.113.5") == -1);
	stop(t);
}

/* write_file - create PATH with TEXT */
static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

/* test_whitelists - client and recipient whitelist files */
static void test_whitelists(void)
{
	char cpath[600], rpath[600], conf[1400];
	tinst *t;

	new_state_dir();
	snprintf(cpath, sizeof(cpath), "%s/clients", statedir);
	snprintf(rpath, sizeof(rpath), "%s/recipients", statedir);
	write_file(cpath, "# clients\n"
			  "192.0.2.1\n"
			  "198.51.100.0/24   # a network\n"
			  "2001:db8:42::/48\n"
			  "mail.example.net\n"
			  ".pool.example.org\n"
			  "/^mta[0-9]+\\.bigsender\\.example$/\n"
			  "\n");
	write_file(rpath, "postmaster@\n"
			  "abuse@example.com\n"
			  "@open.example\n"
			  "greylist-free.example\n"
			  ".sub.example\n"
			  "/^list-.*@example\\.com$/\n");
	snprintf(conf, sizeof(conf), "client_whitelist = {\"%s\"}\nrecipient_whitelist = {\"%s\"}\n",
		 cpath, rpath);
	t = start(conf, statedir);
	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock = 1700000000;
	/* clients */
	CHECK_STR(ask(t, "192.0.2.1", "s@x.example", "r@example.com", NULL), "");
	CHECK(deferred(ask(t, "192.0.2.2", "s@x.example", "r@example.com", NULL)));
	CHECK_STR(ask(t, "198.51.100.200", "s@x.example", "r@example.com", NULL), "");
	CHECK_STR(ask(t, "2001:db8:42:ffff::1", "s@x.example", "r@example.com", NULL), "");
	CHECK(deferred(ask(t, "2001:db8:43::1", "s@x.example", "r@example.com", NULL)));
	CHECK_STR(ask_full(t, "192.0.2.50", "s@x.example", "r@example.com", NULL, "MAIL.example.NET",
			   "mail.example.net"), "");
	/* a host name entry needs the verified client_name, not just the reverse name */
	CHECK(deferred(ask_full(t, "192.0.2.51", "s@x.example", "r@example.com", NULL, "unknown",
				"mail.example.net")));
	CHECK(deferred(ask_full(t, "192.0.2.52", "s@x.example", "r@example.com", NULL,
				"x.mail.example.net", NULL)));
	CHECK_STR(ask_full(t, "192.0.2.53", "s@x.example", "r@example.com", NULL,
			   "a.b.pool.example.org", NULL), "");
	CHECK_STR(ask_full(t, "192.0.2.54", "s@x.example", "r@example.com", NULL, "pool.example.org",
			   NULL), "");
	CHECK(deferred(ask_full(t, "192.0.2.55", "s@x.example", "r@example.com", NULL,
				"evilpool.example.org", NULL)));
	CHECK_STR(ask_full(t, "192.0.2.56", "s@x.example", "r@example.com", NULL,
			   "mta17.bigsender.example", NULL), "");
	/* a regex is tried against the verified client_name only: the reverse name is the
	 * client's own PTR record, which anybody can set to "mta3.bigsender.example" */
	CHECK(deferred(ask_full(t, "192.0.2.57", "s@x.example", "r@example.com", NULL, "unknown",
				"mta3.bigsender.example")));
	CHECK(deferred(ask_full(t, "192.0.2.59", "s@x.example", "r@example.com", NULL,
				"mail.evil.example", "mta3.bigsender.example")));
	/* the same for a .domain entry (it never looked at the reverse name) */
	CHECK(deferred(ask_full(t, "192.0.2.60", "s@x.example", "r@example.com", NULL, "unknown",
				"a.pool.example.org")));
	CHECK(deferred(ask_full(t, "192.0.2.58", "s@x.example", "r@example.com", NULL,
				"mta3.bigsender.example.evil", NULL)));
	/* recipients */
	CHECK_STR(ask(t, "192.0.2.99", "s@x.example", "Postmaster@anywhere.example", NULL), "");
	CHECK_STR(ask(t, "192.0.2.99", "s@x.example", "abuse@example.com", NULL), "");
	CHECK(deferred(ask(t, "192.0.2.99", "s@x.example", "abuse@example.net", NULL)));
	CHECK_STR(ask(t, "192.0.2.99", "s@x.example", "anyone@open.example", NULL), "");
	CHECK(deferred(ask(t, "192.0.2.99", "s@x.example", "anyone@x.open.example", NULL)));
	CHECK_STR(ask(t, "192.0.2.99", "s@x.example", "u@greylist-free.example", NULL), "");
	CHECK_STR(ask(t, "192.0.2.99", "s@x.example", "u@a.sub.example", NULL), "");
	CHECK_STR(ask(t, "192.0.2.99", "s@x.example", "list-foo@example.com", NULL), "");
	CHECK(deferred(ask(t, "192.0.2.99", "s@x.example", "foo-list@example.com", NULL)));
	stop(t);
}

/* test_bad_whitelist - a bad line fails init and names file:line */
static void test_bad_whitelist(void)
{
	char path[600], conf[800], err[800];
	gl_wl *wl = gl_wl_new();

	new_state_dir();
	snprintf(path, sizeof(path), "%s/clients", statedir);
	write_file(path, "192.0.2.1\n# ok\n192.0.2.0/33\n");
	CHECK(gl_wl_load(wl, path, 1, err, sizeof(err)) == -1);
	{
		char want[700];

		snprintf(want, sizeof(want), "%s:3: bad prefix length", path);
		CHECK(strncmp(err, want, strlen(want)) == 0);
	}
	gl_wl_free(wl);

	write_file(path, "ok.example\nnot a host\n");
	wl = gl_wl_new();
	CHECK(gl_wl_load(wl, path, 1, err, sizeof(err)) == -1);
	CHECK(strstr(err, ":2: one entry per line") != NULL);
	gl_wl_free(wl);

	write_file(path, "/unbalanced(/\n");
	wl = gl_wl_new();
	CHECK(gl_wl_load(wl, path, 1, err, sizeof(err)) == -1);
	CHECK(strstr(err, ":1: bad regular expression") != NULL);
	gl_wl_free(wl);

	write_file(path, "user@@example.com\n");
	wl = gl_wl_new();
	CHECK(gl_wl_load(wl, path, 0, err, sizeof(err)) == -1);
	CHECK(strstr(err, ":1: not an address") != NULL);
	gl_wl_free(wl);

	write_file(path, "host_with space\n");
	snprintf(conf, sizeof(conf), "client_whitelist = {\"%s\"}\n", path);
	CHECK(start(conf, statedir) == NULL);
	snprintf(conf, sizeof(conf), "recipient_whitelist = {\"%s/missing\"}\n", statedir);
	CHECK(start(conf, statedir) == NULL);
	{
		/* a relative path that exists from the current directory is still
		 * refused when the section has no file name (as in the daemon) */
		char cwd[1024];
		pd_instance inst;
		cfg_t *c;

		CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
		CHECK(chdir(statedir) == 0);
		write_file("ok-clients", "192.0.2.1\n");
		c = mock_section(gl_options, "client_whitelist = {\"ok-clients\"}\n"
				 "");
		CHECK(c != NULL);
		if (c) {
			free(c->filename);
			c->filename = NULL;
			CHECK(mock_instance_init(&inst, &pd_plugin, "greylist", c, statedir) == -1);
			cfg_free(c);
		}
		CHECK(chdir(cwd) == 0);
	}
}

/* test_grouping - IPv4 /24 and IPv6 /64 grouping, exact addresses, IPv4-mapped IPv6 */
static void test_grouping(void)
{
	tinst *t = start("delay = 60\nadd_header = false\n", NULL);
	char net[80];
	gl_keyconf kc = {.ipv4_prefix = 24, .ipv6_prefix = 64};

	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "2001:db8:1:2::1", "s@example.org", "r@example.com", NULL)));
	CHECK(deferred(ask(t, "192.0.2.1", "s@example.org", "r@example.com", NULL)));
	mock_clock += 61;
	CHECK_STR(ask(t, "2001:db8:1:2:ffff:1:2:3", "s@example.org", "r@example.com", NULL), "");
	CHECK(deferred(ask(t, "2001:db8:1:3::1", "s@example.org", "r@example.com", NULL)));
	CHECK_STR(ask(t, "192.0.2.254", "s@example.org", "r@example.com", NULL), "");
	CHECK_STR(ask(t, "::ffff:192.0.2.9", "s@example.org", "r@example.com", NULL), "");
	CHECK(deferred(ask(t, "192.0.3.1", "s@example.org", "r@example.com", NULL)));
	stop(t);

	t = start("delay = 60\nipv4_prefix = 32\nipv6_prefix = 128\nadd_header = false\n", NULL);
	if (!t) {
		CHECK(0);
		return;
	}
	CHECK(deferred(ask(t, "192.0.2.1", "s@example.org", "r@example.com", NULL)));
	mock_clock += 61;
	CHECK(deferred(ask(t, "192.0.2.2", "s@example.org", "r@example.com", NULL)));
	CHECK_STR(ask(t, "192.0.2.1", "s@example.org", "r@example.com", NULL), "");
	stop(t);

	CHECK(gl_client_net(&kc, "2001:db8:a:b:c:d:e:f", net, sizeof(net)) == 0);
	CHECK_STR(net, "2001:db8:a:b::/64");
	CHECK(gl_client_net(&kc, "10.1.2.3", net, sizeof(net)) == 0);
	CHECK_STR(net, "10.1.2.0/24");
	kc.ipv6_prefix = 48;
	kc.ipv4_prefix = 20;
	CHECK(gl_client_net(&kc, "2001:db8:a:b:c:d:e:f", net, sizeof(net)) == 0);
	CHECK_STR(net, "2001:db8:a::/48");
	CHECK(gl_client_net(&kc, "10.1.255.3", net, sizeof(net)) == 0);
	CHECK_STR(net, "10.1.240.0/20");
	CHECK(gl_client_net(&kc, "not-an-ip", net, sizeof(net)) == -1);
}

/* norm - normalised form of a sender */
static const char *norm(int on, const char *s)
{
	static char out[GL_ADDR_MAX + 1];
	gl_keyconf kc = {.normalise_sender = on};

	gl_norm_sender(&kc, s, out, sizeof(out));
	return out;
}

/* test_sender - null sender, case, BATV, SRS, VERP; the option switches it off */
static void test_sender(void)
{
	tinst *t;

	CHECK_STR(norm(1, ""), "<>");
	CHECK_STR(norm(1, "User@Example.COM"), "user@example.com");
	CHECK_STR(norm(1, "prvs=1234abcd=user@example.com"), "user@example.com");
	CHECK_STR(norm(1, "PRVS=99ff00aa11=User@example.com"), "user@example.com");
	CHECK_STR(norm(1, "msprvs1=17123abcd=bounces@example.com"), "bounces@example.com");
	CHECK_STR(norm(1, "btv1==0123456789a==user@example.com"), "user@example.com");
	CHECK_STR(norm(1, "SRS0=HHH=TT=orig.example=alice@forwarder.example"), "alice@orig.example");
	CHECK_STR(norm(1, "SRS1=XXX=fwd1.example==HHH=TT=orig.example=bob@fwd2.example"),
		  "bob@orig.example");
	CHECK_STR(norm(1, "bounce-12345-678@lists.example.org"), "bounce-#-#@lists.example.org");
	CHECK_STR(norm(1, "list+bounces-123@example.org"), "list@example.org");
	CHECK_STR(norm(1, "return-4f3a9b1c2d@mailer.example"), "return-#@mailer.example");
	CHECK_STR(norm(1, "news2024@example.org"), "news2024@example.org");
	CHECK_STR(norm(0, "prvs=1234abcd=User@example.com"), "prvs=1234abcd=user@example.com");
	CHECK_STR(norm(0, ""), "<>");

	t = start("delay = 60\nadd_header = false\n", NULL);
	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "192.0.2.40", "prvs=0011aabbcc=news@example.org", "r@example.com", NULL)));
	CHECK(deferred(ask(t, "192.0.2.40", "", "r@example.com", NULL)));
	mock_clock += 61;
	CHECK_STR(ask(t, "192.0.2.40", "prvs=9988ddeeff=news@example.org", "r@example.com", NULL), "");
	CHECK_STR(ask(t, "192.0.2.40", "", "r@example.com", NULL), "");
	stop(t);

	t = start("delay = 60\nadd_header = false\nnormalise_sender = false\n", NULL);
	if (!t) {
		CHECK(0);
		return;
	}
	CHECK(deferred(ask(t, "192.0.2.40", "prvs=0011aabbcc=news@example.org", "r@example.com", NULL)));
	mock_clock += 61;
	CHECK(deferred(ask(t, "192.0.2.40", "prvs=9988ddeeff=news@example.org", "r@example.com", NULL)));
	stop(t);
}

/* test_siphash - reference vectors of SipHash-2-4 (key 00..0f, message 00..len-1) */
static void test_siphash(void)
{
	uint8_t key[16], msg[64], out[8];
	static const uint8_t v0[8] = {0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72};
	static const uint8_t v15[8] = {0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1};
	static const uint8_t v63[8] = {0x72, 0x45, 0x06, 0xeb, 0x4c, 0x32, 0x8a, 0x95};

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	pd_siphash(key, msg, 0, out);
	CHECK(memcmp(out, v0, 8) == 0);
	pd_siphash(key, msg, 15, out);
	CHECK(memcmp(out, v15, 8) == 0);
	pd_siphash(key, msg, 63, out);
	CHECK(memcmp(out, v63, 8) == 0);
}

/* test_privacy - with privacy on, no address is stored; greylisting still works */
static void test_privacy(void)
{
	tinst *t = start("delay = 60\nadd_header = false\nprivacy = true\nhash_key = \"s3cret-key-1\"\n",
			 NULL);
	gl_inst *g;
	char kp[700];
	struct stat st;
	gl_rec rec;

	if (!t) {
		CHECK(0);
		return;
	}
	g = t->inst.data;
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "192.0.2.60", "secret-sender@example.org", "hidden@example.com", "P1")));
	mock_clock += 61;
	CHECK_STR(ask(t, "192.0.2.60", "secret-sender@example.org", "hidden@example.com", "P2"), "");
	CHECK(deferred(ask(t, "192.0.2.60", "secret-sender@example.org", "other@example.com", "P3")));
	CHECK(stored(t, "192.0.2.60", "secret-sender@example.org", "hidden@example.com", &rec) == 1 &&
	      rec.type == GL_T_PASSED);
	CHECK(stored(t, "192.0.2.60", "secret-sender@example.org", "other@example.com", &rec) == 1 &&
	      rec.type == GL_T_PENDING);
	{
		/* the keys hold no address: hashes only */
		char key[GL_KEY_MAX + 1], ck[GL_KEY_MAX + 1];

		CHECK(gl_triplet_key(&g->kc, "192.0.2.0/24", "secret-sender@example.org", "hidden@example.com",
				     key, sizeof(key)) == 51);
		CHECK(gl_client_key(&g->kc, "192.0.2.60/32", ck, sizeof(ck)) == 18);
		CHECK(!strstr(key, "secret") && !strstr(key, "192.0.2") && !strstr(key, "hidden"));
		CHECK(!strstr(ck, "192.0.2") && strncmp(key, "T:", 2) == 0 && strncmp(ck, "C:", 2) == 0);
	}
	stop(t);

	/* without hash_key a random key file is made (mode 0600) and reused */
	t = start("privacy = true\n", NULL);
	if (!t) {
		CHECK(0);
		return;
	}
	snprintf(kp, sizeof(kp), "%s/greylist.db.key", t->dir);
	CHECK(stat(kp, &st) == 0 && (st.st_mode & 0777) == 0600);
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "192.0.2.61", "s@example.org", "r@example.com", NULL)));
	{
		char dir[512];

		snprintf(dir, sizeof(dir), "%s", t->dir);
		stop(t);
		t = start("privacy = true\nadd_header = false\n", dir);
	}
	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock += 301;
	CHECK_STR(ask(t, "192.0.2.61", "s@example.org", "r@example.com", NULL), "");
	stop(t);
}

/* test_reply_text - placeholders expanded by the plugin, client data never a format */
static void test_reply_text(void)
{
	tinst *t = start("delay = 120\naction = \"450\"\n"
			 "reply_text = \"4.7.1 %r: wait %s of %d seconds (100%% sure)\"\n", NULL);

	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock = 1700000000;
	CHECK_STR(ask(t, "192.0.2.70", "s@example.org", "r@Ex%n%s.Example.com", NULL),
		  "450 4.7.1 exns.example.com: wait 120 of 120 seconds (100% sure)");
	stop(t);
	CHECK(mock_section(gl_options, "reply_text = \"retry in %n\"\n") == NULL);
	CHECK(mock_section(gl_options, "action = \"REJECT\"\n") == NULL);
	CHECK(mock_section(gl_options, "delay = 5x\n") == NULL);
	CHECK(mock_section(gl_options, "ipv4_prefix = 33\n") == NULL);
	CHECK(mock_section(gl_options, "ipv6_prefix = -1\n") == NULL);
	CHECK(mock_section(gl_options, "auto_whitelist = lots\n") == NULL);
	CHECK(mock_section(gl_options, "hash_key = \"short\"\n") == NULL);
	{
		cfg_t *c = mock_section(gl_options, "delay = 5m\nretry_window = 2d\nlifetime = 5w\n");

		CHECK(c && cfg_getint(c, "delay") == 300 && cfg_getint(c, "retry_window") == 172800 &&
		      cfg_getint(c, "lifetime") == 35 * 86400);
		if (c)
			cfg_free(c);
	}
	CHECK(start("delay = 2d\nretry_window = 1d\n", NULL) == NULL);
}

/* test_data_state - at DATA without a recipient the triplet has an empty recipient */
static void test_data_state(void)
{
	tinst *t = start("delay = 60\nadd_header = false\n", NULL);
	pd_request *req;

	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock = 1700000000;
	for (int round = 0; round < 2; round++) {
		req = mock_request_new("request=smtpd_access_policy", "protocol_state=DATA",
				       "client_address=192.0.2.80", "sender=s@example.org", "recipient=",
				       "recipient_count=3", NULL);
		mock_reply_clear(t->reply);
		CHECK(mock_check(&pd_plugin, &t->inst, req, t->reply) == PD_CHECK_OK);
		if (round == 0)
			CHECK(deferred(mock_reply_text(t->reply)));
		else
			CHECK_STR(mock_reply_text(t->reply), "");
		mock_request_free(req);
		mock_clock += 61;
	}
	stop(t);
}

/* test_two_instances - a reload initialises a new instance before the old one's fini: the same
 * name shares the state; another name (greylist "strict") has its own */
static void test_two_instances(void)
{
	tinst *a = start("delay = 60\nadd_header = false\n", NULL), *b;
	cfg_t *c;
	pd_instance other;

	if (!a) {
		CHECK(0);
		return;
	}
	b = start("delay = 60\nadd_header = false\n", a->dir);
	CHECK(b != NULL);
	if (!b) {
		stop(a);
		return;
	}
	mock_clock = 1700000000;
	CHECK(deferred(ask(a, "192.0.2.90", "s@example.org", "r@example.com", NULL)));
	stop(a);
	mock_clock += 61;
	CHECK_STR(ask(b, "192.0.2.90", "s@example.org", "r@example.com", NULL), "");
	c = mock_section(gl_options, "delay = 60\nadd_header = false\n");
	CHECK(c && mock_instance_init(&other, &pd_plugin, "strict", c, b->dir) == 0);
	if (c && other.data) {
		pd_request *req = mock_request_new("protocol_state=RCPT", "client_address=192.0.2.90",
						   "sender=s@example.org", "recipient=r@example.com", NULL);

		mock_reply_clear(b->reply);
		CHECK(mock_check(&pd_plugin, &other, req, b->reply) == PD_CHECK_OK);
		CHECK(deferred(mock_reply_text(b->reply))); /* new in the other namespace */
		mock_request_free(req);
		mock_instance_fini(&other, &pd_plugin);
	}
	if (c)
		cfg_free(c);
	stop(b);
}

typedef struct thr_arg {
	tinst *t;
	int idx, bad;
} thr_arg;

/* thr_main - one thread asking 200 new triplets through the same instance */
static void *thr_main(void *p)
{
	thr_arg *a = p;

	for (int i = 0; i < 200; i++) {
		pd_request *req = mock_request_new("protocol_state=RCPT", "sender=s@example.org",
						   "recipient=r@example.com", NULL);
		pd_reply *rep = mock_reply_new();
		char client[32];

		snprintf(client, sizeof(client), "10.%d.%d.1", a->idx + 100, i);
		mock_request_set(req, "client_address", client);
		if (mock_check(&pd_plugin, &a->t->inst, req, rep) != PD_CHECK_OK ||
		    !deferred(mock_reply_text(rep)))
			a->bad++;
		mock_request_free(req);
		mock_reply_free(rep);
	}
	return NULL;
}

/* test_threads - concurrent check() calls on one instance lose no update */
static void test_threads(void)
{
	tinst *t = start("delay = 60\nauto_whitelist = 0\n", NULL);
	pthread_t th[4];
	thr_arg a[4];
	int bad = 0, have = 0;

	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock = 1700000000;
	for (int i = 0; i < 4; i++) {
		a[i] = (thr_arg){t, i, 0};
		CHECK(pthread_create(&th[i], NULL, thr_main, &a[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		bad += a[i].bad;
	}
	CHECK(bad == 0);
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 200; k++) {
			char client[32];

			snprintf(client, sizeof(client), "10.%d.%d.1", i + 100, k);
			have += stored(t, client, "s@example.org", "r@example.com", NULL) == 1;
		}
	CHECK(have == 800); /* no update lost */
	stop(t);
}


/* test_store_down - the state service failing is an error (on_error applies), never a pass */
static void test_store_down(void)
{
	tinst *t = start("delay = 60\n", NULL);
	gl_rec rec;

	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock = 1700000000;
	mock_store_fail(1);
	CHECK_STR(ask(t, "192.0.2.95", "s@example.org", "r@example.com", NULL), "ERROR");
	mock_store_fail(0);
	CHECK(deferred(ask(t, "192.0.2.95", "s@example.org", "r@example.com", NULL)));
	stop(t);
	/* on a remote store the instance runs on the worker threads */
	mock_store_set_remote(1);
	t = start("delay = 60\nhash_key = \"\"\nadd_header = false\n", NULL);
	CHECK(t && t->inst.blocking == 1);
	if (t) {
		/* remote: the decisions that write nothing are taken from a read (read_first) */
		CHECK_STR(ask(t, "192.0.2.96", "s@example.org", "r@example.com", NULL),
			  "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 60 seconds");
		mock_clock += 20;
		CHECK_STR(ask(t, "192.0.2.96", "s@example.org", "r@example.com", NULL),
			  "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 40 seconds");
		mock_clock += 40;
		CHECK_STR(ask(t, "192.0.2.96", "s@example.org", "r@example.com", NULL), "");
		CHECK(stored(t, "192.0.2.96", "s@example.org", "r@example.com", &rec) == 1 && rec.type == GL_T_PASSED);
		mock_clock += 10;
		CHECK_STR(ask(t, "192.0.2.96", "s@example.org", "r@example.com", NULL), "");
		CHECK(client_count(t, "192.0.2.96") == 1);
		stop(t);
	}
	CHECK(start("privacy = true\n", NULL) == NULL); /* a key file per host cannot be shared */
	mock_store_set_remote(0);
	t = start("", NULL);
	CHECK(t && t->inst.blocking == 0);
	if (t)
		stop(t);
}

/* test_decide - the record updates as a table: old record, clock, verdict, write */
static void test_decide(void)
{
	static const struct {
		int type;        /* old record: 0 none */
		int64_t first, last;
		int64_t now;
		int verdict, action;
		long secs;       /* remaining (DEFER) or delayed (PASSED_NOW) */
	} tab[] = {
		{0, 0, 0, 1000, GL_V_DEFER, PD_STORE_WRITE, 300},                        /* first contact */
		{GL_T_PENDING, 1000, 1000, 1100, GL_V_DEFER, PD_STORE_KEEP, 200},        /* early retry */
		{GL_T_PENDING, 1000, 1000, 1299, GL_V_DEFER, PD_STORE_KEEP, 1},
		{GL_T_PENDING, 1000, 1000, 1300, GL_V_PASSED_NOW, PD_STORE_WRITE, 300},  /* pass */
		{GL_T_PENDING, 1000, 1000, 1000 + 86400, GL_V_PASSED_NOW, PD_STORE_WRITE, 86400},
		{GL_T_PENDING, 1000, 1000, 1001 + 86400, GL_V_DEFER, PD_STORE_WRITE, 300}, /* expired */
		{GL_T_PENDING, 1000, 1000, 900, GL_V_DEFER, PD_STORE_KEEP, 300},         /* clock back */
		{GL_T_PENDING, 900000, 900000, 1000, GL_V_DEFER, PD_STORE_WRITE, 300},   /* far future */
		{GL_T_PASSED, 1000, 5000, 5100, GL_V_PASS, PD_STORE_KEEP, 0},            /* known */
		{GL_T_PASSED, 1000, 5000, 8600, GL_V_PASS, PD_STORE_WRITE, 0},           /* refreshed hourly */
		{GL_T_PASSED, 1000, 5000, 5000 + 864000, GL_V_PASS, PD_STORE_WRITE, 0},
		{GL_T_PASSED, 1000, 5000, 5001 + 864000, GL_V_DEFER, PD_STORE_WRITE, 300}, /* lifetime */
		{GL_T_CLIENT, 1000, 1000, 1100, GL_V_DEFER, PD_STORE_WRITE, 300},        /* wrong type */
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		gl_tdec d = {.in = {.now = tab[i].now, .delay = 300, .retry_window = 86400, .lifetime = 864000}};
		gl_rec old = {.type = tab[i].type, .first_seen = tab[i].first, .last_seen = tab[i].last}, nr;
		unsigned char ob[GL_REC_SIZE], nb[PD_STORE_RECORD_MAX];
		size_t nl = 0;
		unsigned ttl = 0;
		int a;

		gl_rec_encode(&old, ob);
		a = gl_triplet_update(&d, tab[i].type ? ob : NULL, tab[i].type ? GL_REC_SIZE : 0, nb, &nl, &ttl);
		if (a != tab[i].action || d.out.verdict != tab[i].verdict ||
		    (d.out.verdict == GL_V_DEFER ? d.out.remaining : d.out.delayed) != tab[i].secs)
			fprintf(stderr, "FAIL row %zu: action %d verdict %d secs %ld/%ld\n", i, a, d.out.verdict,
				d.out.remaining, d.out.delayed);
		CHECK(a == tab[i].action && d.out.verdict == tab[i].verdict);
		CHECK((d.out.verdict == GL_V_DEFER ? d.out.remaining : d.out.delayed) == tab[i].secs);
		if (a == PD_STORE_WRITE) {
			CHECK(nl == GL_REC_SIZE && gl_rec_decode(nb, nl, &nr) == 0);
			/* the store keeps it exactly as long as the decision would */
			CHECK(ttl == (unsigned)((nr.type == GL_T_PENDING ? nr.first_seen + 86400 : nr.last_seen + 864000) -
						tab[i].now + 1));
		}
	}
	{
		/* the client record: counted once per interval, refreshed only when whitelisted */
		gl_cdec d = {.now = 1000, .interval = 3600, .lifetime = 864000, .needed = 2};
		unsigned char ob[GL_REC_SIZE], nb[PD_STORE_RECORD_MAX];
		size_t nl;
		unsigned ttl;
		gl_rec c;

		CHECK(gl_client_update(&d, NULL, 0, nb, &nl, &ttl) == PD_STORE_WRITE && d.count == 1);
		memcpy(ob, nb, GL_REC_SIZE);
		d.now = 4599;
		CHECK(gl_client_update(&d, ob, GL_REC_SIZE, nb, &nl, &ttl) == PD_STORE_KEEP && d.count == 1);
		d.refresh = 1;
		d.now = 4600;
		CHECK(gl_client_update(&d, ob, GL_REC_SIZE, nb, &nl, &ttl) == PD_STORE_KEEP); /* not listed */
		d.refresh = 0;
		CHECK(gl_client_update(&d, ob, GL_REC_SIZE, nb, &nl, &ttl) == PD_STORE_WRITE && d.count == 2 &&
		      d.whitelisted_now == 1);
		CHECK(gl_rec_decode(nb, nl, &c) == 0 && gl_client_listed(&c, 4600, 2, 864000) &&
		      !gl_client_listed(&c, 4601 + 864000, 2, 864000) && c.passed_at == 4600);
	}
}

/* test_legacy_import - a greylist.db of the plugin before the state service: its live triplets
 * are imported at start (logged), the file renamed, its passed triplets still pass */
static void test_legacy_import(void)
{
	char path[700], imported[720];
	const char *dir = new_state_dir();
	GDBM_FILE db;
	tinst *t;
	struct stat st;
	static const struct {
		const char *key; /* 'T' NET \0 SENDER \0 RCPT, as the old store_gdbm.c wrote */
		size_t klen;
		int type;
		int64_t first, last;
	} recs[] = {
		{"T192.0.2.0/24\0old@example.org\0r@example.com", sizeof("T192.0.2.0/24\0old@example.org\0r@example.com") - 1, GL_T_PASSED, 1699000000, 1699990000},
		{"T192.0.2.0/24\0pend@example.org\0r@example.com", sizeof("T192.0.2.0/24\0pend@example.org\0r@example.com") - 1, GL_T_PENDING, 1699999800, 1699999800},
		{"T192.0.2.0/24\0stale@example.org\0r@example.com", sizeof("T192.0.2.0/24\0stale@example.org\0r@example.com") - 1, GL_T_PENDING, 1600000000, 1600000000},
		{"C192.0.2.0/24", sizeof("C192.0.2.0/24") - 1, GL_T_CLIENT, 1699000000, 1699990000},
		{"M\0cleanup", 9, GL_T_META, 1699990000, 1699990000},
	};

	snprintf(path, sizeof(path), "%s/greylist.db", dir);
	snprintf(imported, sizeof(imported), "%s.imported", path);
	db = gdbm_open(path, 0, GDBM_NEWDB | GDBM_NOLOCK, 0600, NULL);
	CHECK(db != NULL);
	if (!db)
		return;
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		gl_rec r = {.type = recs[i].type, .count = 3, .first_seen = recs[i].first, .last_seen = recs[i].last};
		unsigned char b[GL_REC_SIZE];
		datum k = {.dptr = (char *)recs[i].key, .dsize = (int)recs[i].klen};
		datum v = {.dptr = (char *)b, .dsize = GL_REC_SIZE};

		gl_rec_encode(&r, b);
		CHECK(gdbm_store(db, k, v, GDBM_REPLACE) == 0);
	}
	gdbm_close(db);
	mock_store_reset();
	mock_clock = 1700000000;
	t = start("delay = 600\nadd_header = false\n", dir);
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(stat(path, &st) != 0 && stat(imported, &st) == 0);
	CHECK_STR(ask(t, "192.0.2.77", "old@example.org", "r@example.com", NULL), ""); /* still passes */
	CHECK_STR(ask(t, "192.0.2.1", "pend@example.org", "r@example.com", NULL),
		  "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 400 seconds"); /* its delay goes on */
	CHECK_STR(ask(t, "192.0.2.1", "stale@example.org", "r@example.com", NULL),
		  "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 600 seconds");
	stop(t);
	/* a second start finds no old file: nothing imported twice, the state kept */
	t = start("delay = 600\nadd_header = false\n", dir);
	CHECK(t != NULL);
	if (t) {
		CHECK_STR(ask(t, "192.0.2.77", "old@example.org", "r@example.com", NULL), "");
		stop(t);
	}
	/* an unreadable old file stops the start, and is left as it is */
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		CHECK(fd >= 0 && write(fd, "garbage!", 8) == 8);
		close(fd);
		CHECK(start("", dir) == NULL);
		CHECK(stat(path, &st) == 0 && st.st_size == 8);
	}
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 99;
	}
	test_defaults();
	test_siphash();
	test_decide();
	test_basic();
	test_header_once();
	test_retry_window();
	test_lifetime();
	test_auto_whitelist();
	test_whitelists();
	test_bad_whitelist();
	test_grouping();
	test_sender();
	test_privacy();
	test_reply_text();
	test_data_state();
	test_two_instances();
	test_threads();
	test_store_down();
	test_legacy_import();
	rm_tree(tmpdir);
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
