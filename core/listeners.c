/* listeners.c - the daemon's listening sockets: bound before privileges go, watched by every loop */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "listeners.h"
#include "accept.h"
#include "conf.h"
#include "endpoint.h"
#include "log.h"
#include "notify.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_LISTENERS 64

static pd_listener listeners[MAX_LISTENERS];
static size_t n_listeners;

/* add - one more listener on FD */
static void add(int fd, int close_after_reply, const char *text, const char *chain, const char *unix_path)
{
	pd_listener *l = &listeners[n_listeners++];

	l->io.ready = pd_accept_ready;
	l->fd = fd;
	l->close_after_reply = close_after_reply;
	l->text = pd_xstrdup(text);
	l->chain = pd_xstrdup(chain);
	l->unix_path = unix_path ? pd_xstrdup(unix_path) : NULL;
	pd_log(PD_LOG_INFO, "listening on %s (chain %s)", text, chain);
}

/* adopt_systemd - listeners passed by socket activation; -1 if none */
static int adopt_systemd(const pd_conf *c)
{
	const char *names[MAX_LISTENERS];
	int n = pd_listen_fds(names, MAX_LISTENERS);

	if (n <= 0)
		return -1;
	if (c->n_listen)
		pd_log(PD_LOG_INFO, "socket activation: using %d socket(s) from systemd instead of listen", n);
	for (int i = 0; i < n; i++) {
		const char *chain = names[i] && pd_conf_chain(c, names[i]) ? names[i] : "default";
		char text[96];

		snprintf(text, sizeof(text), "systemd:%d(%s)", 3 + i, names[i] ? names[i] : "-");
		add(3 + i, 0, text, chain, NULL); /* systemd owns the socket file */
	}
	return 0;
}

/* pd_listeners_bind - bind all listeners before privileges go */
int pd_listeners_bind(const pd_conf *c)
{
	if (adopt_systemd(c) == 0)
		return 0;
	if (c->n_listen == 0) {
		pd_log(PD_LOG_ERR, "%s: no listen address configured (listen = { \"inet:127.0.0.1:10023\" })", c->file);
		return -1;
	}
	if (c->n_listen > MAX_LISTENERS) {
		pd_log(PD_LOG_ERR, "%s: more than %d listen addresses", c->file, MAX_LISTENERS);
		return -1;
	}
	for (size_t i = 0; i < c->n_listen; i++) {
		pd_endpoint ep;
		const char *why;
		int fd;

		if (pd_endpoint_parse(c->listen[i].text, &ep, &why) < 0) {
			pd_log(PD_LOG_ERR, "listen %s: %s", c->listen[i].text, why);
			return -1;
		}
		fd = pd_endpoint_listen(&ep, c->listen[i].text, c->socket_mode, c->socket_uid, c->socket_gid);
		if (fd < 0)
			return -1;
		add(fd, ep.close_after_reply, c->listen[i].text, c->listen[i].chain, ep.is_unix ? ep.path : NULL);
	}
	return 0;
}

/* pd_listeners_watch - LP accepts on every listener, or stops */
int pd_listeners_watch(pd_loop *lp, int on)
{
	for (size_t k = 0; k < n_listeners; k++) {
		if (on && pd_loop_watch(lp, listeners[k].fd, EPOLLIN | EPOLLEXCLUSIVE, &listeners[k].io) < 0)
			return -1;
		if (!on)
			pd_loop_unwatch(lp, listeners[k].fd);
	}
	return 0;
}

/* pd_listeners_close - close, and remove the socket files we made */
void pd_listeners_close(void)
{
	for (size_t i = 0; i < n_listeners; i++) {
		close(listeners[i].fd);
		if (listeners[i].unix_path)
			unlink(listeners[i].unix_path);
		free(listeners[i].text);
		free(listeners[i].chain);
		free(listeners[i].unix_path);
	}
	n_listeners = 0;
}
