/* gl_feed.c - test helper: run greylist requests through the plugin (mock host) on a state dir */
/* SPDX-License-Identifier: BSD-2-Clause */
/* usage: gl_feed STATE_DIR NOW 'section text' CLIENT SENDER RECIPIENT [INSTANCE]
 * prints the reply ("DUNNO" when the plugin left it empty, "ERROR" on error). */
#include <policyd/plugin.h>

#include "gl.h"
#include <policyd/mockhost.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	pd_instance inst;
	pd_request *req;
	pd_reply *reply;
	cfg_t *cfg;
	int r;

	if (argc < 7) {
		fputs("usage: gl_feed DIR NOW SECTION CLIENT SENDER RECIPIENT [INSTANCE]\n", stderr);
		return 2;
	}
	mock_clock = (time_t)strtoll(argv[2], NULL, 10);
	cfg = mock_section(gl_options, argv[3]);
	if (!cfg)
		return 2;
	if (mock_instance_init(&inst, &pd_plugin, "greylist", cfg, argv[1]) != 0)
		return 3;
	req = mock_request_new("request=smtpd_access_policy", "protocol_state=RCPT", NULL);
	mock_request_set(req, "client_address", argv[4]);
	mock_request_set(req, "sender", argv[5]);
	mock_request_set(req, "recipient", argv[6]);
	if (argc > 7)
		mock_request_set(req, "instance", argv[7]);
	reply = mock_reply_new();
	r = mock_check(&pd_plugin, &inst, req, reply);
	printf("%s\n", r != PD_CHECK_OK ? "ERROR" : *mock_reply_text(reply) ? mock_reply_text(reply) : "DUNNO");
	mock_request_free(req);
	mock_reply_free(reply);
	mock_instance_fini(&inst, &pd_plugin);
	cfg_free(cfg);
	return 0;
}
