/* gl_feed.c - test helper: one greylist request through the plugin on a state dir's store */
/* SPDX-License-Identifier: BSD-2-Clause */
/* usage: gl_feed STATE_DIR NOW 'section text' CLIENT SENDER RECIPIENT [INSTANCE]
 * prints the reply ("DUNNO" when the plugin left it empty, "ERROR" on error). The state
 * service is the core's store code on STATE_DIR/state.db (as the daemon's default store), its
 * clock NOW: what the admin command then reads is what the daemon would have written. */
#include "config.h"
#include <policyd/plugin.h>

#include "gl.h"
#include "store.h"
#include "store_host.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static time_t clock_now;
static pd_store *st;

struct pd_request {
	const char *name[8], *value[8];
	size_t n;
};

struct pd_reply {
	char text[PD_REPLY_MAX + 1];
};

static void f_log(const pd_instance *inst, int level, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[%d] %s: ", level, inst->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void s_log(void *ctx, int level, const char *fmt, ...)
{
	va_list ap;

	(void)ctx;
	fprintf(stderr, "[%d] store: ", level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const char *f_escape(char *dst, size_t cap, const char *src, size_t max)
{
	snprintf(dst, cap, "%.*s", (int)max, src);
	return dst;
}

static time_t f_now(void)
{
	return clock_now;
}

static const char *f_attr(const pd_request *req, const char *name)
{
	for (size_t i = 0; i < req->n; i++)
		if (!strcmp(req->name[i], name))
			return req->value[i];
	return NULL;
}

static void f_reply(pd_reply *reply, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reply->text, sizeof(reply->text), fmt, ap);
	va_end(ap);
}

static int f_remote(const pd_instance *inst)
{
	(void)inst;
	return 0;
}

struct pd_store *pd_store_host_resolve(const pd_instance *inst, int64_t *now)
{
	(void)inst;
	*now = (int64_t)clock_now;
	return st;
}

static const pd_host host = {
	.api = PD_PLUGIN_API, .log = f_log, .escape = f_escape, .now = f_now, .attr = f_attr,
	.reply = f_reply, .store_remote = f_remote, PD_STORE_HOST_ENTRIES,
};

int main(int argc, char **argv)
{
	pd_instance inst;
	pd_request req;
	pd_reply reply = {{0}};
	char path[4096], err[512];
	pd_store_conf sc = {.backend = "gdbm", .lock_timeout_ms = 1000, .log = s_log};
	cfg_t *cfg;
	int r;

	if (argc < 7) {
		fputs("usage: gl_feed DIR NOW SECTION CLIENT SENDER RECIPIENT [INSTANCE]\n", stderr);
		return 2;
	}
	clock_now = (time_t)strtoll(argv[2], NULL, 10);
	cfg = cfg_init(gl_options, CFGF_NONE);
	if (!cfg || cfg_parse_buf(cfg, argv[3]) != CFG_SUCCESS)
		return 2;
	snprintf(path, sizeof(path), "%s/state.db", argv[1]);
	sc.path = path;
	st = pd_store_open(&sc, err, sizeof(err));
	if (!st) {
		fprintf(stderr, "gl_feed: %s\n", err);
		return 3;
	}
	memset(&inst, 0, sizeof(inst));
	memset(&req, 0, sizeof(req));
	inst.host = &host;
	inst.name = "greylist";
	inst.plugin = "greylist";
	inst.cfg = cfg;
	inst.state_dir = argv[1];
	inst.blocking = 1;
	if (pd_plugin.init(&inst) != 0)
		return 3;
	req.name[0] = "protocol_state", req.value[0] = "RCPT";
	req.name[1] = "client_address", req.value[1] = argv[4];
	req.name[2] = "sender", req.value[2] = argv[5];
	req.name[3] = "recipient", req.value[3] = argv[6];
	req.n = 4;
	if (argc > 7)
		req.name[4] = "instance", req.value[4] = argv[7], req.n = 5;
	r = pd_plugin.check(&inst, &req, &reply);
	pd_store_host_release();
	printf("%s\n", r != PD_CHECK_OK ? "ERROR" : reply.text[0] ? reply.text : "DUNNO");
	pd_plugin.fini(&inst);
	pd_store_close(st);
	cfg_free(cfg);
	return 0;
}
