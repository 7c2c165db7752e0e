/* proto.h - the Postfix policy delegation protocol: bounded attribute parser, replies */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_PROTO_H
#define PD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <policyd/plugin.h>

/* Bounds on what a client may send. */
typedef struct pd_limits {
	size_t max_line;    /* longest line, without its newline */
	size_t max_attrs;   /* attributes (and garbage lines) per request */
	size_t max_request; /* bytes per request */
} pd_limits;

/* The attributes of a request: every "name=value" line kept, known or
 * not. The arena holds "name\0value\0" pairs; OFF holds their offsets. */
typedef struct pd_attrs {
	char *arena;
	size_t alen, acap;
	uint32_t *off; /* 3 per attribute: name, value offsets, name hash */
	size_t n, ncap;
	size_t bytes;  /* raw bytes of the request so far */
	size_t lines;  /* attribute and garbage lines so far */
} pd_attrs;

/* The reply a plugin fills through pd_host.reply. */
struct pd_reply {
	char text[PD_REPLY_MAX + 1];
};

void pd_attrs_init(pd_attrs *a);
void pd_attrs_reset(pd_attrs *a); /* forget attributes, keep buffers */
void pd_attrs_free(pd_attrs *a);  /* release buffers */
/* Shrink buffers grown by a big request back to their starting size. */
void pd_attrs_trim(pd_attrs *a);

/* Attribute lookup: last occurrence wins; NULL if absent. */
const char *pd_attrs_get(const pd_attrs *a, const char *name);
size_t pd_attrs_count(const pd_attrs *a);
int pd_attrs_at(const pd_attrs *a, size_t i, const char **name, const char **value);
/* Add an attribute (tests and the parser). 0, or -1 past the limits. */
int pd_attrs_add(pd_attrs *a, const char *name, size_t nlen, const char *value, size_t vlen);

enum pd_feed {
	PD_FEED_MORE,    /* all complete lines consumed; need more bytes */
	PD_FEED_DONE,    /* a request is complete (its empty line consumed) */
	PD_FEED_GARBAGE, /* one bad line skipped: log WHY, then feed again */
	PD_FEED_ERROR,   /* a bound was crossed: log WHY, close the connection */
};

/* Consume lines from BUF[0..LEN) into REQ. *USED returns the bytes
 * consumed (the caller keeps the rest for the next call). AT_EOF: the
 * client will send nothing more. WHY points to static text. */
enum pd_feed pd_proto_feed(pd_attrs *a, const char *buf, size_t len, size_t *used, const pd_limits *lim,
			   const char **why);

/* Format "action=TEXT\n\n" into OUT (capacity CAP >= PD_REPLY_MAX + 10);
 * control characters in TEXT become spaces. Returns the length. */
size_t pd_proto_reply(char *out, size_t cap, const char *text);

/* Copy TEXT into a reply, replacing control characters, capped. */
void pd_reply_set(pd_reply *reply, const char *text);
void pd_reply_vformat(pd_reply *reply, const char *fmt, va_list ap) PD_PRINTF(2, 0);

#endif
