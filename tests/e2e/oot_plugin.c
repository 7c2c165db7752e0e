/* oot_plugin.c - a third-party plugin built out of tree against the installed policyd.pc */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Built by tests/e2e/out_of_tree.sh with
 *	cc -shared -fPIC $(pkg-config --cflags policyd) oot_plugin.c -o oot.so
 * and unit-tested there with the installed mock host (oot_test.c). Rejects a
 * recipient containing the configured marker (default "oot-block"); with
 * check_mx = true, also a sender domain without an MX record (DNS through
 * the core, waiting with PD_CHECK_WAIT), else DUNNO.
 */

#include <stdlib.h>
#include <string.h>

#include <policyd/plugin.h>

/* per-instance data: the marker, copied out of the config */
struct oot {
	char *marker;
	int check_mx;
};

static cfg_opt_t oot_options[] = {
	CFG_STR("marker", "oot-block", CFGF_NONE),
	CFG_BOOL("check_mx", cfg_false, CFGF_NONE),
	CFG_END()
};

/* oot_init - read the section */
static int oot_init(pd_instance *inst)
{
	struct oot *o;
	const char *m = cfg_getstr(inst->cfg, "marker");

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
	o->check_mx = cfg_getbool(inst->cfg, "check_mx");
	inst->data = o;
	inst->blocking = 0; /* never waits on a thread: DNS goes through host->dns */
	inst->host->log(inst, PD_LOG_INFO, "out-of-tree plugin ready, marker %s", o->marker);
	return 0;
}

/* oot_check - REJECT the marker; with check_mx, a sender domain without MX */
static int oot_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	const struct oot *o = inst->data;
	const char *rcpt = inst->host->attr(req, "recipient");
	const char *sender = inst->host->attr(req, "sender");
	const char *at = sender ? strrchr(sender, '@') : NULL;

	if (rcpt != NULL && strstr(rcpt, o->marker) != NULL) {
		inst->host->reply(reply, "REJECT out-of-tree plugin refuses %s", o->marker);
		return PD_CHECK_OK;
	}
	if (o->check_mx && at && at[1]) {
		const pd_dns_answer *a;
		int st = inst->host->dns(req, at + 1, PD_DNS_MX, &a);

		if (st == PD_DNS_PENDING)
			return PD_CHECK_WAIT; /* run again when the answer is in */
		if (st == PD_DNS_NXDOMAIN || (st == PD_DNS_OK && a->n == 0))
			inst->host->reply(reply, "REJECT 5.7.1 sender domain has no MX");
	}
	return PD_CHECK_OK;
}

/* oot_fini - free the instance data */
static void oot_fini(pd_instance *inst)
{
	struct oot *o = inst->data;

	if (o != NULL) {
		free(o->marker);
		free(o);
	}
	inst->data = NULL;
}

const pd_plugin_desc pd_plugin = {
	PD_PLUGIN_HEADER,
	.name = "oot",
	.version = "2.0",
	.description = "out-of-tree test plugin: rejects a marker recipient",
	.default_states = "RCPT",
	.options = oot_options,
	.init = oot_init,
	.check = oot_check,
	.fini = oot_fini,
};
