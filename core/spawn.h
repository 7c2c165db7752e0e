/* spawn.h - spawn mode: one connection on stdin/stdout, as master.cf's spawn(8) runs it */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_SPAWN_H
#define PD_SPAWN_H

#include "conf.h"

/* Serve one connection on IN/OUT until it ends (EOF, idle or read timeout,
 * a protocol error) with CONF, whose plugins run (init, then fini at the
 * end); the same pipeline as the daemon's connections, metrics included.
 * Frees CONF. Returns 0, or -1 when it could not start or the session
 * ended on a protocol violation. */
int pd_spawn_serve(pd_conf *conf, int in, int out);

#endif
