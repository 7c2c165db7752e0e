/* hoststore.h - the daemon's side of host->store_*: each instance's store, the clock, the flag */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_HOSTSTORE_H
#define PD_HOSTSTORE_H

#include <policyd/plugin.h>

#include "store_host.h"

/* host->store_remote */
int pd_hoststore_remote(const pd_instance *inst);

#endif
