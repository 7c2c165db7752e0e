/* action.c - is a configured reply one a plugin may give? written once for every plugin */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "action.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

const char *pd_action_error(const char *v, const char *const *words, const char *expected)
{
	size_t w = strcspn(v, " ");

	if (!*v || strlen(v) > PD_ACTION_MAX)
		return "must be an action of at most 512 bytes";
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return "must be one line without control characters";
	if (w == 3 && isdigit((unsigned char)v[0]) && isdigit((unsigned char)v[1]) && isdigit((unsigned char)v[2]))
		return v[0] == '4' || v[0] == '5' ? NULL : "a code must be 4NN or 5NN";
	for (size_t i = 0; words[i]; i++)
		if (w == strlen(words[i]) && !strncasecmp(v, words[i], w))
			return NULL;
	return expected;
}
