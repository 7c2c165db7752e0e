/* no_check.c - test plugin missing its check symbol: must be refused */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdlib.h>

#include <policyd/plugin.h>

const unsigned pd_plugin_abi = PD_PLUGIN_ABI;
const pd_plugin_info pd_plugin = {.api = PD_PLUGIN_API, .name = "no_check"};

/* pd_plugin_init - must never run */
int pd_plugin_init(pd_instance *inst)
{
	abort();
}

/* pd_plugin_fini - must never run */
void pd_plugin_fini(pd_instance *inst)
{
	abort();
}
