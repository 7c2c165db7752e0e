/* ctor.c - test plugin with a constructor: shows whether the loader ran any of its code */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <policyd/plugin.h>

const unsigned pd_plugin_abi = PD_PLUGIN_ABI;

const pd_plugin_info pd_plugin = {
    .api = PD_PLUGIN_API,
    .name = "ctor",
    .version = "test",
    .description = "test plugin whose constructor creates $PD_CTOR_MARK",
    .flags = PD_PLUGIN_NONBLOCKING,
    .default_states = "RCPT",
    .options = NULL,
};

/* mark - runs when the object is loaded, before any policyd code can look at it */
__attribute__((constructor)) static void mark(void)
{
	const char *path = getenv("PD_CTOR_MARK");
	int fd;

	if (path && (fd = open(path, O_WRONLY | O_CREAT, 0644)) >= 0)
		close(fd);
}

/* pd_plugin_init - nothing to do */
int pd_plugin_init(pd_instance *inst)
{
	return 0;
}

/* pd_plugin_check - DUNNO */
int pd_plugin_check(pd_instance *inst, const pd_request *req, pd_reply *reply)
{
	return PD_CHECK_OK;
}

/* pd_plugin_fini - nothing to free */
void pd_plugin_fini(pd_instance *inst)
{
}
