/* endpoint.h - listening endpoints in Postfix notation: parse one, bind it */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_ENDPOINT_H
#define PD_ENDPOINT_H

#include <sys/types.h>

/* "inet:127.0.0.1:10023", "inet:[::1]:10023", "unix:/path/sock",
 * "127.0.0.1:10023" or "/path/sock", optionally followed by flags:
 * "close_after_reply" (for Exim's ${readsocket} without shutdown). */
typedef struct pd_endpoint {
	int is_unix;
	char host[256]; /* inet: address or name, empty = all */
	char port[32];
	char path[108]; /* unix: socket path */
	int close_after_reply; /* flag "close_after_reply": one request per connection */
} pd_endpoint;

/* Parse TEXT; 0, or -1 with WHY set to static text. */
int pd_endpoint_parse(const char *text, pd_endpoint *ep, const char **why);

/* Bind and listen on EP. Unix sockets get MODE and, if UID/GID are not
 * (uid_t)-1, that owner; a stale socket file is replaced. Returns the
 * non-blocking fd, or -1 after logging why. */
int pd_endpoint_listen(const pd_endpoint *ep, const char *text, unsigned mode, uid_t uid, gid_t gid);

#endif
