/* fake.c - scriptable test plugin: its section says what check() answers */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <policyd/plugin.h>

#ifndef FAKE_NAME
#define FAKE_NAME "fake"
#endif

const unsigned pd_plugin_abi = PD_PLUGIN_ABI;

static cfg_opt_t options[] = {
    CFG_STR("action", "", CFGF_NONE),        /* reply to send ("" = DUNNO) */
    CFG_BOOL("fail", cfg_false, CFGF_NONE),  /* return PD_CHECK_ERROR */
    CFG_INT("sleep_ms", 0, CFGF_NONE),       /* block this long first (slow DNS) */
    CFG_STR("echo", "", CFGF_NONE),          /* reply "DEFER_IF_PERMIT <value of this attribute>" */
    CFG_STR("trigger", "", CFGF_NONE),       /* only act when the recipient contains this */
    CFG_BOOL("crash", cfg_false, CFGF_NONE), /* abort() the process (supervision tests) */
    CFG_END(),
};

const pd_plugin_info pd_plugin = {
    .api = PD_PLUGIN_API,
    .name = FAKE_NAME,
    .version = "test",
    .description = "test plugin",
    .flags = 0, /* may block: runs on the worker pool */
    .default_states = "RCPT",
    .options = options,
};

/* pd_plugin_init - nothing to prepare; the section is read at check time */
int pd_plugin_init(pd_instance *inst)
{
	return 0;
}

/* pd_plugin_check - do what the section says */
int pd_plugin_check(pd_instance *inst, const pd_request *req, pd_reply *reply)
{
	const char *trigger = cfg_getstr(inst->cfg, "trigger");
	const char *rcpt = inst->host->attr(req, "recipient");
	const char *echo = cfg_getstr(inst->cfg, "echo");
	long ms = cfg_getint(inst->cfg, "sleep_ms");

	if (*trigger && (!rcpt || !strstr(rcpt, trigger)))
		return PD_CHECK_OK;
	if (cfg_getbool(inst->cfg, "crash"))
		abort();
	if (ms > 0)
		usleep((useconds_t)ms * 1000);
	if (cfg_getbool(inst->cfg, "fail"))
		return PD_CHECK_ERROR;
	if (*echo) {
		const char *v = inst->host->attr(req, echo);

		inst->host->reply(reply, "DEFER_IF_PERMIT %s=%s", echo, v ? v : "(none)");
		return PD_CHECK_OK;
	}
	if (*cfg_getstr(inst->cfg, "action"))
		inst->host->reply(reply, "%s", cfg_getstr(inst->cfg, "action"));
	return PD_CHECK_OK;
}

/* pd_plugin_fini - nothing to free */
void pd_plugin_fini(pd_instance *inst)
{
}
