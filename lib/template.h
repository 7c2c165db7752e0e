/* template.h - reply texts with %x fields filled in ("client [%a] blocked using %z"), written once for every plugin */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_TEMPLATE_H
#define PD_TEMPLATE_H

#include <stddef.h>

/* Copy FMT into OUT (capacity CAP, always NUL-terminated, cut short if
 * need be) with each %C, C one of the characters of LETTERS, replaced by
 * VALUES[i] for LETTERS[i] (NULL: nothing); %% and any other %C give C. */
void pd_template(char *out, size_t cap, const char *fmt, const char *letters, const char *const *values);

#endif
