/* test_mockhost_store.c - the mock host's state service behaves as the daemon's: windows, TTLs, records, outages */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <policyd/mockhost.h>

#include "tap.h"

/* a plugin of the test: counts per client, remembers the first sender, records the last recipient */
static int upd_last(void *arg, const void *old, size_t oldlen, void *new, size_t *newlen, unsigned *ttl)
{
	const char *r = arg;

	if (old && oldlen == strlen(r) && memcmp(old, r, oldlen) == 0)
		return PD_STORE_KEEP;
	*newlen = strlen(r);
	memcpy(new, r, *newlen);
	*ttl = 600;
	return PD_STORE_WRITE;
}

static int t_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	const pd_host *h = inst->host;
	const char *client = h->attr(req, "client_address"), *sender = h->attr(req, "sender");
	pd_store_value v;
	long long total, members;
	int r, res;

	if (h->store_count(inst, client, 60, 1, &total) < 0 ||
	    h->store_members(inst, "senders", sender, 300, &members) < 0)
		return PD_CHECK_ERROR;
	r = h->store_get(inst, "first", &v);
	if (r < 0)
		return PD_CHECK_ERROR;
	if (r == 0 && h->store_set(inst, "first", sender, strlen(sender), 120) < 0)
		return PD_CHECK_ERROR;
	if (h->store_update(inst, "last", upd_last, (void *)h->attr(req, "recipient"), &res) < 0)
		return PD_CHECK_ERROR;
	h->reply(reply, "DUNNO n=%lld senders=%lld first=%.*s upd=%d", total, members, r ? (int)v.len : 1,
		 r ? (const char *)v.data : "-", res);
	return PD_CHECK_OK;
}

static int t_init(pd_instance *inst)
{
	(void)inst;
	return 0;
}

static void t_fini(pd_instance *inst)
{
	(void)inst;
}

static const pd_plugin_desc t_plugin = {PD_PLUGIN_HEADER, .name = "t", .flags = PD_PLUGIN_STATE,
					.init = t_init, .check = t_check, .fini = t_fini};
/* the same plugin without the flag: the state service refuses it, as the daemon does */
static const pd_plugin_desc t_undeclared = {PD_PLUGIN_HEADER, .name = "u", .init = t_init, .check = t_check,
					    .fini = t_fini};

/* a plugin whose init fails when its instance is named "bad": fini must not run then */
static int finis;
static int f_init(pd_instance *inst)
{
	return strcmp(inst->name, "bad") == 0 ? -1 : 0;
}

static void f_fini(pd_instance *inst)
{
	(void)inst;
	finis++;
}

static const pd_plugin_desc f_plugin = {PD_PLUGIN_HEADER, .name = "f", .init = f_init, .check = t_check,
					.fini = f_fini};

/* ask - one request; the reply text */
static const char *ask(pd_instance *inst, pd_reply *rep, const char *client, const char *sender, const char *rcpt)
{
	char c[128], s[128], r[128];
	pd_request *req;
	int rc;

	snprintf(c, sizeof(c), "client_address=%s", client);
	snprintf(s, sizeof(s), "sender=%s", sender);
	snprintf(r, sizeof(r), "recipient=%s", rcpt);
	req = mock_request_new(c, s, r, NULL);
	mock_reply_clear(rep);
	rc = mock_check(&t_plugin, inst, req, rep);
	mock_request_free(req);
	return rc == PD_CHECK_OK ? mock_reply_text(rep) : "ERROR";
}

int main(void)
{
	pd_instance a, b;
	pd_reply *rep = mock_reply_new();

	CHECK(mock_instance_init(&a, &t_plugin, "a", NULL, NULL) == 0);
	CHECK(mock_instance_init(&b, &t_plugin, "b", NULL, NULL) == 0);
	CHECK(a.host->store_remote(&a) == 0);
	CHECK_STR(ask(&a, rep, "192.0.2.1", "x@s", "r1"), "DUNNO n=1 senders=1 first=- upd=1");
	CHECK_STR(ask(&a, rep, "192.0.2.1", "y@s", "r1"), "DUNNO n=2 senders=2 first=x@s upd=0");
	/* another instance: another namespace */
	CHECK_STR(ask(&b, rep, "192.0.2.1", "z@s", "r1"), "DUNNO n=1 senders=1 first=- upd=1");
	/* mock_clock drives windows and TTLs */
	mock_clock += 130; /* first (120 s) expired; the counter's 60 s window too */
	CHECK_STR(ask(&a, rep, "192.0.2.1", "x@s", "r2"), "DUNNO n=1 senders=2 first=- upd=1");
	mock_clock += 400; /* both senders expired (300 s), the new first too (120 s); "last" lives 600 s */
	CHECK_STR(ask(&a, rep, "192.0.2.1", "w@s", "r2"), "DUNNO n=1 senders=1 first=- upd=0");
	/* an outage: every call fails, the check reports its error */
	mock_store_fail(1);
	CHECK_STR(ask(&a, rep, "192.0.2.1", "w@s", "r2"), "ERROR");
	mock_store_fail(0);
	CHECK_STR(ask(&a, rep, "192.0.2.1", "w@s", "r2"), "DUNNO n=2 senders=1 first=w@s upd=0");
	/* reset forgets everything */
	mock_store_reset();
	CHECK_STR(ask(&a, rep, "192.0.2.1", "v@s", "r3"), "DUNNO n=1 senders=1 first=- upd=1");
	{
		pd_instance u;
		pd_request *req = mock_request_new("client_address=192.0.2.1", "sender=a@b", "recipient=c", NULL);

		CHECK(mock_instance_init(&u, &t_undeclared, "u", NULL, NULL) == 0);
		CHECK(mock_check(&t_undeclared, &u, req, rep) == PD_CHECK_ERROR);
		mock_instance_fini(&u, &t_undeclared);
		mock_request_free(req);
	}
	{
		/* as in the core, fini follows only an init that succeeded */
		pd_instance f;

		CHECK(mock_instance_init(&f, &f_plugin, "bad", NULL, NULL) == -1);
		mock_instance_fini(&f, &f_plugin);
		CHECK(finis == 0);
		CHECK(mock_instance_init(&f, &f_plugin, "good", NULL, NULL) == 0);
		mock_instance_fini(&f, &f_plugin);
		CHECK(finis == 1);
	}
	mock_store_set_remote(1);
	CHECK(a.host->store_remote(&a) == 1);
	mock_instance_fini(&a, &t_plugin);
	mock_instance_fini(&b, &t_plugin);
	mock_reply_free(rep);
	return tap_done();
}
