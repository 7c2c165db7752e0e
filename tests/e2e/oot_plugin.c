/* oot_plugin.c - a third-party plugin built out of tree against the installed policyd.pc */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Built by tests/e2e/out_of_tree.sh with
 *	cc -shared -fPIC $(pkg-config --cflags policyd) oot_plugin.c -o oot.so
 * (no PD_PLUGIN_MODULE: the exports are unprefixed). Rejects a recipient
 * containing the configured marker (default "oot-block"), else DUNNO.
 */

#include <stdlib.h>
#include <string.h>

#include <policyd/plugin.h>

/* per-instance data: the marker, copied out of the config */
struct oot {
	char *marker;
};

static cfg_opt_t oot_options[] = {
	CFG_STR("marker", "oot-block", CFGF_NONE),
	CFG_END()
};

const unsigned pd_plugin_abi = PD_PLUGIN_ABI;

const pd_plugin_info pd_plugin = {
	.api = PD_PLUGIN_API,
	.name = "oot",
	.version = "1.0",
	.description = "out-of-tree test plugin: rejects a marker recipient",
	.flags = PD_PLUGIN_NONBLOCKING,
	.default_states = "RCPT",
	.options = oot_options,
};

/* Read the marker from the plugin's section. */
int pd_plugin_init(pd_instance *inst)
{
	struct oot *o;
	const char *m = inst->cfg ? cfg_getstr(inst->cfg, "marker") : "oot-block";

	if (m == NULL || *m == '\0') {
		inst->host->log(inst, PD_LOG_ERR, "marker must not be empty");
		return -1;
	}
	o = calloc(1, sizeof(*o));
	if (o == NULL || (o->marker = strdup(m)) == NULL) {
		free(o);
		inst->host->log(inst, PD_LOG_ERR, "out of memory");
		return -1;
	}
	inst->data = o;
	inst->host->log(inst, PD_LOG_INFO, "out-of-tree plugin ready, marker %s", o->marker);
	return 0;
}

/* REJECT when the recipient contains the marker; otherwise leave the reply (DUNNO). */
int pd_plugin_check(pd_instance *inst, const pd_request *req, pd_reply *reply)
{
	const struct oot *o = inst->data;
	const char *rcpt = inst->host->attr(req, "recipient");

	if (rcpt != NULL && strstr(rcpt, o->marker) != NULL)
		inst->host->reply(reply, "REJECT out-of-tree plugin refuses %s", o->marker);
	return PD_CHECK_OK;
}

/* Free the instance data. */
void pd_plugin_fini(pd_instance *inst)
{
	struct oot *o = inst->data;

	if (o != NULL) {
		free(o->marker);
		free(o);
	}
	inst->data = NULL;
}
