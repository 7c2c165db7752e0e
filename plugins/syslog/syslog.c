/* syslog.c - log every request's attributes; never decides anything */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <policyd/plugin.h>

#include "escape.h"

#define LINE_MAX_LEN 1800
#define VALUE_MAX_LEN 200

static cfg_opt_t options[] = {
    /* log level of the lines: debug, info or notice */
    CFG_STR("level", "info", CFGF_NONE),
    /* attributes to log; empty means every attribute of the request */
    CFG_STR_LIST("attributes", "{protocol_state, queue_id, client_address, client_name, helo_name, sender, "
			       "recipient, sasl_username, size}",
		 CFGF_NONE),
    CFG_END(),
};

struct slog {
	int level;
	size_t n;
	char **attrs; /* NULL: all */
};

/* append - add " name=value" to LINE, the value escaped (escape.h) and capped */
static size_t append(char *line, size_t len, const char *name, const char *value)
{
	if (len + strlen(name) + 8 >= LINE_MAX_LEN)
		return len;
	len += (size_t)(stpcpy(line + len, len ? " " : "") - (line + len));
	len += (size_t)(stpcpy(line + len, name) - (line + len));
	line[len++] = '=';
	return len + pd_esc(line + len, LINE_MAX_LEN - len, value, VALUE_MAX_LEN, PD_ESC_TOKEN);
}

/* slog_init - level and attribute list */
static int slog_init(pd_instance *inst)
{
	struct slog *s = calloc(1, sizeof(*s));
	const char *lv = cfg_getstr(inst->cfg, "level");

	if (!s)
		return -1;
	if (strcasecmp(lv, "debug") == 0)
		s->level = PD_LOG_DEBUG;
	else if (strcasecmp(lv, "info") == 0)
		s->level = PD_LOG_INFO;
	else if (strcasecmp(lv, "notice") == 0)
		s->level = PD_LOG_NOTICE;
	else {
		inst->host->log(inst, PD_LOG_ERR, "level \"%s\": expected debug, info or notice", lv);
		free(s);
		return -1;
	}
	s->n = cfg_size(inst->cfg, "attributes");
	if (s->n) {
		s->attrs = calloc(s->n, sizeof(*s->attrs));
		for (size_t i = 0; s->attrs && i < s->n; i++)
			s->attrs[i] = strdup(cfg_getnstr(inst->cfg, "attributes", (unsigned)i));
	}
	inst->data = s;
	inst->blocking = 0; /* logging never waits (the core's log writer drops what syslog cannot take) */
	return 0;
}

/* slog_check - one log line per request */
static int slog_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	struct slog *s = inst->data;
	const pd_host *h = inst->host;
	char line[LINE_MAX_LEN + 8];
	size_t len = 0;

	(void)reply;
	line[0] = 0;
	if (s->n) {
		for (size_t i = 0; i < s->n; i++) {
			const char *v = s->attrs[i] ? h->attr(req, s->attrs[i]) : NULL;

			if (v)
				len = append(line, len, s->attrs[i], v);
		}
	} else {
		const char *name, *value;

		for (size_t i = 0; h->attr_at(req, i, &name, &value) == 0; i++)
			len = append(line, len, name, value);
	}
	h->log(inst, s->level, "%s", line);
	return PD_CHECK_OK;
}

/* slog_fini - free the attribute list */
static void slog_fini(pd_instance *inst)
{
	struct slog *s = inst->data;

	for (size_t i = 0; i < s->n && s->attrs; i++)
		free(s->attrs[i]);
	free(s->attrs);
	free(s);
}

const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "syslog",
    .version = "2.0",
    .description = "logs each request's attributes",
    .default_states = "ALL",
    .options = options,
    .init = slog_init,
    .check = slog_check,
    .fini = slog_fini,
};
