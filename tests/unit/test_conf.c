/* test_conf.c - unit tests of the config loader and the plugin loader */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "conf.h"
#include "loader.h"
#include "log.h"
#include "tap.h"

#include <stdlib.h>
#include <sys/stat.h>

static char dir[256];
static char plugdir[1024];

/* write_conf - write TEXT (after a plugin_dir line) to a file; returns its path */
static const char *write_conf(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	fprintf(f, "plugin_dir = \"%s\"\nstate_dir = \"state\"\n%s", plugdir, text);
	fclose(f);
	return path;
}

/* load_err - load a config expected to fail; returns what was logged */
static char *load_err(const char *name, const char *text)
{
	const char *path = write_conf(name, text);
	pd_conf *c;
	char *err;

	stderr_begin();
	c = pd_conf_load(path, 0);
	err = stderr_end();
	CHECK(c == NULL);
	pd_conf_free(c);
	return err;
}

/* expect_err - a bad config fails with NEEDLE (file:line included) in the log */
static void expect_err(const char *name, const char *text, const char *needle)
{
	char *err = load_err(name, text);

	if (!strstr(err, needle)) {
		printf("expected \"%s\" in: %s\n", needle, err);
		CHECK(0);
	} else {
		CHECK(1);
	}
	free(err);
}

/* test_good - a full config loads with chains, filters and resolved paths */
static void test_good(void)
{
	const char *path = write_conf("good.conf",
				      "listen = { \"inet:127.0.0.1:10023\", \"unix:rel.sock\" }\n"
				      "plugins = { \"fake\", \"example\" }\n"
				      "default_action = \"DUNNO\"\n"
				      "chain \"submission\" {\n  plugins = { \"fake2\" }\n  listen = { \"inet:[::1]:10024\" }\n}\n"
				      "fake {\n  action = \"PREPEND X-Test: 1\"\n  skip_networks = { \"10.0.0.0/8\", \"2001:db8::/32\" }\n"
				      "  protocol_state = { \"RCPT\", \"DATA\" }\n}\n"
				      "example { marker = \"blockme\" }\n");
	pd_conf *c = pd_conf_load(path, 0);
	char want[600];

	CHECK(c != NULL);
	if (!c)
		return;
	CHECK(c->n_mods == 3);
	CHECK(c->n_chains == 2);
	CHECK_STR(c->chains[0]->name, "default");
	CHECK(c->chains[0]->n == 2);
	CHECK_STR(c->chains[1]->name, "submission");
	CHECK(c->chains[1]->insts[0] == c->insts[2]);
	CHECK(c->n_listen == 3);
	snprintf(want, sizeof(want), "unix:%s/rel.sock", dir);
	CHECK_STR(c->listen[1].text, want);
	CHECK_STR(c->listen[2].chain, "submission");
	snprintf(want, sizeof(want), "%s/state", dir);
	CHECK_STR(c->state_dir, want);
	CHECK(c->insts[0]->n_nets == 2);
	CHECK(c->insts[0]->states == (PD_ST_RCPT | PD_ST_DATA));
	CHECK(c->insts[1]->states == PD_ST_RCPT);
	CHECK(pd_conf_chain(c, "submission") == c->chains[1]);
	CHECK(pd_conf_chain(c, "nope") == NULL);
	pd_conf_free(c);
}

/* test_errors - every mistake is reported with file:line */
static void test_errors(void)
{
	char needle[600];

	snprintf(needle, sizeof(needle), "%s/typo.conf:3: no such option 'idle_timout'", dir);
	expect_err("typo.conf", "idle_timout = 5\n", needle);
	snprintf(needle, sizeof(needle), "%s/ptypo.conf:5: no such option 'markr'", dir);
	expect_err("ptypo.conf", "plugins = { \"example\" }\nexample {\n  markr = \"x\"\n}\n", needle);
	expect_err("ptypo.conf", "plugins = { \"example\" }\nexample {\n  markr = \"x\"\n}\n", "markr");
	snprintf(needle, sizeof(needle), "%s/listen.conf:3: listen \"inet:127.0.0.1\"", dir);
	expect_err("listen.conf", "listen = { \"inet:127.0.0.1\" }\n", needle);
	snprintf(needle, sizeof(needle), "%s/nosuch.conf:3: plugin \"nosuch\": no nosuch.so or nosuch.la", dir);
	expect_err("nosuch.conf", "plugins = { \"nosuch\" }\n", needle);
	expect_err("abi.conf", "\nplugins = { \"abi_mismatch\" }\n", "plugin ABI 43, but this policyd needs ABI 2");
	snprintf(needle, sizeof(needle), "%s/abi.conf:4: plugin \"abi_mismatch\": ", dir);
	expect_err("abi.conf", "\nplugins = { \"abi_mismatch\" }\n", needle);
	expect_err("sym.conf", "plugins = { \"no_check\" }\n", "descriptor without check");
	expect_err("sym.conf", "plugins = { \"no_check\" }\n", "no_check.so: descriptor without check");
	expect_err("state.conf", "plugins = { \"fake\" }\nfake { protocol_state = { \"RCTP\" } }\n", "protocol_state \"RCTP\"");
	expect_err("nets.conf", "plugins = { \"fake\" }\nfake { skip_networks = { \"10.0.0.0/40\" } }\n",
		   "skip_networks \"10.0.0.0/40\"");
	expect_err("sec.conf", "plugins = { \"fake\" }\nexampel { }\n", "exampel");
	expect_err("act.conf", "on_error = \"\"\n", "on_error: must be one line");
	expect_err("range.conf", "threads = 0\n", "threads = 0: must be between 1 and 1024");
	expect_err("fac.conf", "syslog_facility = \"mial\"\n", "syslog_facility \"mial\"");
	expect_err("sls.conf", "syslog_socket = \"dev/log\"\n", "syslog_socket \"dev/log\": expected an absolute path");
	expect_err("user.conf", "user = \"no-such-user-here\"\n", "no such user");
	expect_err("dflt.conf", "chain \"default\" { plugins = { \"fake\" } }\n", "chain \"default\" is reserved");
	expect_err("missing.conf", "include_nothing\n", "missing.conf:3");
	{
		pd_conf *c;
		char *err;

		stderr_begin();
		c = pd_conf_load("/nonexistent/policyd.conf", 0);
		err = stderr_end();
		CHECK(c == NULL && strstr(err, "/nonexistent/policyd.conf: cannot read"));
		free(err);
	}
}

/* test_world_writable - config files and plugin dirs any user may change are refused */
static void test_world_writable(void)
{
	const char *path = write_conf("ww.conf", "plugins = { \"example\" }\n");
	char needle[600], sub[300], cmd[700];
	pd_conf *c;
	char *err;

	chmod(path, 0666);
	stderr_begin();
	c = pd_conf_load(path, 0);
	err = stderr_end();
	snprintf(needle, sizeof(needle), "%s: writable by every user", path);
	CHECK(c == NULL && strstr(err, needle));
	free(err);
	/* a world-writable plugin directory earlier in plugin_dir */
	snprintf(sub, sizeof(sub), "%s/wwplugins", dir);
	mkdir(sub, 0777);
	chmod(sub, 0777);
	snprintf(cmd, sizeof(cmd), "%s/ww2.conf", dir);
	{
		FILE *f = fopen(cmd, "w");

		fprintf(f, "plugin_dir = \"%s:%s\"\nplugins = { \"example\" }\n", sub, plugdir);
		fclose(f);
	}
	stderr_begin();
	c = pd_conf_load(cmd, 0);
	err = stderr_end();
	snprintf(needle, sizeof(needle), "plugin_dir %s: writable by every user", sub);
	CHECK(c == NULL && strstr(err, needle));
	free(err);
	/* group-writable, and a directory above the file (issue 12.16: only the
	 * file's own S_IWOTH was checked) */
	chmod(path, 0664);
	stderr_begin();
	c = pd_conf_load(path, 0);
	err = stderr_end();
	snprintf(needle, sizeof(needle), "%s: writable by its group", path);
	CHECK(c == NULL && strstr(err, needle));
	free(err);
	chmod(path, 0644);
	snprintf(sub, sizeof(sub), "%s/gw", dir);
	mkdir(sub, 0775);
	chmod(sub, 0775);
	snprintf(cmd, sizeof(cmd), "%s/gw/gw.conf", dir);
	{
		FILE *f = fopen(cmd, "w");

		fprintf(f, "plugin_dir = \"%s\"\nplugins = { \"example\" }\n", plugdir);
		fclose(f);
		chmod(cmd, 0644);
	}
	stderr_begin();
	c = pd_conf_load(cmd, 0);
	err = stderr_end();
	snprintf(needle, sizeof(needle), "directory %s writable by its group", sub);
	CHECK(c == NULL && strstr(err, needle));
	free(err);
	chmod(sub, 0755);
	c = pd_conf_load(cmd, 0);
	CHECK(c != NULL);
	pd_conf_free(c);
	if (geteuid() == 0) { /* a file of another user */
		chown(cmd, 65534, 65534);
		stderr_begin();
		c = pd_conf_load(cmd, 0);
		err = stderr_end();
		CHECK(c == NULL && strstr(err, "belongs to another user"));
		free(err);
	}
}

/* test_list_forms - every way libconfuse accepts a plugins list loads it (found by fuzzing) */
static void test_list_forms(void)
{
	static const char *const forms[] = {
	    "plugins += { \"example\" }\n", "plugins =+ {example}\n", "plugins+ = {example}\n",
	    "plugins = example\n", "chain x { plugins = { \"example\" } }\n",
	};
	char nul[] = "plugins\0= { example }\n";

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		pd_conf *c = pd_conf_load(write_conf("forms.conf", forms[i]), 0);

		CHECK(c != NULL && c->n_mods == 1);
		if (!c)
			printf("form %zu failed: %s", i, forms[i]);
		pd_conf_free(c);
	}
	{
		const char *path = write_conf("nul.conf", "");
		FILE *f = fopen(path, "a");
		pd_conf *c;

		fwrite(nul, 1, sizeof(nul) - 1, f);
		fclose(f);
		stderr_begin();
		c = pd_conf_load(path, 0);
		free(stderr_end());
		CHECK(c == NULL || c->n_mods == 1); /* an error or a sound config, never a crash */
		pd_conf_free(c);
	}
}

/* long_path_conf - a config whose plugin_dir is PAD_DIRS directories that do not exist, then the build's */
static const char *long_path_conf(const char *name, int pad_dirs)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	fputs("plugin_dir = \"", f);
	for (int i = 0; i < pad_dirs; i++)
		fprintf(f, "/nonexistent/padding-directory-%04d:", i);
	fprintf(f, "%s\"\nstate_dir = \"state\"\nplugins = { \"example\" }\n", plugdir);
	fclose(f);
	return path;
}

/* test_long_plugin_dir - a search path longer than 1,023 characters is read whole (the scanner cut
 * it there, so a plugin in a later directory was "not found": distcheck's deep build paths); one
 * longer than the scanner keeps is an error with file:line, never a cut path */
static void test_long_plugin_dir(void)
{
	pd_conf *c = pd_conf_load(long_path_conf("longpath.conf", 60), 0); /* about 2,400 characters */
	char needle[600];

	CHECK(c != NULL);
	pd_conf_free(c);
	snprintf(needle, sizeof(needle), "%s/toolong.conf:1: plugin_dir is longer than 16384 characters", dir);
	{
		char *err;

		stderr_begin();
		c = pd_conf_load(long_path_conf("toolong.conf", 500), 0); /* about 18,000 */
		err = stderr_end();
		CHECK(c == NULL && strstr(err, needle));
		if (!strstr(err, needle))
			printf("expected \"%s\" in: %s\n", needle, err);
		free(err);
		pd_conf_free(c);
	}
}

/* test_start - init failure names the plugin; optional plugins are disabled */
static void test_start(void)
{
	pd_conf *c = pd_conf_load(write_conf("init.conf", "plugins = { \"init_fail\", \"example\" }\n"), 0);
	char *err;

	CHECK(c != NULL);
	if (!c)
		return;
	stderr_begin();
	CHECK(pd_conf_start(c) < 0);
	err = stderr_end();
	CHECK(strstr(err, "init_fail: cannot open the frobnicator") != NULL);
	CHECK(strstr(err, "plugin \"init_fail\"") && strstr(err, "init failed; not starting"));
	free(err);
	pd_conf_free(c);

	c = pd_conf_load(write_conf("opt.conf", "plugins = { \"init_fail\", \"example\" }\ninit_fail { optional = true }\n"),
			 0);
	CHECK(c != NULL);
	if (!c)
		return;
	stderr_begin();
	CHECK(pd_conf_start(c) == 0);
	err = stderr_end();
	CHECK(strstr(err, "disabled because it is optional") != NULL);
	CHECK(c->insts[0]->started == 0 && c->insts[1]->started == 1);
	free(err);
	pd_conf_free(c);
}

int main(void)
{
	const char *b = getenv("PD_BUILDDIR");

	if (!b)
		b = ".";
	snprintf(plugdir, sizeof(plugdir), "%s/tests/plugins/.libs:%s/plugins/example/.libs", b, b);
	snprintf(dir, sizeof(dir), "/tmp/pd-test-conf.XXXXXX");
	if (!mkdtemp(dir))
		return 99;
	pd_log_open("test_conf", LOG_USER, 1, 0);
	pd_loader_init();
	test_good();
	test_errors();
	test_long_plugin_dir();
	test_start();
	test_world_writable();
	test_list_forms();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 99;
	}
	return tap_done();
}
