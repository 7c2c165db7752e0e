/* route_index.c - the chain rules of policyd.conf as one index: which chains a recipient, sender or client names */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "route_index.h"
#include "chain.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* is_regex - "/pattern/" */
static int is_regex(const char *v)
{
	size_t n = strlen(v);

	return n >= 2 && v[0] == '/' && v[n - 1] == '/';
}

/* is_file - a list file: an absolute path, or one relative to the config's directory ("./", "../") */
static int is_file(const char *v)
{
	return !is_regex(v) && (v[0] == '/' || strncmp(v, "./", 2) == 0 || strncmp(v, "../", 3) == 0);
}

/* table_of - the table an entry V of list LIST goes to, made on first use */
static pd_table **table_of(pd_route_index *x, const char *list, const char *v)
{
	pd_table **t;
	enum pd_table_kind kind;

	if (strcmp(list, "clients") == 0) {
		t = &x->client;
		kind = PD_TABLE_CIDR;
	} else if (strcmp(list, "recipients") == 0) {
		t = is_regex(v) ? &x->rcpt_rx : &x->rcpt;
		kind = is_regex(v) ? PD_TABLE_REGEX : PD_TABLE_SUFFIX;
	} else {
		t = is_regex(v) ? &x->sender_rx : &x->sender;
		kind = is_regex(v) ? PD_TABLE_REGEX : PD_TABLE_SUFFIX;
	}
	if (!*t) {
		*t = pd_table_new(kind);
		if (!*t)
			pd_fatal("out of memory");
		pd_table_set_merge(*t, 1);
	}
	return t;
}

/* validate_list - inline entries of recipients/senders/clients parse as keys (file:line of the list) */
static int validate_list(cfg_t *cfg, cfg_opt_t *opt)
{
	pd_route_index scratch = {0};
	int rc = 0;

	for (unsigned i = 0; i < cfg_opt_size(opt) && rc == 0; i++) {
		const char *v = cfg_opt_getnstr(opt, i);
		char err[512];

		if (is_file(v))
			continue; /* read when the chains are built, errors as PATH:LINE */
		if (strcmp(opt->name, "clients") == 0 && is_regex(v)) {
			cfg_error(cfg, "clients \"%s\": expected an IPv4 or IPv6 address or network, or a file", v);
			rc = -1;
		} else if (pd_table_add(*table_of(&scratch, opt->name, v), v, "0", err, sizeof(err)) != 0) {
			cfg_error(cfg, "%s \"%s\": %s", opt->name, v, err);
			rc = -1;
		}
	}
	pd_route_index_free(&scratch);
	return rc;
}

/* pd_route_validators - on the chain sections' lists */
void pd_route_validators(cfg_t *cfg, const char *dir)
{
	(void)dir;
	cfg_set_validate_func(cfg, "chain|recipients", validate_list);
	cfg_set_validate_func(cfg, "chain|senders", validate_list);
	cfg_set_validate_func(cfg, "chain|clients", validate_list);
}

/* add_list - LIST's entries of SEC into their tables with VALUE; 0, or -1 (logged) */
static int add_list(pd_route_index *x, cfg_t *sec, const char *list, const char *value, const char *dir,
		    const char *file, const char *chain, size_t *count)
{
	for (unsigned i = 0; i < cfg_size(sec, list); i++) {
		const char *v = cfg_getnstr(sec, list, i);
		pd_table **t = table_of(x, list, v);
		char err[1024];
		size_t before = pd_table_size(*t);
		int rc;

		if (is_file(v)) {
			char *path = pd_path_resolve(dir, strncmp(v, "./", 2) == 0 ? v + 2 : v);

			rc = pd_table_load_keys(*t, path, value, err, sizeof(err));
			free(path);
		} else {
			rc = pd_table_add(*t, v, value, err, sizeof(err));
		}
		if (rc != 0) {
			pd_log(PD_LOG_ERR, "%s: chain \"%s\": %s: %s", file, chain, list, err);
			return -1;
		}
		*count += pd_table_size(*t) - before;
		if (is_file(v) && pd_table_size(*t) == before && !pd_table_duplicates(*t, NULL))
			pd_log(PD_LOG_WARNING, "%s: chain \"%s\": %s file %s holds no entry", file, chain, list, v);
	}
	return 0;
}

/* pd_route_index_add - chain CH's rules */
int pd_route_index_add(pd_route_index *x, pd_chain *ch, cfg_t *sec, const char *dir, const char *file)
{
	pd_chain_rules *r = &ch->rules;
	char value[16];

	r->sasl = cfg_size(sec, "sasl") ? (cfg_getbool(sec, "sasl") ? 1 : 0) : -1;
	for (unsigned i = 0; i < cfg_size(sec, "protocol_state"); i++)
		r->states |= pd_state_bit(cfg_getnstr(sec, "protocol_state", i));
	r->rcpt = cfg_size(sec, "recipients") > 0;
	r->sender = cfg_size(sec, "senders") > 0;
	r->client = cfg_size(sec, "clients") > 0;
	r->any = r->rcpt || r->sender || r->client || r->sasl >= 0 || r->states;
	if (!r->any)
		return 0;
	if (x->n_rule >= PD_ROUTE_MAX_RULES) {
		pd_log(PD_LOG_ERR, "%s: chain \"%s\": more than %d chains with rules", file, ch->name, PD_ROUTE_MAX_RULES);
		return -1;
	}
	snprintf(value, sizeof(value), "%zu", x->n_rule);
	if (add_list(x, sec, "recipients", value, dir, file, ch->name, &r->n_rcpt) < 0 ||
	    add_list(x, sec, "senders", value, dir, file, ch->name, &r->n_sender) < 0 ||
	    add_list(x, sec, "clients", value, dir, file, ch->name, &r->n_client) < 0)
		return -1;
	x->rule = pd_xrealloc(x->rule, (x->n_rule + 1) * sizeof(*x->rule));
	x->rule[x->n_rule] = ch;
	if (x->n_rule % 64 == 0) { /* one more word in every mask */
		uint64_t **m[] = {&x->need_rcpt, &x->need_sender, &x->need_client, &x->need_other};

		for (size_t i = 0; i < 4; i++) {
			*m[i] = pd_xrealloc(*m[i], (x->words + 1) * sizeof(uint64_t));
			(*m[i])[x->words] = 0;
		}
		x->words++;
	}
	{
		uint64_t bit = 1ull << (x->n_rule % 64);
		size_t w = x->n_rule / 64;

		if (r->rcpt)
			x->need_rcpt[w] |= bit;
		if (r->sender)
			x->need_sender[w] |= bit;
		if (r->client)
			x->need_client[w] |= bit;
		if (r->sasl >= 0 || r->states)
			x->need_other[w] |= bit;
	}
	x->n_rule++;
	return 0;
}

/* pd_route_index_free - the tables and the list */
void pd_route_index_free(pd_route_index *x)
{
	pd_table_free(x->rcpt);
	pd_table_free(x->rcpt_rx);
	pd_table_free(x->sender);
	pd_table_free(x->sender_rx);
	pd_table_free(x->client);
	free(x->rule);
	free(x->need_rcpt);
	free(x->need_sender);
	free(x->need_client);
	free(x->need_other);
	memset(x, 0, sizeof(*x));
}
