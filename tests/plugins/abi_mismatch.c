/* abi_mismatch.c - test plugin built for another ABI: must be refused unrun */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdlib.h>

#include <policyd/plugin.h>

const unsigned pd_plugin_abi = PD_PLUGIN_ABI + 41;
const pd_plugin_info pd_plugin = {.api = PD_PLUGIN_API, .name = "abi_mismatch"};

/* pd_plugin_init - must never run: aborts if it does */
int pd_plugin_init(pd_instance *inst)
{
	abort();
}

/* pd_plugin_check - never reached */
int pd_plugin_check(pd_instance *inst, const pd_request *req, pd_reply *reply)
{
	abort();
}

/* pd_plugin_fini - never reached */
void pd_plugin_fini(pd_instance *inst)
{
	abort();
}
