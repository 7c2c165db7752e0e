/* conf_scan.c - pass 1 over policyd.conf: which plugins and instances, where to find them, titles filled in */
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
	char text[PD_SCAN_TEXT_MAX + 1]; /* current word or string, truncated (then TRUNCATED is set) */
	int truncated;
	int tline;       /* line of the current token */
	const char *tpos; /* where the current token starts */
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
	lx->tpos = lx->p;
	lx->text[0] = 0;
	lx->truncated = 0;
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
			else
				lx->truncated = 1;
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
		else
			lx->truncated = 1;
		lx->p++;
	}
	lx->text[n] = 0;
	if (n == 0) { /* a lone character we do not know: skip it */
		lx->p++;
		return T_OTHER;
	}
	return T_WORD;
}

/* add_name - remember an instance name and where it was first named */
static int add_name(pd_scan *s, const char *name, int line)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return 0;
	if (s->n >= PD_SCAN_MAX_INSTANCES)
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

/* core_section - a top-level section of the core's own: NULL for a plugin's,
 * else the title an untitled one gets ("" : none, it takes no title) */
static const char *core_section(const char *word)
{
	if (strcmp(word, "dns") == 0)
		return "";
	if (strcmp(word, "chain") == 0)
		return ""; /* its title is required: libconfuse says so */
	if (strcmp(word, "store") == 0)
		return "default";
	return NULL;
}

/* pd_scan_module_of - the plugin of instance NAME */
const char *pd_scan_module_of(const pd_scan *s, const char *name)
{
	for (size_t i = 0; i < s->n_sections; i++)
		if (strcmp(s->sec_title[i], name) == 0)
			return s->sec_module[i];
	return name;
}

/* add_module - a plugin to load, once */
static int add_module(pd_scan *s, const char *name, int line)
{
	for (size_t i = 0; i < s->n_modules; i++)
		if (strcmp(s->modules[i], name) == 0)
			return 0;
	if (s->n_modules >= PD_SCAN_MAX_PLUGINS)
		return -1;
	s->modules[s->n_modules] = pd_xstrdup(name);
	s->module_lines[s->n_modules++] = line;
	return 0;
}

/* out - a growing output text */
typedef struct out {
	char *p;
	size_t len, cap;
} out;

/* put - append N bytes */
static void put(out *o, const char *p, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		o->cap = (o->len + n + 1) * 2;
		o->p = pd_xrealloc(o->p, o->cap);
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
	o->p[o->len] = 0;
}

/* put_title - append ' "TITLE" ' (TITLE is a plain word) */
static void put_title(out *o, const char *title)
{
	put(o, " \"", 2);
	put(o, title, strlen(title));
	put(o, "\" ", 2);
}

/* pd_conf_scan - find plugin_dir, the plugins lists and the sections; fill in titles */
int pd_conf_scan(const char *file, pd_scan *s)
{
	FILE *f = fopen(file, "r");
	char *buf;
	size_t len;
	lexer lx;
	char stack[MAX_DEPTH][32];
	int depth = 0;
	char prev[1024] = "", prev2[1024] = "";
	enum tok t, prevt = T_END, prevt2 = T_END;
	const char *copied;
	out o = {0};

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
	copied = buf;
	while ((t = next(&lx)) != T_END) {
		int in_scope = depth == 0 || (depth == 1 && strcmp(stack[0], "chain") == 0);

		if (t == T_OPEN) {
			if (depth == 0 && prevt == T_WORD && !(prevt2 == T_WORD && core_section(prev2))) {
				/* WORD { : an untitled section at the top */
				const char *title = core_section(prev);

				if (!title || *title) {
					put(&o, copied, (size_t)(lx.tpos - copied));
					put_title(&o, title ? title : prev);
					copied = lx.tpos;
				}
				if (!title && s->n_sections < PD_SCAN_MAX_INSTANCES) {
					s->sec_title[s->n_sections] = pd_xstrdup(prev);
					s->sec_module[s->n_sections] = pd_xstrdup(prev);
					s->sec_line[s->n_sections++] = lx.tline;
				}
			} else if (depth == 0 && (prevt == T_STR || prevt == T_WORD) && prevt2 == T_WORD &&
				   !core_section(prev2) && s->n_sections < PD_SCAN_MAX_INSTANCES) {
				/* MODULE "TITLE" { : instance TITLE of plugin MODULE */
				s->sec_title[s->n_sections] = pd_xstrdup(prev);
				s->sec_module[s->n_sections] = pd_xstrdup(prev2);
				s->sec_line[s->n_sections++] = lx.tline;
			}
			if (depth < MAX_DEPTH)
				snprintf(stack[depth], sizeof(stack[0]), "%s",
					 prevt2 == T_WORD && (prevt == T_STR || prevt == T_WORD) ? prev2 : prev);
			depth++;
		} else if (t == T_CLOSE) {
			if (depth > 0)
				depth--;
		} else if (t == T_EQ && prevt == T_WORD && in_scope && strcmp(prev, "plugins") == 0) {
			if (scan_list(&lx, s) < 0) {
				pd_log(PD_LOG_ERR, "%s:%d: more than %d plugin instances", file, lx.tline,
				       PD_SCAN_MAX_INSTANCES);
				goto fail;
			}
			t = T_OTHER;
		} else if (t == T_EQ && prevt == T_WORD && depth == 0 && strcmp(prev, "plugin_dir") == 0) {
			if (next(&lx) == T_STR || lx.text[0]) {
				if (lx.truncated) { /* never a cut search path: plugins from the wrong place */
					pd_log(PD_LOG_ERR, "%s:%d: plugin_dir is longer than %d characters", file, lx.tline,
					       PD_SCAN_TEXT_MAX);
					goto fail;
				}
				free(s->plugin_dir);
				s->plugin_dir = pd_xstrdup(lx.text);
			}
			t = T_OTHER;
		}
		snprintf(prev2, sizeof(prev2), "%s", prev);
		prevt2 = prevt;
		snprintf(prev, sizeof(prev), "%.1023s", (t == T_WORD || t == T_STR) ? lx.text : ""); /* names are short */
		prevt = t;
	}
	put(&o, copied, (size_t)(lx.end - copied));
	/* the plugins to load: those of the instances named, first use first */
	for (size_t i = 0; i < s->n; i++)
		if (add_module(s, pd_scan_module_of(s, s->names[i]), s->lines[i]) < 0) {
			pd_log(PD_LOG_ERR, "%s:%d: more than %d plugins", file, s->lines[i], PD_SCAN_MAX_PLUGINS);
			goto fail;
		}
	/* an instance named without a section gets an empty one, after the last line */
	put(&o, "\n", 1);
	for (size_t i = 0; i < s->n; i++) {
		const char *mod = pd_scan_module_of(s, s->names[i]);
		int has = 0;

		for (size_t k = 0; k < s->n_sections && !has; k++)
			has = strcmp(s->sec_title[k], s->names[i]) == 0;
		if (!has && strcmp(mod, s->names[i]) == 0 && strspn(mod, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == strlen(mod)) {
			put(&o, mod, strlen(mod));
			put_title(&o, mod);
			put(&o, "{}\n", 3);
		}
	}
	free(buf);
	s->text = o.p;
	s->len = o.len;
	return 0;
fail:
	free(o.p);
	free(buf);
	pd_conf_scan_free(s);
	return -1;
}

/* pd_conf_scan_free - free the names and the text */
void pd_conf_scan_free(pd_scan *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->names[i]);
	for (size_t i = 0; i < s->n_sections; i++) {
		free(s->sec_title[i]);
		free(s->sec_module[i]);
	}
	for (size_t i = 0; i < s->n_modules; i++)
		free(s->modules[i]);
	free(s->plugin_dir);
	free(s->text);
	memset(s, 0, sizeof(*s));
}
