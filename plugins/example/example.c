/* example.c - the template plugin: copy this file to write your own */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * "Your test here": REJECT when the recipient contains a marker (default
 * "policyblock"), or when the sender equals the recipient. It shows every
 * part of the plugin ABI once: the descriptor with its option table,
 * per-instance data, init/check/fini, saying at init that check() never
 * waits, host logging with escaped client data, and the reply. Build out
 * of tree with
 *	cc -shared -fPIC $(pkg-config --cflags policyd) example.c -o example.so
 * and unit-test it with the mock host (pkg-config policyd-mockhost).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <policyd/plugin.h>

/* 1. Options of our section in policyd.conf. A typo there is reported
 *    with file:line by the core, which also adds its filters
 *    (protocol_state, skip_sasl, skip_networks, optional). */
static cfg_opt_t options[] = {
    CFG_STR("marker", "policyblock", CFGF_NONE),
    CFG_BOOL("reject_sender_is_recipient", cfg_true, CFGF_NONE),
    CFG_STR("reject_text", "5.7.1 Recipient address rejected by policy", CFGF_NONE),
    CFG_END(),
};

/* 2. Per-instance data, owned by us, kept in inst->data. */
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

/* example_init - read our section into per-instance data */
static int example_init(pd_instance *inst)
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
	inst->blocking = 0; /* check() never waits: it runs on the network threads */
	inst->host->log(inst, PD_LOG_INFO, "rejecting recipients that contain \"%s\"", ex->marker);
	return 0;
}

/* example_check - one request: decide, or leave the reply alone (DUNNO) */
static int example_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	struct example *ex = inst->data;
	const pd_host *h = inst->host;
	const char *rcpt = h->attr(req, "recipient");
	const char *from = h->attr(req, "sender");

	if (rcpt && contains_nocase(rcpt, ex->marker)) {
		char esc[300];

		atomic_fetch_add(&ex->rejected, 1);
		if (inst->verbose) /* client data: escaped, and never in the format */
			h->log(inst, PD_LOG_DEBUG, "recipient <%s> has the marker", h->escape(esc, sizeof(esc), rcpt, 64));
		h->reply(reply, "REJECT %s", ex->text);
		return PD_CHECK_OK;
	}
	if (ex->same && rcpt && from && *from && strcasecmp(rcpt, from) == 0) {
		atomic_fetch_add(&ex->rejected, 1);
		h->reply(reply, "REJECT %s (sender is the recipient)", ex->text);
		return PD_CHECK_OK;
	}
	return PD_CHECK_OK; /* untouched reply: DUNNO, the next plugin runs */
}

/* example_fini - free per-instance data */
static void example_fini(pd_instance *inst)
{
	struct example *ex = inst->data;

	inst->host->log(inst, PD_LOG_INFO, "rejected %lu request(s)", (unsigned long)atomic_load(&ex->rejected));
	free(ex->marker);
	free(ex->text);
	free(ex);
}

/* 3. The one export: what we are, read by the core before any of our code
 *    runs (the ABI number first). */
const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "example",
    .version = "2.0",
    .description = "rejects recipients containing a marker, and sender == recipient",
    .default_states = "RCPT",
    .options = options,
    .init = example_init,
    .check = example_check,
    .fini = example_fini,
};
