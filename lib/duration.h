/* duration.h - durations in configuration files: "300", "300s", "5m", "2h", "2d", "1w" */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_DURATION_H
#define PD_DURATION_H

#include <confuse.h>

/* S as seconds in *OUT: digits, then nothing or one of s m h d w; at most
 * 100 years. 0, or -1 if malformed (nothing stored). */
int pd_duration_parse(const char *s, long *out);

/* A libconfuse parse callback for CFG_INT_CB options given as durations:
 * CFG_INT_CB("delay", 300, CFGF_NONE, pd_cfg_duration). A bad value is a
 * file:line error naming the option and the forms it takes. */
int pd_cfg_duration(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result);

#endif
