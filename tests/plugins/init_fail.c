/* init_fail.c - test plugin whose init fails with a reason */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <policyd/plugin.h>

const unsigned pd_plugin_abi = PD_PLUGIN_ABI;
const pd_plugin_info pd_plugin = {.api = PD_PLUGIN_API, .name = "init_fail", .flags = PD_PLUGIN_NONBLOCKING};

/* pd_plugin_init - always fails, saying why */
int pd_plugin_init(pd_instance *inst)
{
	inst->host->log(inst, PD_LOG_ERR, "cannot open the frobnicator (test failure)");
	return -1;
}

/* pd_plugin_check - answers if it ever runs, so a test can tell */
int pd_plugin_check(pd_instance *inst, const pd_request *req, pd_reply *reply)
{
	inst->host->reply(reply, "REJECT init_fail plugin ran");
	return PD_CHECK_OK;
}

/* pd_plugin_fini - nothing to free */
void pd_plugin_fini(pd_instance *inst)
{
}
