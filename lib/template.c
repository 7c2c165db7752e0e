/* template.c - reply texts with %x fields filled in ("client [%a] blocked using %z"), written once for every plugin */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "template.h"

#include <string.h>

/* pd_template - fill in FMT's fields */
void pd_template(char *out, size_t cap, const char *fmt, const char *letters, const char *const *values)
{
	size_t n = 0;

	if (!cap)
		return;
	for (const char *p = fmt; *p && n + 1 < cap; p++) {
		const char *ins, *at;

		if (*p != '%' || !p[1]) {
			out[n++] = *p;
			continue;
		}
		p++;
		at = *p ? strchr(letters, *p) : NULL;
		if (!at) {
			out[n++] = *p;
			continue;
		}
		for (ins = values[at - letters]; ins && *ins && n + 1 < cap;)
			out[n++] = *ins++;
	}
	out[n] = 0;
}
