/* supervise.h - the master process: it keeps the sockets, runs the serving process and restarts it when it dies */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_SUPERVISE_H
#define PD_SUPERVISE_H

#include "conf.h"
#include "serve.h"

/* Run the serving process for C and restart it when it dies; NOTIFY (or -1)
 * gets the first start-up status. Returns 0 after SIGTERM, 1 when the first
 * start failed. */
int pd_supervise(pd_conf *c, const pd_run_args *a, int notify);

#endif
