/* mockhost.c - a test-only pd_host for unit-testing plugins without the daemon */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "mockhost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pd_request {
	size_t n;
	char *name[256];
	char *value[256];
};

struct pd_reply {
	char text[PD_REPLY_MAX + 1];
};

time_t mock_clock = 1700000000;

/* mock_log - print "name: message" to stderr */
static void mock_log(const pd_instance *inst, int level, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[%d] %s: ", level, inst && inst->name ? inst->name : "?");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* mock_now - the injectable test clock */
static time_t mock_now(void)
{
	return mock_clock;
}

/* mock_attr - look up NAME, last one wins */
static const char *mock_attr(const pd_request *req, const char *name)
{
	for (size_t i = req->n; i-- > 0;)
		if (strcmp(req->name[i], name) == 0)
			return req->value[i];
	return NULL;
}

/* mock_attr_count - number of attributes */
static size_t mock_attr_count(const pd_request *req)
{
	return req->n;
}

/* mock_attr_at - the I-th attribute */
static int mock_attr_at(const pd_request *req, size_t i, const char **name, const char **value)
{
	if (i >= req->n)
		return -1;
	*name = req->name[i];
	*value = req->value[i];
	return 0;
}

/* mock_reply - format the reply like the core does (CR/LF to spaces) */
static void mock_reply(pd_reply *reply, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reply->text, sizeof(reply->text), fmt, ap);
	va_end(ap);
	for (char *p = reply->text; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
}

int mock_may_block = 1;

/* mock_may_block_fn - what a plugin sees: 1 as on a worker thread, unless the test says 0 */
static int mock_may_block_fn(void)
{
	return mock_may_block;
}

const pd_host mock_host = {
	.api = PD_PLUGIN_API,
	.log = mock_log,
	.now = mock_now,
	.attr = mock_attr,
	.attr_count = mock_attr_count,
	.attr_at = mock_attr_at,
	.reply = mock_reply,
	.may_block = mock_may_block_fn,
};

/* mock_request_set - add or replace an attribute */
void mock_request_set(pd_request *req, const char *name, const char *value)
{
	for (size_t i = 0; i < req->n; i++)
		if (strcmp(req->name[i], name) == 0) {
			free(req->value[i]);
			req->value[i] = strdup(value);
			return;
		}
	if (req->n >= 256)
		abort();
	req->name[req->n] = strdup(name);
	req->value[req->n] = strdup(value);
	req->n++;
}

/* mock_request_new - build a request from "name=value" strings */
pd_request *mock_request_new(const char *first, ...)
{
	pd_request *req = calloc(1, sizeof(*req));
	va_list ap;

	if (!req)
		abort();
	va_start(ap, first);
	for (const char *kv = first; kv; kv = va_arg(ap, const char *)) {
		const char *eq = strchr(kv, '=');
		char name[128];

		if (!eq || (size_t)(eq - kv) >= sizeof(name))
			abort();
		memcpy(name, kv, (size_t)(eq - kv));
		name[eq - kv] = 0;
		mock_request_set(req, name, eq + 1);
	}
	va_end(ap);
	return req;
}

/* mock_request_free - free a request and its strings */
void mock_request_free(pd_request *req)
{
	for (size_t i = 0; i < req->n; i++) {
		free(req->name[i]);
		free(req->value[i]);
	}
	free(req);
}

/* mock_reply_new - an empty reply */
pd_reply *mock_reply_new(void)
{
	pd_reply *r = calloc(1, sizeof(*r));

	if (!r)
		abort();
	return r;
}

/* mock_reply_text - what the plugin set */
const char *mock_reply_text(const pd_reply *reply)
{
	return reply->text;
}

/* mock_reply_clear - forget the reply */
void mock_reply_clear(pd_reply *reply)
{
	reply->text[0] = 0;
}

/* mock_reply_free - free a reply */
void mock_reply_free(pd_reply *reply)
{
	free(reply);
}

/* mock_instance - fill an instance for unit tests */
void mock_instance(pd_instance *inst, const char *name, cfg_t *cfg, const char *state_dir)
{
	memset(inst, 0, sizeof(*inst));
	inst->host = &mock_host;
	inst->name = name;
	inst->cfg = cfg;
	inst->state_dir = state_dir;
}

/* mock_section - parse TEXT with OPTIONS as a plugin section */
cfg_t *mock_section(cfg_opt_t *options, const char *text)
{
	cfg_t *cfg = cfg_init(options, 0);

	if (!cfg)
		return NULL;
	if (cfg_parse_buf(cfg, text) != CFG_SUCCESS) {
		cfg_free(cfg);
		return NULL;
	}
	return cfg;
}
