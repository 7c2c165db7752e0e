/* hoststore.h - the state service as plugins see it: host->store_* on the instance's namespace */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_HOSTSTORE_H
#define PD_HOSTSTORE_H

#include <policyd/plugin.h>

int pd_hoststore_remote(const pd_instance *inst);
int pd_hoststore_count(pd_instance *inst, const char *key, unsigned window_s, long long amount, long long *total);
int pd_hoststore_set(pd_instance *inst, const char *key, const void *val, size_t len, unsigned ttl_s);
int pd_hoststore_get(pd_instance *inst, const char *key, pd_store_value *val);
int pd_hoststore_del(pd_instance *inst, const char *key);
int pd_hoststore_members(pd_instance *inst, const char *key, const char *member, unsigned ttl_s, long long *count);
int pd_hoststore_update(pd_instance *inst, const char *key, pd_store_update_fn *fn, void *arg, int *result);

#endif
