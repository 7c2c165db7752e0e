/* no_check.c - test plugin whose descriptor has no check: must be refused */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdlib.h>

#include <policyd/plugin.h>

/* abort_init - must never run */
static int abort_init(pd_instance *inst)
{
	abort();
}

/* abort_fini - must never run */
static void abort_fini(pd_instance *inst)
{
	abort();
}

const pd_plugin_desc pd_plugin = {PD_PLUGIN_HEADER, .name = "no_check", .init = abort_init, .fini = abort_fini};
