/* abi_mismatch.c - test plugin built for another ABI: must be refused unrun */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdlib.h>

#include <policyd/plugin.h>

/* abort_init - must never run: aborts if it does */
static int abort_init(pd_instance *inst)
{
	abort();
}

/* abort_check - never reached */
static int abort_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	abort();
}

/* abort_fini - never reached */
static void abort_fini(pd_instance *inst)
{
	abort();
}

const pd_plugin_desc pd_plugin = {
    .abi = PD_PLUGIN_ABI + 41,
    .api = PD_PLUGIN_API,
    .name = "abi_mismatch",
    .init = abort_init,
    .check = abort_check,
    .fini = abort_fini,
};
