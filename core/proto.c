/* proto.c - the Postfix policy delegation protocol: bounded attribute parser, replies */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "proto.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_START 1024
#define OFF_START 64
#define OFF_PER 3 /* per attribute: name offset, value offset, name hash */

/* name_hash - FNV-1a of a name, with its length in the top byte: most
 * lookups are decided by one integer compare instead of a strcmp */
static uint32_t name_hash(const char *name, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)name[i]) * 16777619u;
	return (h & 0xffffffu) | ((uint32_t)(n < 255 ? n : 255) << 24);
}

/* pd_attrs_init - an empty request with no buffers yet */
void pd_attrs_init(pd_attrs *a)
{
	memset(a, 0, sizeof(*a));
}

/* pd_attrs_reset - forget the attributes, keep the buffers */
void pd_attrs_reset(pd_attrs *a)
{
	a->alen = 0;
	a->n = 0;
	a->bytes = 0;
	a->lines = 0;
}

/* pd_attrs_free - release the buffers */
void pd_attrs_free(pd_attrs *a)
{
	free(a->arena);
	free(a->off);
	pd_attrs_init(a);
}

/* pd_attrs_trim - give back memory a large request made us grow */
void pd_attrs_trim(pd_attrs *a)
{
	if (a->acap > 4 * ARENA_START) {
		a->arena = pd_xrealloc(a->arena, ARENA_START);
		a->acap = ARENA_START;
	}
	if (a->ncap > 4 * OFF_START) {
		a->off = pd_xrealloc(a->off, OFF_PER * OFF_START * sizeof(uint32_t));
		a->ncap = OFF_START;
	}
}

/* pd_attrs_get - value of the last attribute called NAME */
const char *pd_attrs_get(const pd_attrs *a, const char *name)
{
	uint32_t h = name_hash(name, strlen(name));

	for (size_t i = a->n; i-- > 0;)
		if (a->off[OFF_PER * i + 2] == h && strcmp(a->arena + a->off[OFF_PER * i], name) == 0)
			return a->arena + a->off[OFF_PER * i + 1];
	return NULL;
}

/* pd_attrs_count - number of attributes */
size_t pd_attrs_count(const pd_attrs *a)
{
	return a->n;
}

/* pd_attrs_at - the I-th attribute */
int pd_attrs_at(const pd_attrs *a, size_t i, const char **name, const char **value)
{
	if (i >= a->n)
		return -1;
	*name = a->arena + a->off[OFF_PER * i];
	*value = a->arena + a->off[OFF_PER * i + 1];
	return 0;
}

/* pd_attrs_add - append name and value to the arena */
int pd_attrs_add(pd_attrs *a, const char *name, size_t nlen, const char *value, size_t vlen)
{
	size_t need = a->alen + nlen + vlen + 2;

	if (need > UINT32_MAX)
		return -1;
	if (need > a->acap) {
		size_t cap = a->acap ? a->acap : ARENA_START;

		while (cap < need)
			cap *= 2;
		a->arena = pd_xrealloc(a->arena, cap);
		a->acap = cap;
	}
	if (a->n >= a->ncap) {
		size_t cap = a->ncap ? a->ncap * 2 : OFF_START;

		a->off = pd_xrealloc(a->off, OFF_PER * cap * sizeof(uint32_t));
		a->ncap = cap;
	}
	a->off[OFF_PER * a->n + 2] = name_hash(name, nlen);
	a->off[OFF_PER * a->n] = (uint32_t)a->alen;
	memcpy(a->arena + a->alen, name, nlen);
	a->alen += nlen;
	a->arena[a->alen++] = 0;
	a->off[OFF_PER * a->n + 1] = (uint32_t)a->alen;
	memcpy(a->arena + a->alen, value, vlen);
	a->alen += vlen;
	a->arena[a->alen++] = 0;
	a->n++;
	return 0;
}

/* valid_name - attribute names are printable words without '=' */
static int valid_name(const char *s, size_t n)
{
	if (n == 0 || n > 128)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f)
			return 0;
	}
	return 1;
}

/* pd_proto_feed - consume complete lines into REQ, within the limits */
enum pd_feed pd_proto_feed(pd_attrs *a, const char *buf, size_t len, size_t *used, const pd_limits *lim,
			   const char **why)
{
	size_t pos = 0;

	*used = 0;
	while (pos < len) {
		const char *line = buf + pos;
		size_t avail = len - pos;
		size_t scan = avail < lim->max_line + 2 ? avail : lim->max_line + 2;
		const char *nl = memchr(line, '\n', scan);
		size_t ll;
		const char *eq;

		if (!nl) {
			if (avail > lim->max_line + 1) {
				*why = "line too long";
				return PD_FEED_ERROR;
			}
			break; /* incomplete line: wait for more */
		}
		ll = (size_t)(nl - line);
		pos += ll + 1;
		*used = pos;
		a->bytes += ll + 1;
		if (ll && line[ll - 1] == '\r')
			ll--;
		if (ll > lim->max_line) {
			*why = "line too long";
			return PD_FEED_ERROR;
		}
		if (a->bytes > lim->max_request) {
			*why = "request too large";
			return PD_FEED_ERROR;
		}
		if (ll == 0) {
			if (a->lines == 0)
				continue; /* stray empty line between requests */
			return PD_FEED_DONE;
		}
		if (++a->lines > lim->max_attrs) {
			*why = "too many attributes";
			return PD_FEED_ERROR;
		}
		eq = memchr(line, '=', ll);
		if (memchr(line, 0, ll)) {
			*why = "line with a NUL byte ignored";
			return PD_FEED_GARBAGE;
		}
		if (!eq || !valid_name(line, (size_t)(eq - line))) {
			*why = "line without name=value ignored";
			return PD_FEED_GARBAGE;
		}
		if (pd_attrs_add(a, line, (size_t)(eq - line), eq + 1, ll - (size_t)(eq - line) - 1) < 0) {
			*why = "request too large";
			return PD_FEED_ERROR;
		}
	}
	return PD_FEED_MORE;
}

/* clean_copy - copy with control characters replaced by spaces */
static size_t clean_copy(char *dst, size_t cap, const char *src)
{
	size_t i = 0;

	for (; src[i] && i + 1 < cap; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	dst[i] = 0;
	return i;
}

/* pd_proto_reply - "action=TEXT\n\n" */
size_t pd_proto_reply(char *out, size_t cap, const char *text)
{
	size_t n = 7;
	size_t room = cap - 7 - 3;

	memcpy(out, "action=", 7);
	if (room > PD_REPLY_MAX + 1)
		room = PD_REPLY_MAX + 1;
	n += clean_copy(out + 7, room, text && *text ? text : "DUNNO");
	out[n++] = '\n';
	out[n++] = '\n';
	out[n] = 0;
	return n;
}

/* pd_reply_set - set a reply from plain text */
void pd_reply_set(pd_reply *reply, const char *text)
{
	clean_copy(reply->text, sizeof(reply->text), text);
}

/* pd_reply_vformat - set a reply printf-style (plugins' host->reply) */
void pd_reply_vformat(pd_reply *reply, const char *fmt, va_list ap)
{
	char tmp[PD_REPLY_MAX + 1];

	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	clean_copy(reply->text, sizeof(reply->text), tmp);
}
