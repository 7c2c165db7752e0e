/* store_host.c - host->store_* over the store library: one adapter for the daemon and the mock host */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * Glue only, written once: the instance's name is its namespace, the host
 * says which store and which clock (its pd_store_host_resolve), and a value
 * read lives until the check returns (a per-thread list freed by
 * pd_store_host_release). Every decision about the data is the store's.
 */
#include "store_host.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

#define HELD_MAX 64 /* store_get values one check may hold */
static _Thread_local void *held[HELD_MAX];
static _Thread_local size_t n_held;

int pd_store_host_count(pd_instance *inst, const char *key, unsigned window_s, long long amount, long long *total)
{
	int64_t now;
	pd_store *s = pd_store_host_resolve(inst, &now);

	*total = 0;
	return s ? pd_store_count(s, inst->name, key, window_s, amount, now, total) : -1;
}

int pd_store_host_set(pd_instance *inst, const char *key, const void *val, size_t len, unsigned ttl_s)
{
	int64_t now;
	pd_store *s = pd_store_host_resolve(inst, &now);

	return s ? pd_store_set(s, inst->name, key, val, len, ttl_s, now) : -1;
}

int pd_store_host_get(pd_instance *inst, const char *key, pd_store_value *val)
{
	int64_t now;
	pd_store *s = pd_store_host_resolve(inst, &now);
	pd_store_val v;
	int r;

	memset(val, 0, sizeof(*val));
	if (!s)
		return -1;
	if (n_held >= HELD_MAX) {
		inst->host->log(inst, PD_LOG_ERR, "more than %d store_get values in one check", HELD_MAX);
		return -1;
	}
	r = pd_store_get(s, inst->name, key, now, &v);
	if (r == 1) {
		held[n_held++] = v.data;
		val->data = v.data;
		val->len = v.len;
		val->ttl = v.ttl;
	}
	return r;
}

int pd_store_host_del(pd_instance *inst, const char *key)
{
	int64_t now;
	pd_store *s = pd_store_host_resolve(inst, &now);

	return s ? pd_store_del(s, inst->name, key) : -1;
}

int pd_store_host_members(pd_instance *inst, const char *key, const char *member, unsigned ttl_s, long long *count)
{
	int64_t now;
	pd_store *s = pd_store_host_resolve(inst, &now);

	*count = 0;
	return s ? pd_store_members(s, inst->name, key, member, ttl_s, now, count) : -1;
}

int pd_store_host_update(pd_instance *inst, const char *key, pd_store_update_fn *fn, void *arg, int *result)
{
	int64_t now;
	pd_store *s = pd_store_host_resolve(inst, &now);

	*result = PD_STORE_KEEP;
	return s ? pd_store_update(s, inst->name, key, fn, arg, now, result) : -1;
}

void pd_store_host_release(void)
{
	while (n_held)
		free(held[--n_held]);
}
