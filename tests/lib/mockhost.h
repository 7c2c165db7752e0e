/* mockhost.h - a test-only pd_host for unit-testing plugins without the daemon */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_MOCKHOST_H
#define PD_MOCKHOST_H

#include <policyd/plugin.h>

/* The clock that mock_host.now() returns; tests move it. Test-only: the
 * daemon's host has no such variable. */
extern time_t mock_clock;
extern int mock_may_block; /* host->may_block(): 1 (a worker thread) unless a test sets 0 */

/* A host whose now() returns mock_clock and whose log() prints to stderr. */
extern const pd_host mock_host;

/* Build a request from "name=value" strings, NULL-terminated. The caller
 * frees it with mock_request_free(). */
pd_request *mock_request_new(const char *first, ...);
/* Add or replace an attribute. */
void mock_request_set(pd_request *req, const char *name, const char *value);
void mock_request_free(pd_request *req);

/* A reply buffer; mock_reply_text() returns what the plugin set ("" if none). */
pd_reply *mock_reply_new(void);
const char *mock_reply_text(const pd_reply *reply);
void mock_reply_clear(pd_reply *reply);
void mock_reply_free(pd_reply *reply);

/* Fill an instance for plugin NAME with the given section (may be NULL)
 * and state directory. */
void mock_instance(pd_instance *inst, const char *name, cfg_t *cfg, const char *state_dir);

/* Parse TEXT as the body of a plugin section with OPTIONS; NULL on error
 * (printed to stderr). Free with cfg_free(). */
cfg_t *mock_section(cfg_opt_t *options, const char *text);

#endif
