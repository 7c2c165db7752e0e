/* hoststore.c - the state service as plugins see it: host->store_* on the instance's namespace */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "hoststore.h"
#include "log.h"

#include <stdatomic.h>

/* unavailable - no state service in this build yet: say so once */
static int unavailable(const pd_instance *inst)
{
	static atomic_int said;

	if (!atomic_exchange(&said, 1))
		pd_log(PD_LOG_ERR, "%s: the state service is not available in this build", inst->name);
	return -1;
}

int pd_hoststore_remote(const pd_instance *inst)
{
	(void)inst;
	return 0;
}

int pd_hoststore_count(pd_instance *inst, const char *key, unsigned window_s, long long amount, long long *total)
{
	(void)key, (void)window_s, (void)amount, (void)total;
	return unavailable(inst);
}

int pd_hoststore_set(pd_instance *inst, const char *key, const void *val, size_t len, unsigned ttl_s)
{
	(void)key, (void)val, (void)len, (void)ttl_s;
	return unavailable(inst);
}

int pd_hoststore_get(pd_instance *inst, const char *key, pd_store_value *val)
{
	(void)key, (void)val;
	return unavailable(inst);
}

int pd_hoststore_del(pd_instance *inst, const char *key)
{
	(void)key;
	return unavailable(inst);
}

int pd_hoststore_members(pd_instance *inst, const char *key, const char *member, unsigned ttl_s, long long *count)
{
	(void)key, (void)member, (void)ttl_s, (void)count;
	return unavailable(inst);
}

int pd_hoststore_update(pd_instance *inst, const char *key, pd_store_update_fn *fn, void *arg, int *result)
{
	(void)key, (void)fn, (void)arg, (void)result;
	return unavailable(inst);
}
