/* mockhost.h - the mock host: unit-test a policyd plugin without the daemon */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * NAME
 *	mockhost.h - run a plugin's init/check/fini in a test program
 * SYNOPSIS
 *	#include <policyd/mockhost.h>
 *	cc test.c my.c $(pkg-config --cflags --libs policyd-mockhost)
 * DESCRIPTION
 *	A pd_host whose clock the test sets (mock_clock), whose log goes to
 *	stderr, whose requests are built from "name=value" strings, whose DNS
 *	answers are the test's own (canned, never the network), whose scores
 *	are a list and whose state service is the daemon's own store code on
 *	a private GDBM file (removed at exit), its clock mock_clock: windows,
 *	TTLs and record updates behave as in the daemon. mock_check() runs a check
 *	the way the daemon does: when it returns PD_CHECK_WAIT the answers it
 *	asked for are given and it runs again. See policyd-plugin(3).
 */
#ifndef POLICYD_MOCKHOST_H
#define POLICYD_MOCKHOST_H

#include <policyd/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What host->now() returns; tests move it. */
extern time_t mock_clock;

/* The host. */
extern const pd_host mock_host;

/* Parse TEXT as the body of a section with OPTIONS (a plugin's) and the
 * core's observe filter (mock_instance_init sets inst->observe from it);
 * NULL on error (printed). Free with cfg_free(). */
cfg_t *mock_section(cfg_opt_t *options, const char *text);

/* Fill INST as the core would before init: instance NAME of plugin NAME,
 * section CFG (NULL: parsed from "" with the descriptor's options; freed by
 * mock_instance_fini), STATE_DIR, and the core's defaults (blocking = 1,
 * dns_timeout_ms = 5000, dns_cache = 1, dns_max_ttl = 86400). Then call P's
 * init: its result. mock_instance_fini calls fini only if that init returned
 * 0 (as the core does), and frees the section it parsed either way. */
int mock_instance_init(pd_instance *inst, const pd_plugin_desc *p, const char *name, cfg_t *cfg,
		       const char *state_dir);
void mock_instance_fini(pd_instance *inst, const pd_plugin_desc *p);

/* A request from "name=value" strings, NULL-terminated; add or replace one. */
pd_request *mock_request_new(const char *first, ...);
void mock_request_set(pd_request *req, const char *name, const char *value);
void mock_request_free(pd_request *req);

/* A reply buffer and the text the plugin set ("" if none). */
pd_reply *mock_reply_new(void);
const char *mock_reply_text(const pd_reply *reply);
void mock_reply_clear(pd_reply *reply);
void mock_reply_free(pd_reply *reply);

/* DNS: the answer for NAME/TYPE is STATUS (PD_DNS_OK ... PD_DNS_TIMEOUT)
 * with the NULL-terminated RECORDS ("192.0.2.1" for A and AAAA, the text of
 * a TXT, "10 mx.example" for MX, a name for PTR/CNAME/NS) and TTL. A name
 * nobody gave an answer for is NXDOMAIN. */
void mock_dns_answer(const char *name, unsigned type, int status, const char *const *records, unsigned ttl);
void mock_dns_reset(void);
/* ON (the default): an answer comes only after the check returned
 * PD_CHECK_WAIT, as in the daemon; off: at once, as from a warm cache. */
void mock_dns_wait(int on);
/* How many lookups the answers were given for (as if queried). */
unsigned long mock_dns_asked(void);

/* The state service: forget every entry; make every call fail (ON, as if
 * the backend were down; 0 again: it works); what host->store_remote says
 * (0 by default, as for GDBM). Values from store_get are freed when
 * mock_check's check returns. */
void mock_store_reset(void);
void mock_store_fail(int on);
void mock_store_set_remote(int on);

/* Run P's check for REQ as the daemon would: each PD_CHECK_WAIT gets the
 * answers it asked for and the check runs again (a WAIT with nothing asked
 * is PD_CHECK_ERROR). Returns the last check's result. */
int mock_check(const pd_plugin_desc *p, pd_instance *inst, pd_request *req, pd_reply *reply);

#ifdef __cplusplus
}
#endif
#endif
