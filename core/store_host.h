/* store_host.h - host->store_* over the store library: one adapter for the daemon and the mock host */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_STORE_HOST_H
#define PD_STORE_HOST_H

#include <policyd/plugin.h>
#include <stdint.h>

struct pd_store;

/* What the host says for INST: its open store and the clock (*NOW), or
 * NULL after logging why it has none. Each host defines it: the daemon in
 * hoststore.c, the mock host in mockstore.c. */
struct pd_store *pd_store_host_resolve(const pd_instance *inst, int64_t *now);

/* The pd_host entries, on the instance's namespace (its name). */
int pd_store_host_count(pd_instance *inst, const char *key, unsigned window_s, long long amount, long long *total);
int pd_store_host_set(pd_instance *inst, const char *key, const void *val, size_t len, unsigned ttl_s);
int pd_store_host_get(pd_instance *inst, const char *key, pd_store_value *val);
int pd_store_host_del(pd_instance *inst, const char *key);
int pd_store_host_members(pd_instance *inst, const char *key, const char *member, unsigned ttl_s,
			  long long *count);
int pd_store_host_update(pd_instance *inst, const char *key, pd_store_update_fn *fn, void *arg, int *result);

/* The pd_host initialisers of these entries (store_remote is the host's own). */
#define PD_STORE_HOST_ENTRIES                                                                        \
	.store_count = pd_store_host_count, .store_set = pd_store_host_set, .store_get = pd_store_host_get, \
	.store_del = pd_store_host_del, .store_members = pd_store_host_members,                             \
	.store_update = pd_store_host_update

/* Free what store_get handed out on this thread: after every check(), as
 * plugin.h promises values "until check() returns". */
void pd_store_host_release(void);

#endif
