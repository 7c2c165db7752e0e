/* fuzz_conf.c - libFuzzer target: the config scanner (pass 1) and the config loader (both passes) */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Input: the text of a policyd.conf. It is written to a temp file after a
 * first line `plugin_dir = "$PD_FUZZ_PLUGIN_DIR"`, so that the plugins it
 * names (example, syslog, fake, fake2, abi_mismatch, no_check, init_fail,
 * built by tests/fuzz/run) are really loaded and their sections parsed.
 * pd_conf_scan runs on every input; pd_conf_load runs only when the scan
 * still says plugins come from that directory (an input that sets its own
 * plugin_dir could otherwise dlopen any library on the machine). Plugin
 * code other than the ABI symbols never runs (no pd_conf_start).
 * Inputs over 64 KiB are ignored.
 */
#include "config.h"
#include "conf.h"
#include "conf_scan.h"
#include "loader.h"
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_INPUT 65536

static char dir[256];       /* private temp directory */
static char file[300];      /* the config file in it */
static const char *plugdir; /* built plugins */

/* fail - report a broken invariant and abort so libFuzzer keeps the input */
static void fail(const char *what)
{
	fprintf(stderr, "fuzz_conf: invariant broken: %s\n", what);
	abort();
}

/* cleanup - remove the temp file and directory at exit */
static void cleanup(void)
{
	unlink(file);
	rmdir(dir);
}

/* LLVMFuzzerInitialize - temp dir, quiet logger, libltdl */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	pd_log_set_stderr(getenv("PD_FUZZ_VERBOSE") != NULL);
	plugdir = getenv("PD_FUZZ_PLUGIN_DIR");
	if (!plugdir || !*plugdir || strchr(plugdir, '"')) {
		fprintf(stderr, "fuzz_conf: PD_FUZZ_PLUGIN_DIR is not set; plugin sections will not be parsed\n");
		plugdir = "/nonexistent";
	}
	snprintf(dir, sizeof(dir), "%s/pdfuzzconf.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("fuzz_conf: mkdtemp");
		exit(1);
	}
	snprintf(file, sizeof(file), "%s/policyd.conf", dir);
	atexit(cleanup);
	if (pd_loader_init() < 0) {
		fprintf(stderr, "fuzz_conf: pd_loader_init failed\n");
		exit(1);
	}
	return 0;
}

/* check_scan - invariants of pass 1 */
static void check_scan(const pd_scan *s, size_t nlines)
{
	if (s->n > PD_SCAN_MAX_PLUGINS)
		fail("scan: too many plugins");
	for (size_t i = 0; i < s->n; i++) {
		if (!s->names[i])
			fail("scan: NULL plugin name");
		if (s->lines[i] < 1 || (size_t)s->lines[i] > nlines + 1)
			fail("scan: plugin line number outside the file");
		for (size_t k = 0; k < i; k++)
			if (strcmp(s->names[i], s->names[k]) == 0)
				fail("scan: a plugin named twice");
	}
}

/* check_conf - invariants of a configuration that loaded */
static void check_conf(const pd_conf *c)
{
	if (c->n_chains < 1 || !c->chains[0] || strcmp(c->chains[0]->name, "default") != 0)
		fail("load: no default chain first");
	for (size_t i = 0; i < c->n_chains; i++) {
		const pd_chain *ch = c->chains[i];

		if (!ch || !ch->name)
			fail("load: missing chain");
		if (pd_conf_chain(c, ch->name) == NULL)
			fail("load: pd_conf_chain cannot find a chain");
		for (size_t k = 0; k < ch->n; k++)
			if (!ch->insts[k] || !ch->insts[k]->mod)
				fail("load: chain names a plugin that was not loaded");
	}
	for (size_t i = 0; i < c->n_listen; i++)
		if (!c->listen[i].text || !c->listen[i].chain)
			fail("load: listener without text or chain");
	if (c->limits.max_line < 256 || c->limits.max_attrs < 8 || c->limits.max_request < 1024)
		fail("load: limits below their minimum");
	if (!c->default_action || !c->on_error || !c->state_dir || !c->pidfile)
		fail("load: a setting is missing");
	if (c->socket_mode > 07777)
		fail("load: socket_mode out of range");
}

/* LLVMFuzzerTestOneInput - scan and load one config text */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f;
	pd_scan sc;
	size_t nlines = 1;
	int ours;

	if (size > MAX_INPUT)
		return 0;
	f = fopen(file, "w");
	if (!f) {
		perror("fuzz_conf: fopen");
		abort();
	}
	fprintf(f, "plugin_dir = \"%s\"\n", plugdir);
	if (size && fwrite(data, 1, size, f) != size) {
		perror("fuzz_conf: fwrite");
		abort();
	}
	if (fclose(f) != 0) {
		perror("fuzz_conf: fclose");
		abort();
	}
	for (size_t i = 0; i < size; i++)
		nlines += data[i] == '\n';

	if (pd_conf_scan(file, &sc) < 0)
		return 0; /* too many plugins: pass 1 refuses, so does the loader */
	check_scan(&sc, nlines);
	ours = sc.plugin_dir && strcmp(sc.plugin_dir, plugdir) == 0;
	pd_conf_scan_free(&sc);
	if (ours) {
		pd_conf *c = pd_conf_load(file, 0);

		if (c) {
			check_conf(c);
			pd_conf_free(c);
		}
	}
	unlink(file);
	return 0;
}
