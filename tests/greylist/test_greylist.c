/* test_greylist.c - unit tests of the greylist plugin against the mock host and its clock */
/* SPDX-License-Identifier: BSD-2-Clause */
/* The plugin source is included so that its static expiry pass can be driven
 * with the mock clock; key.c, whitelist.c and store_gdbm.c are linked. */
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

	/* no background thread: the tests drive expiry with the mock clock */
	snprintf(full, sizeof(full), "sync_interval = 0\ncleanup_interval = 0\n%s", text ? text : "");
	t->cfg = mock_section(gl_options, full);
	if (!t->cfg) {
		free(t);
		return NULL;
	}
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

/* count_cb - iterate callback counting records by type */
static int count_cb(void *arg, const unsigned char *key, size_t klen, const gl_rec *rec)
{
	long *n = arg;

	n[rec->type == GL_T_PENDING ? 0 : rec->type == GL_T_PASSED ? 1 : rec->type == GL_T_CLIENT ? 2 : 3]++;
	return 0;
}

static const char *seen_needle;
static int seen_found;

/* find_cb - iterate callback: does any key contain seen_needle? */
static int find_cb(void *arg, const unsigned char *key, size_t klen, const gl_rec *rec)
{
	size_t nl = strlen(seen_needle);

	for (size_t i = 0; i + nl <= klen; i++)
		if (memcmp(key + i, seen_needle, nl) == 0)
			seen_found = 1;
	return 0;
}

/* test_basic - first deferred, early retry deferred with the remaining time, retry passes */
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
	gl_inst *g;
	long n[4] = {0};

	if (!t) {
		CHECK(0);
		return;
	}
	g = t->inst.data;
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "192.0.2.20", "s@example.org", "r@example.com", NULL)));
	CHECK(deferred(ask(t, "192.0.2.21", "s2@example.org", "r@example.com", NULL)));
	mock_clock += 3601; /* past the window: first attempt forgotten */
	CHECK_STR(ask(t, "192.0.2.20", "s@example.org", "r@example.com", NULL),
		  "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 60 seconds");
	/* the expiry pass removes the other, stale triplet and keeps the fresh one */
	CHECK(gl_expire(g) == 1);
	CHECK(g->ops->iterate(g->st, 1, count_cb, n, NULL) == 1);
	CHECK(n[0] == 1 && n[1] == 0);
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
	gl_inst *g;
	long n[4] = {0};

	if (!t) {
		CHECK(0);
		return;
	}
	g = t->inst.data;
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "192.0.2.30", "s@example.org", "r@example.com", NULL)));
	mock_clock += 61;
	CHECK_STR(ask(t, "192.0.2.30", "s@example.org", "r@example.com", NULL), "");
	mock_clock += 86000; /* within the lifetime since last seen: passes, refreshes */
	CHECK_STR(ask(t, "192.0.2.30", "s@example.org", "r@example.com", NULL), "");
	mock_clock += 86000;
	CHECK_STR(ask(t, "192.0.2.30", "s@example.org", "r@example.com", NULL), "");
	CHECK(gl_expire(g) == 0);
	mock_clock += 86401; /* not seen for longer than the lifetime */
	CHECK(gl_expire(g) == 1);
	CHECK(g->ops->iterate(g->st, 10, count_cb, n, NULL) == 0);
	CHECK(deferred(ask(t, "192.0.2.30", "s@example.org", "r@example.com", NULL)));
	stop(t);
}

/* test_auto_whitelist - after N deliveries (one per message) the client network passes */
static void test_auto_whitelist(void)
{
	tinst *t = start("delay = 60\nauto_whitelist = 2\nadd_header = false\n", NULL);

	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "203.0.113.5", "a@example.org", "x@example.com", "I1")));
	CHECK(deferred(ask(t, "203.0.113.5", "a@example.org", "y@example.com", "I1")));
	mock_clock += 61;
	/* one message with two recipients counts as one delivery */
	CHECK_STR(ask(t, "203.0.113.5", "a@example.org", "x@example.com", "I2"), "");
	CHECK_STR(ask(t, "203.0.113.5", "a@example.org", "y@example.com", "I2"), "");
	CHECK(deferred(ask(t, "203.0.113.5", "new@example.org", "z@example.com", "I3")));
	mock_clock += 10;
	CHECK_STR(ask(t, "203.0.113.5", "a@example.org", "x@example.com", "I4"), ""); /* 2nd delivery */
	/* now the whole /24 passes, any sender, any recipient */
	CHECK_STR(ask(t, "203.0.113.77", "other@example.net", "w@example.com", "I5"), "");
	/* another network does not */
	CHECK(deferred(ask(t, "203.0.114.5", "other@example.net", "w@example.com", "I6")));
	stop(t);

	t = start("delay = 60\nauto_whitelist = 0\nadd_header = false\n", NULL);
	if (!t) {
		CHECK(0);
		return;
	}
	for (int i = 0; i < 6; i++) {
		char inst[16];

		snprintf(inst, sizeof(inst), "J%d", i);
		mock_clock += 100;
		ask(t, "203.0.113.5", "a@example.org", "x@example.com", inst);
	}
	CHECK(deferred(ask(t, "203.0.113.5", "new@example.org", "z@example.com", "J9")));
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
				 "sync_interval = 0\ncleanup_interval = 0\n");
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
	long n[4] = {0};

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
	CHECK(g->ops->iterate(g->st, 10, count_cb, n, NULL) == 3);
	CHECK(n[0] == 1 && n[1] == 1 && n[2] == 1);
	seen_found = 0;
	seen_needle = "secret-sender";
	g->ops->iterate(g->st, 10, find_cb, NULL, NULL);
	seen_needle = "192.0.2";
	g->ops->iterate(g->st, 10, find_cb, NULL, NULL);
	seen_needle = "hidden";
	g->ops->iterate(g->st, 10, find_cb, NULL, NULL);
	CHECK(seen_found == 0);
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

/* test_two_instances - a reload initialises a new instance before the old one's fini */
static void test_two_instances(void)
{
	tinst *a = start("delay = 60\nadd_header = false\n", NULL), *b;

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
	CHECK(((gl_inst *)a->inst.data)->st != ((gl_inst *)b->inst.data)->st);
	stop(a);
	mock_clock += 61;
	CHECK_STR(ask(b, "192.0.2.90", "s@example.org", "r@example.com", NULL), "");
	stop(b);
}

/* list_corrupt - number of NAME.corrupt.* files in DIR */
static int list_corrupt(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, "greylist.db.corrupt.", 20) == 0)
			n++;
	closedir(d);
	return n;
}

/* test_corrupt - a garbage database is moved aside and a fresh one serves */
static void test_corrupt(void)
{
	char path[700], buf[4096];
	tinst *t;
	int fd;

	new_state_dir();
	snprintf(path, sizeof(path), "%s/greylist.db", statedir);
	memset(buf, 'x', sizeof(buf));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	close(fd);
	t = start("delay = 60\n", statedir);
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(list_corrupt(statedir) == 1);
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "192.0.2.100", "s@example.org", "r@example.com", NULL)));
	stop(t);

	/* a database truncated in the middle (short header) is handled the same way */
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && write(fd, "\x13\x57\x9a\xcf", 4) == 4);
	close(fd);
	t = start("delay = 60\n", statedir);
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(list_corrupt(statedir) == 2);
	CHECK(deferred(ask(t, "192.0.2.100", "s@example.org", "r@example.com", NULL)));
	stop(t);
}

/* test_write_error - a write failure (file size limit) gives PD_CHECK_ERROR, not a crash */
static void test_write_error(void)
{
	tinst *t = start("delay = 60\nauto_whitelist = 0\n", NULL);
	struct rlimit old, lim;
	char path[700], rcpt[400];
	struct stat st;
	int errors = 0, ok_after = 0;

	if (!t) {
		CHECK(0);
		return;
	}
	snprintf(path, sizeof(path), "%s/greylist.db", t->dir);
	CHECK(stat(path, &st) == 0);
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size;
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	mock_clock = 1700000000;
	for (int i = 0; i < 3000 && !errors; i++) {
		snprintf(rcpt, sizeof(rcpt), "recipient-with-a-long-name-%04d-%0200d@example.com", i, i);
		if (strcmp(ask(t, "192.0.2.110", "s@example.org", rcpt, NULL), "ERROR") == 0)
			errors++;
	}
	CHECK(errors == 1);
	setrlimit(RLIMIT_FSIZE, &old);
	/* with room again the store recovers without a restart */
	for (int i = 0; i < 5; i++) {
		snprintf(rcpt, sizeof(rcpt), "after-%d@example.com", i);
		if (deferred(ask(t, "192.0.2.111", "s@example.org", rcpt, NULL)))
			ok_after++;
	}
	CHECK(ok_after == 5);
	stop(t);
	signal(SIGXFSZ, SIG_DFL);
}

/* touch_cb - iterate callback that updates the record it visits, then asks to delete it */
static int touch_cb(void *arg, const unsigned char *key, size_t klen, const gl_rec *rec)
{
	gl_inst *g = arg;
	gl_rec r = *rec;
	int ok;

	/* the store must not be locked while the callback runs, or this deadlocks */
	if (g->ops->begin(g->st) != 0)
		return 0;
	r.last_seen++;
	ok = g->ops->put(g->st, key, klen, &r) == 0;
	g->ops->end(g->st);
	return ok ? 1 : 0;
}

/* test_iterate_unlocked - callbacks run unlocked; a record changed meanwhile is not deleted */
static void test_iterate_unlocked(void)
{
	tinst *t = start("delay = 60\n", NULL);
	gl_inst *g;
	long n[4] = {0}, deleted = -1;

	if (!t) {
		CHECK(0);
		return;
	}
	g = t->inst.data;
	mock_clock = 1700000000;
	for (int i = 0; i < 30; i++) {
		char client[32];

		snprintf(client, sizeof(client), "10.0.%d.1", i);
		ask(t, client, "s@example.org", "r@example.com", NULL);
	}
	CHECK(g->ops->iterate(g->st, 7, touch_cb, g, &deleted) == 30);
	CHECK(deleted == 0);
	CHECK(g->ops->iterate(g->st, 7, count_cb, n, NULL) == 30);
	stop(t);
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
	long n[4] = {0};
	gl_inst *g;
	int bad = 0;

	if (!t) {
		CHECK(0);
		return;
	}
	g = t->inst.data;
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
	CHECK(g->ops->iterate(g->st, 100, count_cb, n, NULL) == 800);
	CHECK(n[0] == 800);
	stop(t);
}

/* test_malformed_records - bad records are dropped by expiry, a newer version's are kept */
static void test_malformed_records(void)
{
	char path[700], dir[600];
	GDBM_FILE db;
	datum k1 = {.dptr = "Tjunk", .dsize = 5}, v1 = {.dptr = "short", .dsize = 5};
	datum k2 = {.dptr = "Tfuture", .dsize = 7};
	unsigned char v2buf[40] = {GL_REC_VERSION + 1, 'T'};
	datum v2 = {.dptr = (char *)v2buf, .dsize = sizeof(v2buf)};
	unsigned char key[GL_KEY_MAX];
	datum k3;
	gl_keyconf kc = {.ipv4_prefix = 24, .ipv6_prefix = 64, .normalise_sender = 1};
	tinst *t;
	long n[4] = {0};

	snprintf(dir, sizeof(dir), "%s", new_state_dir());
	snprintf(path, sizeof(path), "%s/greylist.db", dir);
	db = gdbm_open(path, 0, GDBM_WRCREAT, 0600, NULL);
	CHECK(db != NULL);
	if (!db)
		return;
	k3.dptr = (char *)key;
	k3.dsize = (int)gl_triplet_key(&kc, "192.0.2.0/24", "s@example.org", "r@example.com", key,
				       sizeof(key));
	gdbm_store(db, k1, v1, GDBM_REPLACE);
	gdbm_store(db, k2, v2, GDBM_REPLACE);
	gdbm_store(db, k3, v1, GDBM_REPLACE); /* the triplet below has a malformed value */
	gdbm_close(db);
	t = start("delay = 60\n", dir);
	if (!t) {
		CHECK(0);
		return;
	}
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "192.0.2.1", "s@example.org", "r@example.com", NULL)));
	CHECK(gl_expire(t->inst.data) == 1); /* Tjunk */
	CHECK(((gl_inst *)t->inst.data)->ops->iterate(((gl_inst *)t->inst.data)->st, 10, count_cb, n,
						      NULL) == 2); /* Tfuture and the rewritten triplet */
	CHECK(n[0] == 1);
	stop(t);
	db = gdbm_open(path, 0, GDBM_READER, 0600, NULL);
	CHECK(db != NULL);
	if (db) {
		CHECK(gdbm_exists(db, k2) && !gdbm_exists(db, k1));
		gdbm_close(db);
	}
}

static tinst *compact_t;
static int compact_done; /* atomic: the request made during the compaction returned */
static char compact_reply[64];
static int compact_waited_out;

/* compact_req - a request from another thread while the store is being reorganised */
static void *compact_req(void *arg)
{
	const char *r = ask(compact_t, "192.0.2.230", "s@example.org", "during@example.com", NULL);

	(void)arg;
	snprintf(compact_reply, sizeof(compact_reply), "%.60s", r);
	__atomic_store_n(&compact_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* compact_hook - inside the reorganisation: a request must come back without waiting for it */
static void compact_hook(void)
{
	pthread_t th;

	if (pthread_create(&th, NULL, compact_req, NULL) != 0)
		return;
	/* lock_timeout is 10 s: a request that waits for the store is still waiting after 5 s */
	for (int i = 0; i < 500 && !__atomic_load_n(&compact_done, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	compact_waited_out = !__atomic_load_n(&compact_done, __ATOMIC_ACQUIRE);
	pthread_detach(th);
}

/* test_compact_never_waits - requests fail at once while gdbm_reorganize holds the store */
static void test_compact_never_waits(void)
{
	tinst *t = start("delay = 60\nauto_whitelist = 0\nlock_timeout = 10000\n", NULL);
	gl_inst *g;
	long n[4] = {0};

	if (!t) {
		CHECK(0);
		return;
	}
	g = t->inst.data;
	mock_clock = 1700000000;
	for (int i = 0; i < 50; i++) {
		char client[32];

		snprintf(client, sizeof(client), "10.9.%d.1", i);
		CHECK(deferred(ask(t, client, "s@example.org", "r@example.com", NULL)));
	}
	compact_t = t;
	gl_gdbm_compact_hook = compact_hook;
	CHECK(g->ops->compact(g->st) == 0);
	gl_gdbm_compact_hook = NULL;
	CHECK(!compact_waited_out);
	/* a stalled request would finish after the compaction: wait for it before freeing */
	for (int i = 0; i < 2000 && !__atomic_load_n(&compact_done, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	CHECK_STR(compact_reply, "ERROR"); /* on_error, not a wait */
	/* afterwards: everything is still there and requests are served again */
	CHECK(g->ops->iterate(g->st, 100, count_cb, n, NULL) == 50);
	CHECK(deferred(ask(t, "192.0.2.231", "s@example.org", "after@example.com", NULL)));
	stop(t);
}

static char *self_path;

/* child_main - a separate process (fresh exec) asking N new triplets; exit 0 if all deferred */
static int child_main(const char *dir, int idx, long clock)
{
	tinst *t;
	int bad = 0;

	mock_clock = clock;
	t = start("delay = 60\n", dir);
	if (!t)
		return 3;
	for (int i = 0; i < 100; i++) {
		char client[64];

		snprintf(client, sizeof(client), "10.%d.%d.1", idx + 1, i);
		if (!deferred(ask(t, client, "s@example.org", "r@example.com", NULL)))
			bad++;
	}
	stop(t);
	return bad ? 1 : 0;
}

/* test_processes - processes with their own open handles share one file without losing writes */
static void test_processes(void)
{
	tinst *t = start("delay = 60\nauto_whitelist = 0\nadd_header = false\n", NULL);
	pid_t pid[3];
	long n[4] = {0};
	gl_inst *g;
	int ok = 0, parent_bad = 0;

	if (!t) {
		CHECK(0);
		return;
	}
	g = t->inst.data;
	mock_clock = 1700000000;
	CHECK(deferred(ask(t, "192.0.2.200", "s@example.org", "r@example.com", NULL)));
	fflush(NULL);
	for (int c = 0; c < 3; c++) {
		char idx[8], clk[32];

		snprintf(idx, sizeof(idx), "%d", c);
		snprintf(clk, sizeof(clk), "%ld", (long)mock_clock);
		pid[c] = fork();
		if (pid[c] == 0) {
			execl(self_path, self_path, "--child", t->dir, idx, clk, (char *)NULL);
			_exit(4);
		}
	}
	for (int i = 0; i < 100; i++) { /* concurrently with the children */
		char client[64];

		snprintf(client, sizeof(client), "10.9.%d.1", i);
		if (!deferred(ask(t, client, "s@example.org", "r@example.com", NULL)))
			parent_bad++;
	}
	for (int c = 0; c < 3; c++) {
		int status;

		if (pid[c] > 0 && waitpid(pid[c], &status, 0) == pid[c] && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)
			ok++;
	}
	CHECK(ok == 3);
	CHECK(parent_bad == 0);
	CHECK(g->ops->iterate(g->st, 50, count_cb, n, NULL) == 401);
	CHECK(n[0] == 401);
	mock_clock += 61; /* a triplet written by a child passes here */
	CHECK_STR(ask(t, "10.2.42.1", "s@example.org", "r@example.com", NULL), "");
	stop(t);
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
	CHECK(cfg_getint(c, "lock_timeout") == 1000);
	CHECK(pd_plugin.flags & PD_PLUGIN_SKIP_SASL);
	CHECK_STR(pd_plugin.default_states, "RCPT");
	cfg_free(c);
}

#ifdef HAVE_HIREDIS
/* test_redis_verdict - only the replies the script can give are verdicts; the rest are errors */
static void test_redis_verdict(void)
{
	gl_upd in = {.delay = 300, .retry_window = 86400};
	gl_upd_res res;
	static const long long bad[][3] = {
		{7, 0, 0}, {-1, 0, 0}, {4, 0, 0}, {4294967296LL, 0, 0}, {4294967297LL, 0, 0},
		{0, -5, 0}, {0, 301, 0}, {0, 1, 1}, {1, 0, 5}, {1, 3, 0}, {2, 0, -1}, {2, 0, 86401},
		{2, 1, 10}, {3, 0, 1}, {3, 1, 0}, {-9223372036854775807LL - 1, 0, 0},
	};

	CHECK(gl_redis_verdict(&in, 0, 300, 0, &res) == 0 && res.verdict == GL_UPD_DEFER &&
	      res.remaining == 300);
	CHECK(gl_redis_verdict(&in, 0, 1, 0, &res) == 0 && res.remaining == 1);
	CHECK(gl_redis_verdict(&in, 1, 0, 0, &res) == 0 && res.verdict == GL_UPD_PASS);
	CHECK(gl_redis_verdict(&in, 2, 0, 400, &res) == 0 && res.verdict == GL_UPD_PASSED_NOW &&
	      res.delayed == 400);
	CHECK(gl_redis_verdict(&in, 3, 0, 0, &res) == 0 && res.verdict == GL_UPD_CLIENT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		res = (gl_upd_res){.verdict = -42};
		CHECK(gl_redis_verdict(&in, bad[i][0], bad[i][1], bad[i][2], &res) == -1);
		CHECK(res.verdict == -42); /* untouched */
	}
}
#endif

int main(int argc, char **argv)
{
	self_path = argv[0];
	if (argc == 5 && strcmp(argv[1], "--child") == 0)
		return child_main(argv[2], atoi(argv[3]), atol(argv[4]));
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 99;
	}
	test_defaults();
	test_siphash();
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
	test_corrupt();
	test_write_error();
	test_processes();
	test_iterate_unlocked();
	test_threads();
	test_malformed_records();
	test_compact_never_waits();
#ifdef HAVE_HIREDIS
	test_redis_verdict();
#endif
	rm_tree(tmpdir);
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
