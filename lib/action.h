/* action.h - is a configured reply one a plugin may give? written once for every plugin */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_ACTION_H
#define PD_ACTION_H

#include <stddef.h>

#define PD_ACTION_MAX 512 /* PD_REPLY_MAX of plugin.h (a plugin checks that they agree) */

/* V is one line of at most PD_ACTION_MAX bytes without control characters, that
 * starts with one of WORDS (NULL-terminated, any case) or a 4NN/5NN code,
 * alone or followed by a space and text. Returns NULL, or why not (for an
 * unknown word: EXPECTED). */
const char *pd_action_error(const char *v, const char *const *words, const char *expected);

#endif
