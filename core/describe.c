/* describe.c - policyd -t: what a configuration does, in words */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "describe.h"

#include <string.h>

/* print_plugins - a chain's instances */
static void print_plugins(const pd_chain *ch, FILE *out)
{
	fputs(" -> plugins", out);
	if (!ch->n)
		fputs(" (none: default_action)", out);
	for (size_t i = 0; i < ch->n; i++)
		fprintf(out, "%s %s", i ? "," : "", ch->insts[i]->pub.name);
	fputc('\n', out);
}

/* print_rules - what a rule chain takes */
static void print_rules(const pd_chain *ch, FILE *out)
{
	const pd_chain_rules *r = &ch->rules;
	const char *sep = "";

	fprintf(out, "  chain \"%s\" when", ch->name);
	if (r->rcpt)
		fprintf(out, "%s the recipient matches one of %zu %s", sep, r->n_rcpt, r->n_rcpt == 1 ? "entry" : "entries"),
			sep = " and";
	if (r->sender)
		fprintf(out, "%s the sender matches one of %zu %s", sep, r->n_sender, r->n_sender == 1 ? "entry" : "entries"),
			sep = " and";
	if (r->client)
		fprintf(out, "%s the client is in one of %zu %s", sep, r->n_client, r->n_client == 1 ? "network" : "networks"),
			sep = " and";
	if (r->sasl >= 0)
		fprintf(out, "%s the client is %sSASL-authenticated", sep, r->sasl ? "" : "not "), sep = " and";
	if (r->states) {
		static const char *const names[] = {"CONNECT", "HELO", "MAIL", "RCPT", "DATA", "END-OF-MESSAGE",
						    "VRFY", "ETRN", "other"};
		const char *s2 = "";

		fprintf(out, "%s the state is", sep);
		for (unsigned b = 0; b < 9; b++)
			if (r->states & (1u << b)) {
				fprintf(out, "%s %s", s2, names[b]);
				s2 = " or";
			}
	}
	print_plugins(ch, out);
}

/* pd_describe - the configuration in words */
void pd_describe(const pd_conf *c, const char *conf_file, int verbose, FILE *out)
{
	fprintf(out, "%s: configuration OK, %zu plugin(s), %zu instance(s), %zu chain(s)\n", conf_file, c->n_mods,
		c->n_insts, c->n_chains);
	for (size_t i = 0; i < c->n_mods; i++)
		fprintf(out, "  plugin %s %s (%s)%s%s\n", c->mods[i]->name,
			c->mods[i]->desc->version ? c->mods[i]->desc->version : "", c->mods[i]->path,
			verbose && c->mods[i]->desc->description ? ": " : "",
			verbose && c->mods[i]->desc->description ? c->mods[i]->desc->description : "");
	if (!verbose)
		return;
	for (size_t i = 0; i < c->n_insts; i++)
		if (strcmp(c->insts[i]->pub.name, c->insts[i]->pub.plugin) != 0)
			fprintf(out, "  instance %s of plugin %s\n", c->insts[i]->pub.name, c->insts[i]->pub.plugin);
	fputs("a request takes, at DATA and END-OF-MESSAGE, the chain of its message's first recipient; else\n", out);
	if (c->routes.n_rule) {
		fputs("1. the first of these chains whose rules hold:\n", out);
		for (size_t i = 0; i < c->routes.n_rule; i++)
			print_rules(c->routes.rule[i], out);
	} else {
		fputs("1. (no chain has rules)\n", out);
	}
	fputs("2. the chain its policy_context attribute names:\n", out);
	for (size_t i = 1; i < c->n_chains; i++) {
		fprintf(out, "  policy_context=%s", c->chains[i]->name);
		print_plugins(c->chains[i], out);
	}
	fputs("3. its listener's chain:\n", out);
	if (!c->n_listen)
		fputs("  (no listen addresses: spawn mode or systemd sockets take the default chain)\n", out);
	for (size_t i = 0; i < c->n_listen; i++)
		fprintf(out, "  %s -> chain \"%s\"\n", c->listen[i].text, c->listen[i].chain);
	fputs("4. the default chain", out);
	print_plugins(c->chains[0], out);
}
