/* ctor.c - test plugin with a constructor: shows whether the loader ran any of its code */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <policyd/plugin.h>

/* mark - runs when the object is loaded, before any policyd code can look at it */
__attribute__((constructor)) static void mark(void)
{
	const char *path = getenv("PD_CTOR_MARK");
	int fd;

	if (path && (fd = open(path, O_WRONLY | O_CREAT, 0644)) >= 0)
		close(fd);
}

/* ctor_init - nothing to do */
static int ctor_init(pd_instance *inst)
{
	return 0;
}

/* ctor_check - DUNNO */
static int ctor_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	return PD_CHECK_OK;
}

/* ctor_fini - nothing to free */
static void ctor_fini(pd_instance *inst)
{
}

const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "ctor",
    .version = "test",
    .description = "test plugin whose constructor creates $PD_CTOR_MARK",
    .init = ctor_init,
    .check = ctor_check,
    .fini = ctor_fini,
};
