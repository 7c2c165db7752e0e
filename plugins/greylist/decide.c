/* decide.c - the greylisting decision, written once: record updates for the state service */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Both functions are pd_store_update_fn: pure functions of the old record
 * (the state service runs them under its lock on GDBM, and again on Redis
 * when another host changed the record meanwhile). They write their
 * verdict into the caller's argument afresh on every run, nothing else.
 *
 * Triplet (key "T:NET SENDER RECIPIENT", GL_T_PENDING or GL_T_PASSED):
 *   none, unreadable, expired (pending: retry_window after first_seen;
 *   passed: lifetime after last_seen) or first_seen a day in the future:
 *     new, written pending, DEFER with delay seconds left;
 *   pending and younger than delay: early retry, nothing written, DEFER
 *     with the seconds left;
 *   pending and at least delay old: PASSED_NOW, written passed;
 *   passed: PASS; last_seen is refreshed (a write) at most once an hour,
 *     so a known triplet costs a read only.
 * The TTL the store keeps is the time until the record would expire (plus
 * a second): the store forgets it when the decision would.
 *
 * Client (key "C:ADDRESS/BITS", GL_T_CLIENT), as postgrey's --auto-whitelist-
 * clients: a triplet's first pass counts one delivery for its client's exact
 * address, at most once per auto_whitelist_interval; from auto_whitelist
 * counts on the client passes. A whitelisted client's record is refreshed
 * (its count too, for statistics) at most once per interval.
 */
#include <policyd/plugin.h>

#include "gl.h"

#include <string.h>

#define REFRESH_S 3600 /* a passed triplet's last_seen is rewritten at most this often */

/* ttl_of - seconds from NOW until R expires, plus one; 0 when it already has */
static unsigned ttl_of(const gl_rec *r, int64_t now, long retry_window, long lifetime)
{
	int64_t end = r->type == GL_T_PENDING ? r->first_seen + retry_window : r->last_seen + lifetime;

	if (end < now)
		return 0;
	if (end - now + 1 > 315360000) /* PD_STORE_TTL_MAX */
		return 315360000u;
	return (unsigned)(end - now + 1);
}

/* put - encode R as the new record with its TTL */
static int put(const gl_rec *r, void *new, size_t *newlen, unsigned *ttl, unsigned t)
{
	gl_rec_encode(r, new);
	*newlen = GL_REC_SIZE;
	*ttl = t ? t : 1;
	return PD_STORE_WRITE;
}

int gl_triplet_update(void *arg, const void *old, size_t oldlen, void *new, size_t *newlen, unsigned *ttl)
{
	gl_tdec *d = arg;
	const gl_tin *in = &d->in;
	gl_rec t;
	int ok = old && gl_rec_decode(old, oldlen, &t) == 0 && (t.type == GL_T_PENDING || t.type == GL_T_PASSED);

	memset(&d->out, 0, sizeof(d->out));
	if (!ok || gl_rec_expired(&t, in->now, in->retry_window, in->lifetime) || t.first_seen > in->now + 86400) {
		t = (gl_rec){.type = GL_T_PENDING, .first_seen = in->now, .last_seen = in->now};
		d->out.verdict = GL_V_DEFER;
		d->out.fresh = 1;
		d->out.remaining = in->delay;
		return put(&t, new, newlen, ttl, ttl_of(&t, in->now, in->retry_window, in->lifetime));
	}
	if (t.type == GL_T_PENDING && in->now - t.first_seen < in->delay) {
		d->out.verdict = GL_V_DEFER; /* early retry: nothing to write */
		d->out.remaining = in->delay - (long)(in->now - t.first_seen);
		if (d->out.remaining > in->delay) /* the clock went back a little */
			d->out.remaining = in->delay;
		return PD_STORE_KEEP;
	}
	if (t.type == GL_T_PENDING) { /* the first retry after the delay */
		d->out.verdict = GL_V_PASSED_NOW;
		d->out.delayed = (long)(in->now - t.first_seen);
		t.type = GL_T_PASSED;
		t.passed_at = in->now;
		t.last_seen = in->now;
		t.count = 1;
		return put(&t, new, newlen, ttl, ttl_of(&t, in->now, in->retry_window, in->lifetime));
	}
	d->out.verdict = GL_V_PASS;
	if (in->now - t.last_seen < REFRESH_S && t.last_seen <= in->now)
		return PD_STORE_KEEP;
	t.last_seen = in->now;
	if (t.count < UINT32_MAX)
		t.count++;
	return put(&t, new, newlen, ttl, ttl_of(&t, in->now, in->retry_window, in->lifetime));
}

int gl_client_listed(const gl_rec *r, int64_t now, long needed, long lifetime)
{
	return r->type == GL_T_CLIENT && needed > 0 && r->count >= (uint32_t)needed &&
	       !gl_rec_expired(r, now, 0, lifetime);
}

int gl_client_update(void *arg, const void *old, size_t oldlen, void *new, size_t *newlen, unsigned *ttl)
{
	gl_cdec *d = arg;
	gl_rec c;
	int ok = old && gl_rec_decode(old, oldlen, &c) == 0 && c.type == GL_T_CLIENT &&
		 !gl_rec_expired(&c, d->now, 0, d->lifetime);

	d->whitelisted_now = 0;
	if (!ok) {
		if (d->refresh) {
			d->count = 0;
			return PD_STORE_KEEP; /* gone meanwhile: nothing to refresh */
		}
		c = (gl_rec){.type = GL_T_CLIENT, .first_seen = d->now};
	} else if (c.last_seen && d->now - c.last_seen < d->interval && c.last_seen <= d->now) {
		d->count = c.count; /* counted within the interval already */
		return PD_STORE_KEEP;
	} else if (d->refresh && !gl_client_listed(&c, d->now, d->needed, d->lifetime)) {
		d->count = c.count;
		return PD_STORE_KEEP;
	}
	if (c.count < UINT32_MAX)
		c.count++;
	c.last_seen = d->now;
	if (c.count >= (uint32_t)d->needed && !c.passed_at) {
		c.passed_at = d->now;
		d->whitelisted_now = 1;
	}
	d->count = c.count;
	return put(&c, new, newlen, ttl, ttl_of(&c, d->now, 0, d->lifetime));
}
