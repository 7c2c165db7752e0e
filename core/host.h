/* host.h - the services the core gives plugins (the pd_host of plugin.h) */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_HOST_H
#define PD_HOST_H

#include <policyd/plugin.h>

/* The host services of the daemon (and of spawn mode). */
extern const pd_host pd_core_host;

#endif
