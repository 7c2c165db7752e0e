/* escape.h - client data made safe for a log line: one escaping rule for the core and every plugin */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_ESCAPE_H
#define PD_ESCAPE_H

#include <stddef.h>

/* Escape also what would end a token of a "name=value" or "name=<value>"
 * field: space, '<' and '>' (HELO names, addresses); without it only what
 * would end a quoted "..." field, so that action text keeps its spaces. */
#define PD_ESC_TOKEN 1u

/* Copy at most MAX bytes of SRC (NULL: "") into DST (capacity CAP > 4) so
 * that it cannot forge a field or a line: control characters (CR, LF, TAB,
 * ESC ...), DEL, '"' and '\\' (and with PD_ESC_TOKEN space, '<', '>')
 * become \xHH; other bytes, UTF-8 included, stay. A copy cut short (MAX or
 * CAP) ends in "...". Returns the length written. */
size_t pd_esc(char *dst, size_t cap, const char *src, size_t max, unsigned flags);

#endif
