/* mockstore.h - the mock host's state service (private to libpolicyd-mockhost) */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef MOCKSTORE_H
#define MOCKSTORE_H

#include <policyd/plugin.h>

/* host->store_remote: what mock_store_set_remote said */
int mockstore_remote(const pd_instance *inst);
/* 0 when INST's plugin did not declare PD_PLUGIN_STATE (mockhost.c) */
int mockstore_allowed(const pd_instance *inst);

#endif
