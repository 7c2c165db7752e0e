/* duration.c - durations in configuration files: "300", "300s", "5m", "2h", "2d", "1w" */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "duration.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

/* pd_duration_parse - seconds, or a number with one unit letter */
int pd_duration_parse(const char *s, long *out)
{
	char *end;
	long v, mul = 1;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case 0: case 's': break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	case 'w': mul = 7 * 86400; break;
	default: return -1;
	}
	if (*end && end[1])
		return -1;
	if (v > 100L * 365 * 86400 / mul)
		return -1;
	*out = v * mul;
	return 0;
}

/* pd_cfg_duration - the libconfuse callback */
int pd_cfg_duration(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	long v;

	if (pd_duration_parse(value, &v) != 0) {
		cfg_error(cfg, "%s: \"%s\" is not a duration (e.g. 300, 5m, 2h, 2d, 5w)", opt->name, value);
		return -1;
	}
	*(long *)result = v;
	return 0;
}
