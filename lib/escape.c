/* escape.c - client data made safe for a log line: one escaping rule for the core and every plugin */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "escape.h"

#include <string.h>

/* must_escape - does byte C need \xHH under FLAGS */
static int must_escape(unsigned char c, unsigned flags)
{
	if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
		return 1;
	return (flags & PD_ESC_TOKEN) && (c == ' ' || c == '<' || c == '>');
}

/* pd_esc - escaped, capped copy of SRC */
size_t pd_esc(char *dst, size_t cap, const char *src, size_t max, unsigned flags)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i = 0;

	if (cap == 0)
		return 0;
	if (!src)
		src = "";
	for (; src[i] && i < max; i++) {
		unsigned char c = (unsigned char)src[i];
		size_t need = must_escape(c, flags) ? 4 : 1;

		if (o + need + 1 > cap)
			break;
		if (need == 4) {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		} else {
			dst[o++] = (char)c;
		}
	}
	if (src[i]) { /* cut: mark it, in the room we have */
		while (o > 0 && o + 4 > cap)
			o--;
		if (o + 4 <= cap) {
			memcpy(dst + o, "...", 3);
			o += 3;
		}
	}
	dst[o] = 0;
	return o;
}
