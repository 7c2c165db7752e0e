/* hoststore.c - the daemon's side of host->store_*: each instance's store, the clock, the flag */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * store_host.c calls the store library; this file says which store an
 * instance has (the section's store = "NAME", opened at start when its
 * plugin declares PD_PLUGIN_STATE) and the clock (the wall clock host->now
 * gives plugins).
 */
#include "config.h"
#include "hoststore.h"
#include "chain.h"
#include "conf_store.h"
#include "log.h"

#include <stdatomic.h>
#include <time.h>

/* pd_store_host_resolve - the open store of INST, or NULL (logged once per instance: every call
 * fails alike) */
pd_store *pd_store_host_resolve(const pd_instance *inst, int64_t *now)
{
	pd_inst *in = (pd_inst *)inst; /* pub is its first member */

	*now = (int64_t)time(NULL);
	if (in->store && in->store->st && (in->mod->desc->flags & PD_PLUGIN_STATE))
		return in->store->st;
	if (atomic_exchange(&in->store_warned, 1))
		return NULL;
	if (!(in->mod->desc->flags & PD_PLUGIN_STATE))
		pd_log(PD_LOG_ERR, "%s: plugin %s uses the state service without PD_PLUGIN_STATE in its flags",
		       inst->name, inst->plugin);
	else
		pd_log(PD_LOG_ERR, "%s: the state service is not open (store \"%s\")", inst->name,
		       in->store ? in->store->name : "?");
	return NULL;
}

/* pd_hoststore_remote - does INST's store wait for the network? */
int pd_hoststore_remote(const pd_instance *inst)
{
	const pd_inst *in = (const pd_inst *)inst;

	return in->store && in->store->st && (in->mod->desc->flags & PD_PLUGIN_STATE) ? pd_store_remote(in->store->st)
										      : 0;
}
