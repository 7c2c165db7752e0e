/* query.h - policyd -q: requests from a file through the configured chains, each plugin's verdict printed */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_QUERY_H
#define PD_QUERY_H

#include "conf.h"

/* Start CONF's plugins, answer the requests of FILE ("name=value" lines,
 * an empty line after each; the last one may lack it) as one connection
 * would be answered, print the chain each request takes, every instance's
 * verdict and the answer on stdout. Frees CONF. The exit status: 0, or 1
 * when the file cannot be read or a request was refused as malformed. */
int pd_query_run(pd_conf *conf, const char *file);

#endif
