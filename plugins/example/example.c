/* example.c - the template plugin: copy this file to write your own */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * "Your test here": REJECT when the recipient contains a marker (default
 * "policyblock"), or when the sender equals the recipient. It shows every
 * part of the plugin ABI once: the ABI number, the info block with an
 * option table, per-instance data, init/check/fini, host logging and the
 * reply. Build out of tree with
 *	cc -shared -fPIC $(pkg-config --cflags policyd) example.c -o example.so
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <policyd/plugin.h>

/* 1. The ABI number: the core reads it before running any of our code. */
const unsigned pd_plugin_abi = PD_PLUGIN_ABI;

/* 2. Options of our section in policyd.conf. A typo there is reported
 *    with file:line by the core, which also adds its filters
 *    (protocol_state, skip_sasl, skip_networks, optional). */
static cfg_opt_t options[] = {
    CFG_STR("marker", "policyblock", CFGF_NONE),
    CFG_BOOL("reject_sender_is_recipient", cfg_true, CFGF_NONE),
    CFG_STR("reject_text", "5.7.1 Recipient address rejected by policy", CFGF_NONE),
    CFG_END(),
};

/* 3. What we are. NONBLOCKING: check() never waits, so the core may run
 *    it on a network thread. */
const pd_plugin_info pd_plugin = {
    .api = PD_PLUGIN_API,
    .name = "example",
    .version = "1.0",
    .description = "rejects recipients containing a marker, and sender == recipient",
    .flags = PD_PLUGIN_NONBLOCKING,
    .default_states = "RCPT",
    .options = options,
};

/* 4. Per-instance data, owned by us, kept in inst->data. */
struct example {
	char *marker;
	char *text;
	int same;
	atomic_ulong rejected; /* check() runs on several threads at once */
};

/* contains_nocase - does HAY contain NEEDLE, ignoring case */
static int contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return 1;
	return 0;
}

/* pd_plugin_init - read our section into per-instance data */
int pd_plugin_init(pd_instance *inst)
{
	struct example *ex = calloc(1, sizeof(*ex));

	if (!ex) {
		inst->host->log(inst, PD_LOG_ERR, "out of memory");
		return -1;
	}
	ex->marker = strdup(cfg_getstr(inst->cfg, "marker"));
	ex->text = strdup(cfg_getstr(inst->cfg, "reject_text"));
	ex->same = cfg_getbool(inst->cfg, "reject_sender_is_recipient");
	if (!ex->marker || !ex->text || !*ex->marker) {
		inst->host->log(inst, PD_LOG_ERR, "marker must not be empty");
		free(ex->marker);
		free(ex->text);
		free(ex);
		return -1;
	}
	inst->data = ex;
	inst->host->log(inst, PD_LOG_INFO, "rejecting recipients that contain \"%s\"", ex->marker);
	return 0;
}

/* pd_plugin_check - one request: decide, or leave the reply alone (DUNNO) */
int pd_plugin_check(pd_instance *inst, const pd_request *req, pd_reply *reply)
{
	struct example *ex = inst->data;
	const pd_host *h = inst->host;
	const char *rcpt = h->attr(req, "recipient");
	const char *from = h->attr(req, "sender");

	if (rcpt && contains_nocase(rcpt, ex->marker)) {
		atomic_fetch_add(&ex->rejected, 1);
		h->reply(reply, "REJECT %s", ex->text); /* client data never in the format */
		return PD_CHECK_OK;
	}
	if (ex->same && rcpt && from && *from && strcasecmp(rcpt, from) == 0) {
		atomic_fetch_add(&ex->rejected, 1);
		h->reply(reply, "REJECT %s (sender is the recipient)", ex->text);
		return PD_CHECK_OK;
	}
	return PD_CHECK_OK; /* untouched reply: DUNNO, the next plugin runs */
}

/* pd_plugin_fini - free per-instance data */
void pd_plugin_fini(pd_instance *inst)
{
	struct example *ex = inst->data;

	inst->host->log(inst, PD_LOG_INFO, "rejected %lu request(s)", (unsigned long)atomic_load(&ex->rejected));
	free(ex->marker);
	free(ex->text);
	free(ex);
}
