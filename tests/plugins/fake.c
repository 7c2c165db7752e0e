/* fake.c - scriptable test plugin: its section says what check() answers, waits for or looks up */
/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <policyd/plugin.h>

#ifndef FAKE_NAME
#define FAKE_NAME "fake"
#endif

static cfg_opt_t options[] = {
    CFG_STR("action", "", CFGF_NONE),        /* reply to send ("" = DUNNO) */
    CFG_BOOL("fail", cfg_false, CFGF_NONE),  /* return PD_CHECK_ERROR */
    CFG_INT("sleep_ms", 0, CFGF_NONE),       /* block this long first (a plugin that waits on a thread) */
    CFG_STR("echo", "", CFGF_NONE),          /* reply "DEFER_IF_PERMIT <value of this attribute>" */
    CFG_STR("trigger", "", CFGF_NONE),       /* only act when the recipient contains this */
    CFG_BOOL("crash", cfg_false, CFGF_NONE), /* abort() the process (supervision tests) */
    CFG_BOOL("blocking", cfg_true, CFGF_NONE), /* inst->blocking: runs on the worker pool */
    /* host->dns: "TYPE:name" each (A, AAAA, TXT, MX, PTR; "TYPE:=ATTR": the name is the
     * request's attribute ATTR); all asked at once, then the reply is
     * "DEFER_IF_PERMIT dns TYPE:name=STATUS[:first record[/its length for TXT]] ..." */
    CFG_STR_LIST("lookup", "{}", CFGF_NONE),
    CFG_INT("dns_timeout_ms", 0, CFGF_NONE), /* the check's DNS deadline (0: the core's) */
    CFG_BOOL("dns_cache", cfg_true, CFGF_NONE), /* inst->dns_cache */
    CFG_STR_LIST("score", "{}", CFGF_NONE),  /* "label=value": host->score_add each */
    CFG_BOOL("wait_without_lookup", cfg_false, CFGF_NONE), /* a broken plugin: PD_CHECK_WAIT for nothing */
    /* host->store_count: add 1 to counter KEY over count_window seconds, reply
     * "DEFER_IF_PERMIT count KEY=TOTAL"; a store error is PD_CHECK_ERROR */
    CFG_STR("count", "", CFGF_NONE),
    CFG_INT("count_window", 60, CFGF_NONE),
    CFG_END(),
};

/* fake_validate - the section as a whole: fail and action exclude each other */
static int fake_validate(cfg_t *sec)
{
	if (cfg_getbool(sec, "fail") && *cfg_getstr(sec, "action")) {
		cfg_error(sec, "fail and action exclude each other");
		return -1;
	}
	return 0;
}

/* fake_init - the section is read at check time */
static int fake_init(pd_instance *inst)
{
	inst->blocking = cfg_getbool(inst->cfg, "blocking") || inst->host->store_remote(inst);
	inst->dns_cache = cfg_getbool(inst->cfg, "dns_cache");
	if (cfg_getint(inst->cfg, "dns_timeout_ms") > 0)
		inst->dns_timeout_ms = (unsigned)cfg_getint(inst->cfg, "dns_timeout_ms");
	return 0;
}

/* type_of - a record type by name */
static unsigned type_of(const char *t)
{
	static const struct {
		const char *n;
		unsigned t;
	} tab[] = {{"A", PD_DNS_A}, {"AAAA", PD_DNS_AAAA}, {"TXT", PD_DNS_TXT}, {"MX", PD_DNS_MX}, {"PTR", PD_DNS_PTR}};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcasecmp(tab[i].n, t) == 0)
			return tab[i].t;
	return PD_DNS_A;
}

/* lookups - ask every "TYPE:name"; 1 if one is pending, else the reply is set */
static int lookups(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	static const char *const status[] = {"OK", "NXDOMAIN", "SERVFAIL", "TIMEOUT", "PENDING", "BADNAME"};
	char text[PD_REPLY_MAX + 1] = "DEFER_IF_PERMIT dns";
	size_t n = cfg_size(inst->cfg, "lookup"), len = strlen(text);
	int pending = 0;

	for (size_t i = 0; i < n; i++) {
		const char *spec = cfg_getnstr(inst->cfg, "lookup", (unsigned)i), *colon = strchr(spec, ':');
		char type[16] = "A";
		const pd_dns_answer *a = NULL;
		int st;

		const char *name = colon ? colon + 1 : spec;

		if (colon && (size_t)(colon - spec) < sizeof(type)) {
			memcpy(type, spec, (size_t)(colon - spec));
			type[colon - spec] = 0;
		}
		if (name[0] == '=') { /* the value of an attribute */
			name = inst->host->attr(req, name + 1);
			if (!name)
				name = "";
		}
		st = inst->host->dns(req, name, type_of(type), &a);
		if (st == PD_DNS_PENDING) {
			pending = 1;
			continue;
		}
		len += (size_t)snprintf(text + len, len < sizeof(text) ? sizeof(text) - len : 0, " %s=%s", spec,
					st >= 0 && st <= 5 ? status[st] : "?");
		if (a && a->n && len < sizeof(text)) {
			const pd_dns_rr *rr = &a->rr[0];
			char addr[64];

			if (rr->type == PD_DNS_A)
				snprintf(addr, sizeof(addr), "%u.%u.%u.%u", rr->addr[0], rr->addr[1], rr->addr[2], rr->addr[3]);
			else if (rr->type == PD_DNS_TXT)
				snprintf(addr, sizeof(addr), "%.40s/%zu", rr->text ? rr->text : "", rr->len);
			else
				snprintf(addr, sizeof(addr), "%.60s", rr->text ? rr->text : "");
			len += (size_t)snprintf(text + len, sizeof(text) - len, ":%s", addr);
		}
	}
	if (pending)
		return 1;
	inst->host->reply(reply, "%s", text);
	return 0;
}

/* fake_check - do what the section says */
static int fake_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	const char *trigger = cfg_getstr(inst->cfg, "trigger");
	const char *rcpt = inst->host->attr(req, "recipient");
	const char *echo = cfg_getstr(inst->cfg, "echo");
	long ms = cfg_getint(inst->cfg, "sleep_ms");

	if (*trigger && (!rcpt || !strstr(rcpt, trigger)))
		return PD_CHECK_OK;
	if (cfg_getbool(inst->cfg, "crash"))
		abort();
	if (cfg_getbool(inst->cfg, "wait_without_lookup"))
		return PD_CHECK_WAIT;
	if (ms > 0)
		usleep((useconds_t)ms * 1000);
	if (cfg_getbool(inst->cfg, "fail"))
		return PD_CHECK_ERROR;
	for (size_t i = 0; i < cfg_size(inst->cfg, "score"); i++) {
		const char *sc = cfg_getnstr(inst->cfg, "score", (unsigned)i), *eq = strchr(sc, '=');
		char label[64];

		if (eq && (size_t)(eq - sc) < sizeof(label)) {
			memcpy(label, sc, (size_t)(eq - sc));
			label[eq - sc] = 0;
			inst->host->score_add(req, label, atof(eq + 1));
		}
	}
	if (cfg_size(inst->cfg, "lookup"))
		return lookups(inst, req, reply) ? PD_CHECK_WAIT : PD_CHECK_OK;
	if (*cfg_getstr(inst->cfg, "count")) {
		long long total;

		if (inst->host->store_count(inst, cfg_getstr(inst->cfg, "count"),
					    (unsigned)cfg_getint(inst->cfg, "count_window"), 1, &total) < 0)
			return PD_CHECK_ERROR;
		inst->host->reply(reply, "DEFER_IF_PERMIT count %s=%lld", cfg_getstr(inst->cfg, "count"), total);
		return PD_CHECK_OK;
	}
	if (*echo) {
		const char *v = inst->host->attr(req, echo);

		inst->host->reply(reply, "DEFER_IF_PERMIT %s=%s", echo, v ? v : "(none)");
		return PD_CHECK_OK;
	}
	if (*cfg_getstr(inst->cfg, "action"))
		inst->host->reply(reply, "%s", cfg_getstr(inst->cfg, "action"));
	return PD_CHECK_OK;
}

/* fake_fini - nothing to free */
static void fake_fini(pd_instance *inst)
{
}

const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = FAKE_NAME,
    .version = "test",
    .description = "test plugin",
#ifndef FAKE_STATELESS
    .flags = PD_PLUGIN_STATE,
#endif
    .default_states = "RCPT",
    .options = options,
    .validate = fake_validate,
    .init = fake_init,
    .check = fake_check,
    .fini = fake_fini,
};
