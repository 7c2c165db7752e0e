/* conf_scan.c - pass 1 over policyd.conf: which plugins, and where to find them */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "conf_scan.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE (4 * 1024 * 1024)
#define MAX_DEPTH 16

enum tok { T_END, T_WORD, T_STR, T_OPEN, T_CLOSE, T_EQ, T_OTHER };

typedef struct lexer {
	const char *p, *end;
	int line;
	char text[1024]; /* current word or string, truncated */
	int tline;       /* line of the current token */
} lexer;

/* skip_space - blanks and the three comment styles of libconfuse */
static void skip_space(lexer *lx)
{
	while (lx->p < lx->end) {
		if (*lx->p == '\n') {
			lx->line++;
			lx->p++;
		} else if (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r' || *lx->p == 0 || *lx->p == '+') {
			/* libconfuse skips NUL bytes; "+=" appends to a list like "=" */
			lx->p++;
		} else if (*lx->p == '#' || (*lx->p == '/' && lx->p + 1 < lx->end && lx->p[1] == '/')) {
			while (lx->p < lx->end && *lx->p != '\n')
				lx->p++;
		} else if (*lx->p == '/' && lx->p + 1 < lx->end && lx->p[1] == '*') {
			lx->p += 2;
			while (lx->p + 1 < lx->end && !(lx->p[0] == '*' && lx->p[1] == '/')) {
				if (*lx->p == '\n')
					lx->line++;
				lx->p++;
			}
			lx->p = lx->p + 2 <= lx->end ? lx->p + 2 : lx->end;
		} else {
			break;
		}
	}
}

/* next - the next token; strings are unescaped minimally */
static enum tok next(lexer *lx)
{
	size_t n = 0;
	char q;

	skip_space(lx);
	lx->tline = lx->line;
	lx->text[0] = 0;
	if (lx->p >= lx->end)
		return T_END;
	switch (*lx->p) {
	case '{':
		lx->p++;
		return T_OPEN;
	case '}':
		lx->p++;
		return T_CLOSE;
	case '=':
		lx->p++;
		return T_EQ;
	case '"':
	case '\'':
		q = *lx->p++;
		while (lx->p < lx->end && *lx->p != q) {
			char c = *lx->p++;

			if (c == '\\' && q == '"' && lx->p < lx->end)
				c = *lx->p++;
			if (c == '\n')
				lx->line++;
			if (n + 1 < sizeof(lx->text))
				lx->text[n++] = c;
		}
		if (lx->p < lx->end)
			lx->p++;
		lx->text[n] = 0;
		return T_STR;
	default:
		break;
	}
	if (strchr(",()+;", *lx->p)) {
		lx->p++;
		return T_OTHER;
	}
	while (lx->p < lx->end && *lx->p && !strchr(" \t\r\n{}=,()\"'#;+", *lx->p)) {
		if (n + 1 < sizeof(lx->text))
			lx->text[n++] = *lx->p;
		lx->p++;
	}
	lx->text[n] = 0;
	if (n == 0) { /* a lone character we do not know: skip it */
		lx->p++;
		return T_OTHER;
	}
	return T_WORD;
}

/* add_name - remember a plugin name and where it was first named */
static int add_name(pd_scan *s, const char *name, int line)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return 0;
	if (s->n >= PD_SCAN_MAX_PLUGINS)
		return -1;
	s->names[s->n] = pd_xstrdup(name);
	s->lines[s->n++] = line;
	return 0;
}

/* scan_list - after "plugins =": a { list } or a single value */
static int scan_list(lexer *lx, pd_scan *s)
{
	enum tok t = next(lx);

	if (t == T_WORD || t == T_STR)
		return add_name(s, lx->text, lx->tline);
	if (t != T_OPEN)
		return 0;
	while ((t = next(lx)) != T_END && t != T_CLOSE)
		if ((t == T_WORD || t == T_STR) && add_name(s, lx->text, lx->tline) < 0)
			return -1;
	return 0;
}

/* pd_conf_scan - find plugin_dir and the plugins lists */
int pd_conf_scan(const char *file, pd_scan *s)
{
	FILE *f = fopen(file, "r");
	char *buf;
	size_t len;
	lexer lx;
	char stack[MAX_DEPTH][32];
	int depth = 0;
	char prev[1024] = "";
	enum tok t, prevt = T_END;

	memset(s, 0, sizeof(*s));
	if (!f) {
		pd_log(PD_LOG_ERR, "%s: cannot read: %s", file, strerror(errno));
		return -1;
	}
	buf = pd_xmalloc(MAX_FILE + 1);
	len = fread(buf, 1, MAX_FILE + 1, f);
	fclose(f);
	if (len > MAX_FILE) {
		pd_log(PD_LOG_ERR, "%s: larger than %d bytes", file, MAX_FILE);
		free(buf);
		return -1;
	}
	lx.p = buf;
	lx.end = buf + len;
	lx.line = 1;
	while ((t = next(&lx)) != T_END) {
		int in_scope = depth == 0 || (depth == 1 && strcmp(stack[0], "chain") == 0);

		if (t == T_OPEN) {
			if (depth < MAX_DEPTH)
				snprintf(stack[depth], sizeof(stack[0]), "%s", prev);
			depth++;
		} else if (t == T_CLOSE) {
			if (depth > 0)
				depth--;
		} else if (t == T_EQ && prevt == T_WORD && in_scope && strcmp(prev, "plugins") == 0) {
			if (scan_list(&lx, s) < 0) {
				pd_log(PD_LOG_ERR, "%s:%d: more than %d plugins", file, lx.tline, PD_SCAN_MAX_PLUGINS);
				pd_conf_scan_free(s);
				free(buf);
				return -1;
			}
			t = T_OTHER;
		} else if (t == T_EQ && prevt == T_WORD && depth == 0 && strcmp(prev, "plugin_dir") == 0) {
			if (next(&lx) == T_STR || lx.text[0]) {
				free(s->plugin_dir);
				s->plugin_dir = pd_xstrdup(lx.text);
			}
			t = T_OTHER;
		}
		/* "chain title {" or "chain \"title\" {": the section's name is the word before the title */
		if (!((t == T_STR || t == T_WORD) && prevt == T_WORD && depth == 0 && strcmp(prev, "chain") == 0)) {
			if (t == T_WORD)
				snprintf(prev, sizeof(prev), "%s", lx.text);
			prevt = t;
		}
	}
	free(buf);
	return 0;
}

/* pd_conf_scan_free - free the names */
void pd_conf_scan_free(pd_scan *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->plugin_dir);
	memset(s, 0, sizeof(*s));
}
