/* init_fail.c - test plugin whose init fails with a reason */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <policyd/plugin.h>

/* fail_init - always fails, saying why */
static int fail_init(pd_instance *inst)
{
	inst->host->log(inst, PD_LOG_ERR, "cannot open the frobnicator (test failure)");
	return -1;
}

/* fail_check - answers if it ever runs, so a test can tell */
static int fail_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	inst->host->reply(reply, "REJECT init_fail plugin ran");
	return PD_CHECK_OK;
}

/* fail_fini - nothing to free */
static void fail_fini(pd_instance *inst)
{
}

const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER, .name = "init_fail", .init = fail_init, .check = fail_check, .fini = fail_fini};
