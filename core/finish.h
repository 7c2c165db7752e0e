/* finish.h - the one way a request ends: its reply sent, counted in the metrics, logged */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_FINISH_H
#define PD_FINISH_H

#include "request.h"

/* Send R's reply on its connection, count it, log the decision line, let go
 * of its generation and make R ready for the next request. Returns what
 * pd_conn_flush returned: 1 sent, 0 the rest goes when the socket can take
 * it, -1 a write error. */
int pd_finish(pd_request *r);

/* R ran out of time (plugin HUNG, or NULL: it waited in a queue): send the
 * admin's on_error at once, without waiting for the socket, count and log
 * it. R stays as it is (a worker may still hold it). */
void pd_finish_timeout(pd_request *r, const char *hung);

#endif
