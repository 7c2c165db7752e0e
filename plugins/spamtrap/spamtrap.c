/* spamtrap.c - the spamtrap plugin: mail to a trap address is rejected and its client blocked on every MX sharing the state service */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * spamtrap { traps = { "trap@example.org", "@trap.example.org" } traps_file = "/etc/policyd/traps" block = 7d }
 * A trap is an address nobody uses: whoever sends to it harvested it. The
 * trap's mail gets trap_action (a 5xx), and the client's network (its
 * address by default, ipv4_prefix / ipv6_prefix bits of it if configured)
 * is written to the state service with a TTL of `block`: every daemon
 * sharing that service (Redis) answers blocked_action (a 4xx by default,
 * as Policyd v1 did) to the network's other mail until the block expires.
 * never_block networks are never blocked (their trap mail is still
 * rejected); SASL clients are skipped by default (the core's skip_sasl).
 * Keys: the network as text, "192.0.2.0/24", "2001:db8:1:2::/64", in the
 * instance's namespace; values: "t=EPOCH client=ADDRESS trap=ADDRESS".
 * The traps are in memory (lib/table, exact and regex), read-only after
 * init; check() waits only for the state service, so the instance runs on
 * the worker threads when that is remote (host->store_remote).
 */
#include "config.h"
#include "action.h"
#include "cidr.h"
#include "duration.h"
#include "table.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <policyd/plugin.h>

#define DEF_BLOCKED "DEFER_IF_PERMIT 4.7.1 Service unavailable: your mail server sent mail to a spam trap; try again later"
#define DEF_TRAP "550 5.1.1 User unknown"
#define LINE_MAX_TRAP 1024 /* longest line of a traps file */
#define BLOCK_MAX (365L * 86400)
#define KEY_MAX 64  /* "ffff:...:ffff/128" */
#define LOG_ADDR 255 /* bytes of an address shown in a log line */

/* cb_duration - the block option: a duration of 1 s to 365 days */
static int cb_duration(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	long v;

	if (pd_duration_parse(value, &v) != 0 || v < 1 || v > BLOCK_MAX) {
		cfg_error(cfg, "spamtrap: %s: \"%s\" is not a duration from 1s to 365d (e.g. 3600, 12h, 7d, 2w)",
			  opt->name, value);
		return -1;
	}
	*(long *)result = v;
	return 0;
}

static cfg_opt_t options[] = {
    CFG_STR_LIST("traps", "{}", CFGF_NONE),
    CFG_STR("traps_file", "", CFGF_NONE),
    CFG_INT_CB("block", 7 * 86400, CFGF_NONE, cb_duration),
    CFG_STR("blocked_action", DEF_BLOCKED, CFGF_NONE),
    CFG_STR("trap_action", DEF_TRAP, CFGF_NONE),
    CFG_STR_LIST("never_block", "{}", CFGF_NONE),
    CFG_INT("ipv4_prefix", 32, CFGF_NONE),
    CFG_INT("ipv6_prefix", 64, CFGF_NONE),
    CFG_END(),
};

/* per instance */
struct spamtrap {
	pd_table *exact; /* trap@example.org, @trap.example.org, trap@ */
	pd_table *regex; /* /^trap-.*@example\.org$/ */
	pd_cidr *never;
	size_t n_never;
	char *blocked, *trap;
	unsigned block;
	int prefix4, prefix6;
};

/* action_error - a reply the plugin may give: DEFER*, REJECT or a 4NN/5NN code, then text; NULL or why not */
static const char *action_error(const char *v)
{
	static const char *const words[] = {"REJECT", "DEFER", "DEFER_IF_PERMIT", "DEFER_IF_REJECT", NULL};

	_Static_assert(PD_ACTION_MAX == PD_REPLY_MAX, "lib/action.h and plugin.h agree on a reply's length");
	return pd_action_error(v, words, "expected REJECT, DEFER, DEFER_IF_PERMIT, DEFER_IF_REJECT or a 4NN/5NN code, with text");
}

/* add_trap - one trap (an address form or a /regex/) to the right table; 0, or -1 with ERR */
static int add_trap(struct spamtrap *st, const char *key, char *err, size_t errlen)
{
	return pd_table_add(key[0] == '/' ? st->regex : st->exact, key, NULL, err, errlen);
}

/* load_file - the traps of PATH, one a line (blank lines and # comments skipped); 0, or -1 with "PATH:LINE: why" */
static int load_file(struct spamtrap *st, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[LINE_MAX_TRAP + 2], why[512];
	unsigned n = 0;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		char *p = line;

		n++;
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes", path, n, LINE_MAX_TRAP);
			fclose(f);
			return -1;
		}
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
			       line[len - 1] == '\t'))
			line[--len] = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		if (*p != '/' && strpbrk(p, " \t")) {
			snprintf(err, errlen, "%s:%u: one trap a line (an address, @domain or /regex/)", path, n);
			fclose(f);
			return -1;
		}
		if (add_trap(st, p, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%u: %s", path, n, why);
			fclose(f);
			return -1;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

/* spamtrap_validate - traps or a traps file, actions, networks, prefixes */
static int spamtrap_validate(cfg_t *sec)
{
	const char *file = cfg_getstr(sec, "traps_file"), *why;
	long p4 = cfg_getint(sec, "ipv4_prefix"), p6 = cfg_getint(sec, "ipv6_prefix");

	if (cfg_size(sec, "traps") == 0 && !*file) {
		cfg_error(sec, "spamtrap: no traps: give traps = { \"trap@example.org\", ... } or traps_file");
		return -1;
	}
	if (*file && file[0] != '/') {
		cfg_error(sec, "spamtrap: traps_file \"%s\": give an absolute path", file);
		return -1;
	}
	for (unsigned i = 0; i < cfg_size(sec, "traps"); i++) {
		const char *t = cfg_getnstr(sec, "traps", i);
		pd_table *tab = pd_table_new(t[0] == '/' ? PD_TABLE_REGEX : PD_TABLE_EXACT);
		char err[512];
		int bad = !tab || pd_table_add(tab, t, NULL, err, sizeof(err)) < 0;

		pd_table_free(tab);
		if (bad) {
			cfg_error(sec, "spamtrap: traps \"%.100s\": %s", t, tab ? err : "out of memory");
			return -1;
		}
	}
	if ((why = action_error(cfg_getstr(sec, "blocked_action")))) {
		cfg_error(sec, "spamtrap: blocked_action: %s", why);
		return -1;
	}
	if ((why = action_error(cfg_getstr(sec, "trap_action")))) {
		cfg_error(sec, "spamtrap: trap_action: %s", why);
		return -1;
	}
	for (unsigned i = 0; i < cfg_size(sec, "never_block"); i++) {
		pd_cidr c;

		if (pd_cidr_parse(cfg_getnstr(sec, "never_block", i), &c) < 0) {
			cfg_error(sec, "spamtrap: never_block \"%.100s\": expected an IPv4 or IPv6 address or network",
				  cfg_getnstr(sec, "never_block", i));
			return -1;
		}
	}
	if (p4 < 8 || p4 > 32 || p6 < 16 || p6 > 128) {
		cfg_error(sec, "spamtrap: ipv4_prefix must be 8 to 32 and ipv6_prefix 16 to 128 (got %ld and %ld)", p4,
			  p6);
		return -1;
	}
	return 0;
}

/* free_st - everything an instance holds */
static void free_st(struct spamtrap *st)
{
	if (!st)
		return;
	pd_table_free(st->exact);
	pd_table_free(st->regex);
	free(st->never);
	free(st->blocked);
	free(st->trap);
	free(st);
}

/* spamtrap_init - the traps into memory, the settings, and where check() runs */
static int spamtrap_init(pd_instance *inst)
{
	const pd_host *h = inst->host;
	struct spamtrap *st = calloc(1, sizeof(*st));
	cfg_t *cfg = inst->cfg;
	const char *file = cfg_getstr(cfg, "traps_file");
	char err[PATH_MAX + 600];

	if (!st || !(st->exact = pd_table_new(PD_TABLE_EXACT)) || !(st->regex = pd_table_new(PD_TABLE_REGEX)) ||
	    !(st->blocked = strdup(cfg_getstr(cfg, "blocked_action"))) || !(st->trap = strdup(cfg_getstr(cfg, "trap_action")))) {
		h->log(inst, PD_LOG_ERR, "out of memory");
		free_st(st);
		return -1;
	}
	for (unsigned i = 0; i < cfg_size(cfg, "traps"); i++)
		if (add_trap(st, cfg_getnstr(cfg, "traps", i), err, sizeof(err)) < 0) {
			h->log(inst, PD_LOG_ERR, "traps \"%s\": %s", cfg_getnstr(cfg, "traps", i), err);
			free_st(st);
			return -1;
		}
	if (*file && load_file(st, file, err, sizeof(err)) < 0) {
		h->log(inst, PD_LOG_ERR, "traps_file: %s", err);
		free_st(st);
		return -1;
	}
	if (pd_table_size(st->exact) + pd_table_size(st->regex) == 0) {
		h->log(inst, PD_LOG_ERR, "no traps (traps is empty and %s has none)", *file ? file : "no traps_file");
		free_st(st);
		return -1;
	}
	st->n_never = cfg_size(cfg, "never_block");
	st->never = calloc(st->n_never ? st->n_never : 1, sizeof(*st->never));
	if (!st->never) {
		h->log(inst, PD_LOG_ERR, "out of memory");
		free_st(st);
		return -1;
	}
	for (size_t i = 0; i < st->n_never; i++)
		if (pd_cidr_parse(cfg_getnstr(cfg, "never_block", (unsigned)i), &st->never[i]) < 0) {
			h->log(inst, PD_LOG_ERR, "never_block \"%s\": not a network", cfg_getnstr(cfg, "never_block", (unsigned)i));
			free_st(st);
			return -1;
		}
	st->block = (unsigned)cfg_getint(cfg, "block");
	st->prefix4 = (int)cfg_getint(cfg, "ipv4_prefix");
	st->prefix6 = (int)cfg_getint(cfg, "ipv6_prefix");
	inst->data = st;
	inst->blocking = h->store_remote(inst); /* a shared store waits on the network */
	h->log(inst, PD_LOG_INFO, "%zu trap address(es), %zu trap pattern(s); a hit blocks the client's /%d (IPv6 /%d) "
	       "for %u s; %zu never_block network(s)", pd_table_size(st->exact), pd_table_size(st->regex), st->prefix4,
	       st->prefix6, st->block, st->n_never);
	return 0;
}

/* block_key - the text of ADDR's network (FAMILY, the configured prefix) into KEY */
static void block_key(const struct spamtrap *st, int family, const unsigned char *addr, char *key, size_t cap)
{
	unsigned char net[16];
	int bits = family == AF_INET ? st->prefix4 : st->prefix6, bytes = family == AF_INET ? 4 : 16;
	char text[INET6_ADDRSTRLEN];

	memcpy(net, addr, (size_t)bytes);
	for (int i = 0; i < bytes; i++) {
		int keep = bits - i * 8;

		if (keep <= 0)
			net[i] = 0;
		else if (keep < 8)
			net[i] &= (unsigned char)(0xff << (8 - keep));
	}
	inet_ntop(family, net, text, sizeof(text));
	snprintf(key, cap, "%s/%d", text, bits);
}

/* is_trap - is the recipient one of the traps? */
static int is_trap(const struct spamtrap *st, const char *rcpt)
{
	return pd_table_match_addr(st->exact, rcpt) || (pd_table_size(st->regex) && pd_table_match_addr(st->regex, rcpt));
}

/* spamtrap_check - a trap: reject and block the client's network; else a blocked network gets blocked_action */
static int spamtrap_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	const struct spamtrap *st = inst->data;
	const pd_host *h = inst->host;
	const char *rcpt = h->attr(req, "recipient"), *client = h->attr(req, "client_address");
	char key[KEY_MAX], erc[LOG_ADDR * 4 + 8], ecl[80];
	unsigned char addr[16];
	int family = 0, never;
	pd_store_value val;

	if (!client || pd_addr_parse(client, &family, addr) < 0)
		family = 0;
	never = family && st->n_never && pd_cidr_match(st->never, st->n_never, family, addr);
	h->escape(ecl, sizeof(ecl), client ? client : "", 64);
	if (family)
		block_key(st, family, addr, key, sizeof(key));
	if (rcpt && *rcpt && is_trap(st, rcpt)) {
		h->escape(erc, sizeof(erc), rcpt, LOG_ADDR);
		if (!family) {
			h->log(inst, PD_LOG_WARNING, "trap <%s> hit by client [%s], not an address: rejected, nothing blocked",
			       erc, ecl);
		} else if (never) {
			h->log(inst, PD_LOG_NOTICE, "trap <%s> hit by client [%s] in never_block: rejected, not blocked", erc,
			       ecl);
		} else {
			char v[PD_STORE_RECORD_MAX];
			int n = snprintf(v, sizeof(v), "t=%lld client=%s trap=%.160s", (long long)h->now(), client, rcpt);

			if (n < 0 || (size_t)n >= sizeof(v))
				n = (int)strlen(v);
			if (h->store_set(inst, key, v, (size_t)n, st->block) < 0)
				h->log(inst, PD_LOG_ERR, "trap <%s> hit by client [%s]: rejected, but the block of %s could not "
				       "be stored", erc, ecl, key);
			else
				h->log(inst, PD_LOG_INFO, "trap <%s> hit by client [%s]: rejected, %s blocked for %u s", erc, ecl,
				       key, st->block);
		}
		h->reply(reply, "%s", st->trap);
		return PD_CHECK_OK;
	}
	if (!family || never)
		return PD_CHECK_OK;
	switch (h->store_get(inst, key, &val)) {
	case 1:
		h->log(inst, PD_LOG_INFO, "client [%s] blocked (%s, %u s left): %s", ecl, key, val.ttl, st->blocked);
		h->reply(reply, "%s", st->blocked);
		return PD_CHECK_OK;
	case 0:
		return PD_CHECK_OK;
	default:
		return PD_CHECK_ERROR; /* the state service logged why; on_error applies */
	}
}

/* spamtrap_fini - free the traps */
static void spamtrap_fini(pd_instance *inst)
{
	free_st(inst->data);
	inst->data = NULL;
}

const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "spamtrap",
    .version = "1.0",
    .description = "rejects mail to trap addresses and blocks the client's network on every MX sharing the state",
    .flags = PD_PLUGIN_SKIP_SASL | PD_PLUGIN_STATE,
    .default_states = "RCPT",
    .options = options,
    .validate = spamtrap_validate,
    .init = spamtrap_init,
    .check = spamtrap_check,
    .fini = spamtrap_fini,
};
