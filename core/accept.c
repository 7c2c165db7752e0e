/* accept.c - new connections from a listener, with a pause when descriptors run out */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "accept.h"
#include "conn.h"
#include "listeners.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <errno.h>
#include <stddef.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BURST 64
#define ACCEPT_PAUSE_MS 100 /* out of descriptors: how long a loop stops accepting */

/* resume - the pause is over: watch the listeners again (descriptors may be free) */
static void resume(pd_timer *t, uint64_t now)
{
	pd_loop *lp = (pd_loop *)((char *)t - offsetof(pd_loop, accept_timer));

	(void)now;
	lp->accept_paused = 0;
	if (lp->listening && pd_listeners_watch(lp, 1) < 0)
		pd_log(PD_LOG_ERR, "epoll: %s", strerror(errno));
}

/* pause_accepting - at EMFILE the connection stays in the kernel's backlog:
 * stop looking for a moment (the listener is level-triggered: it would wake
 * this loop again at once) */
static void pause_accepting(pd_loop *lp, const pd_listener *l)
{
	static atomic_ulong warned;

	if (atomic_fetch_add(&warned, 1) % 1000 == 0)
		pd_log(PD_LOG_ERR,
		       "accept on %s: %s (raise the file descriptor limit); "
		       "accepting paused for %d ms at a time, clients wait in the backlog",
		       l->text, strerror(errno), ACCEPT_PAUSE_MS);
	if (lp->accept_paused)
		return;
	pd_listeners_watch(lp, 0);
	lp->accept_paused = 1;
	lp->accept_timer.fire = resume;
	pd_timer_arm(&lp->timers, &lp->accept_timer, pd_now_us() + ACCEPT_PAUSE_MS * 1000u);
}

/* pd_accept_ready - take new connections */
void pd_accept_ready(pd_loop *lp, pd_io *io, uint32_t events)
{
	pd_listener *l = (pd_listener *)io;

	(void)events;
	if (!lp->listening)
		return;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				pause_accepting(lp, l);
			return;
		}
		if (!pd_conn_new(lp, fd, fd, l)) {
			close(fd);
			continue;
		}
		pd_metric_add(PD_M_CONN_ACCEPTED, 1);
	}
}
