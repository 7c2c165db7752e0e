/* accept.h - new connections from a listener, with a pause when descriptors run out */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_ACCEPT_H
#define PD_ACCEPT_H

#include <stdint.h>

#include "loop.h"

/* A listener is readable on LP: take up to a burst of new connections. */
void pd_accept_ready(pd_loop *lp, pd_io *io, uint32_t events);

#endif
