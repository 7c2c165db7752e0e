/* route.c - which chain a request takes */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "route.h"
#include "conf.h"
#include "escape.h"
#include "log.h"

#include <stdio.h>

/* pd_route - policy_context names a chain, else the listener's */
const pd_chain *pd_route(const pd_conf *g, const pd_attrs *a, const char *listener_chain)
{
	const char *ctxname = pd_attrs_get(a, "policy_context");
	const pd_chain *ch = NULL;
	const char *why;

	if (ctxname && *ctxname) {
		ch = pd_conf_chain(g, ctxname);
		if (!ch && pd_log_verbose()) {
			char buf[80];

			pd_esc(buf, sizeof(buf), ctxname, 64, PD_ESC_TOKEN);
			pd_log(PD_LOG_DEBUG, "policy_context \"%s\" names no chain; using chain %s", buf, listener_chain);
		}
	}
	if (ch) {
		why = "its policy_context";
	} else {
		ch = pd_conf_chain(g, listener_chain);
		why = "the listener's";
	}
	if (!ch) {
		ch = g->chains[0];
		why = "the default";
	}
	if (pd_chain_trace) {
		char t[160];

		snprintf(t, sizeof(t), "chain %s (%s)", ch->name, why);
		pd_chain_trace(NULL, t);
	}
	return ch;
}
