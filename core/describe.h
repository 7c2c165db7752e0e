/* describe.h - policyd -t: what a configuration does, in words */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_DESCRIBE_H
#define PD_DESCRIBE_H

#include <stdio.h>

#include "conf.h"

/* Print to OUT the plugins loaded and, with VERBOSE, the instances, the
 * order in which chains are chosen (rule chains, policy_context,
 * listeners, the default) and each chain's instances. */
void pd_describe(const pd_conf *c, const char *conf_file, int verbose, FILE *out);

#endif
