/* server.c - serve the policy protocol: event loops, worker pool, spawn mode */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * DESIGN
 *	A few network threads ("loops", one per core by default) each run
 *	an epoll loop over their own connections; every loop also watches
 *	all listening sockets (EPOLLEXCLUSIVE), so accepts spread across
 *	them. A loop reads, parses and answers. A complete request runs
 *	right on the loop when every plugin of its chain declared
 *	PD_PLUGIN_NONBLOCKING; otherwise it goes to a pool of worker
 *	threads, and the loop goes on serving other connections: a plugin
 *	waiting on DNS never stalls anybody else. The worker hands the
 *	result back through the loop's done list and eventfd. A connection
 *	has at most one request in flight (as Postfix sends them).
 *
 *	Configuration generations are reference counted: each request holds
 *	the generation it started on, so SIGHUP can swap in a new one
 *	without dropping connections, and the old one is freed when its last
 *	request is done.
 */
#include "config.h"
#include "server.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "util.h"
#include "escape.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_LOOPS 64
#define MAX_LISTENERS 64
#define ACCEPT_BURST 64
#define ACCEPT_PAUSE_MS 100 /* out of descriptors: how long a loop stops accepting */
#define DONE_TAG ((void *)1) /* epoll data of the eventfd */

typedef struct listener {
	int fd;
	int close_after_reply;
	char *text;
	char *chain;
	char *unix_path; /* removed at stop */
} listener;

typedef struct loop loop;

typedef struct conn {
	int fd;
	loop *lp;
	const listener *ls;
	char *in;
	size_t in_len, in_cap;
	pd_request req;
	char out[PD_REPLY_MAX + 16];
	size_t out_len, out_off;
	int busy;       /* a worker owns the request */
	int orphaned;   /* answered on timeout and closed; freed when the worker is done */
	int closing;    /* close as soon as the pending reply is out */
	int dead;       /* closed: freed after the current epoll batch */
	int eof;        /* the client sent everything it will send */
	int drained;    /* a short read emptied the socket: no recv until the next event */
	int rdhup;      /* the peer half-closed: read on to the end of input */
	int want_out;   /* EPOLLOUT armed */
	uint64_t last_us;
	uint64_t rq_start;      /* when the request being read began to arrive; 0: none */
	uint64_t t0;
	pd_conf *gen;           /* generation of the request in flight */
	const pd_chain *chain;  /* its chain */
	pd_result res;
	struct conn *prev, *next; /* the loop's list, oldest activity first */
	struct conn *qnext;       /* work queue or done list */
} conn;

struct loop {
	pthread_t tid;
	int ep;
	int efd;
	pthread_mutex_t done_lock;
	conn *done; /* finished by workers */
	conn *graveyard; /* closed in this epoll batch: freed after it */
	conn *head, *tail;
	size_t n_conns;
	size_t n_orphans; /* timed-out requests a worker still holds */
	uint64_t slow_sweep; /* when loop_slow last looked */
	uint64_t accept_resume; /* out of descriptors: accepting paused until then; 0: accepting */
	pd_conf *gen;     /* the generation this loop reads with (one reference) */
	unsigned gen_seq; /* gen_seq when it was taken */
};

static listener listeners[MAX_LISTENERS];
static size_t n_listeners;
static loop loops[MAX_LOOPS];
static size_t n_loops;

static pthread_t *workers;
static size_t n_workers;
static pthread_mutex_t work_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cond = PTHREAD_COND_INITIALIZER;
static conn *work_head, *work_tail;
static int work_stop;

static pthread_rwlock_t gen_lock = PTHREAD_RWLOCK_INITIALIZER;
static pd_conf *current;
static atomic_uint gen_seq; /* bumped by every swap */
static pd_conf *retired[16];
static size_t n_retired;

static atomic_int stopping;

/* gen_acquire - the current generation, referenced */
static pd_conf *gen_acquire(void)
{
	pd_conf *g;

	pthread_rwlock_rdlock(&gen_lock);
	g = current;
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	pthread_rwlock_unlock(&gen_lock);
	return g;
}

/* gen_release - drop a request's reference */
static void gen_release(pd_conf *g)
{
	atomic_fetch_sub_explicit(&g->refs, 1, memory_order_release);
}

/* loop_gen - the current generation as LP sees it: its own reference,
 * renewed (under the lock) only after a swap, so a request costs no lock */
static pd_conf *loop_gen(loop *lp)
{
	unsigned seq = atomic_load_explicit(&gen_seq, memory_order_acquire);

	if (!lp->gen || seq != lp->gen_seq) {
		if (lp->gen)
			gen_release(lp->gen);
		lp->gen = gen_acquire();
		lp->gen_seq = seq;
	}
	return lp->gen;
}

/* gen_hold - one more reference for a request, on a generation LP holds */
static pd_conf *gen_hold(pd_conf *g)
{
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	return g;
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
		listeners[n_listeners].fd = 3 + i;
		listeners[n_listeners].text = pd_xstrdup(text);
		listeners[n_listeners].chain = pd_xstrdup(chain);
		listeners[n_listeners].unix_path = NULL; /* systemd owns the socket file */
		n_listeners++;
		pd_log(PD_LOG_INFO, "listening on %s (chain %s)", text, chain);
	}
	return 0;
}

/* pd_server_bind - bind all listeners before privileges go */
int pd_server_bind(const pd_conf *c)
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
		listeners[n_listeners].fd = fd;
		listeners[n_listeners].close_after_reply = ep.close_after_reply;
		listeners[n_listeners].text = pd_xstrdup(c->listen[i].text);
		listeners[n_listeners].chain = pd_xstrdup(c->listen[i].chain);
		listeners[n_listeners].unix_path = ep.is_unix ? pd_xstrdup(ep.path) : NULL;
		n_listeners++;
		pd_log(PD_LOG_INFO, "listening on %s (chain %s)", c->listen[i].text, c->listen[i].chain);
	}
	return 0;
}

/* select_chain - policy_context names a chain, else the listener's */
static const pd_chain *select_chain(const pd_conf *g, const pd_request *req, const char *listener_chain)
{
	const char *ctxname = pd_req_get(req, "policy_context");
	const pd_chain *ch = NULL;

	if (ctxname && *ctxname) {
		ch = pd_conf_chain(g, ctxname);
		if (!ch && pd_log_verbose()) {
			char buf[80];

			pd_esc(buf, sizeof(buf), ctxname, 64, PD_ESC_TOKEN);
			pd_log(PD_LOG_DEBUG, "policy_context \"%s\" names no chain; using chain %s", buf, listener_chain);
		}
	}
	if (!ch)
		ch = pd_conf_chain(g, listener_chain);
	return ch ? ch : g->chains[0];
}

/* attr_or - attribute NAME of REQ, or DFLT when absent or empty */
static const char *attr_or(const pd_request *req, const char *name, const char *dflt)
{
	const char *v = pd_req_get(req, name);

	return v && *v ? v : dflt;
}

/* log_decision - one line per request with what an admin greps for */
static void log_decision(const pd_request *req, const pd_chain *ch, const pd_result *res, uint64_t us)
{
	char buf[1600];
	pd_line l = {.p = buf, .cap = sizeof(buf)};

	/* built by appending, not printf: this runs for every request */
	pd_line_str(&l, "decision: queue_id=");
	pd_line_esc(&l, attr_or(req, "queue_id", "-"), 39, PD_ESC_TOKEN);
	pd_line_str(&l, " client=");
	pd_line_esc(&l, attr_or(req, "client_name", "unknown"), 127, PD_ESC_TOKEN);
	pd_line_str(&l, "[");
	pd_line_esc(&l, attr_or(req, "client_address", ""), 63, PD_ESC_TOKEN);
	pd_line_str(&l, "] helo=");
	pd_line_esc(&l, attr_or(req, "helo_name", "-"), 127, PD_ESC_TOKEN);
	pd_line_str(&l, " sender=<");
	pd_line_esc(&l, attr_or(req, "sender", ""), 255, PD_ESC_TOKEN);
	pd_line_str(&l, "> recipient=<");
	pd_line_esc(&l, attr_or(req, "recipient", ""), 255, PD_ESC_TOKEN);
	pd_line_str(&l, "> state=");
	pd_line_esc(&l, attr_or(req, "protocol_state", "-"), 23, PD_ESC_TOKEN);
	pd_line_str(&l, " chain=");
	pd_line_str(&l, ch->name);
	pd_line_str(&l, " action=\"");
	pd_line_esc(&l, res->reply.text, 255, 0); /* in quotes: spaces stay */
	pd_line_str(&l, "\" plugin=");
	pd_line_str(&l, res->plugin);
	pd_line_str(&l, " time=");
	pd_line_uint(&l, (unsigned long long)us);
	pd_line_str(&l, "us");
	pd_log_text(PD_LOG_INFO, buf);
}

/* request_ok - only smtpd_access_policy requests are served */
static int request_ok(const pd_request *req)
{
	const char *r = pd_req_get(req, "request");

	if (r && strcmp(r, "smtpd_access_policy") == 0)
		return 1;
	{
		char buf[80];

		pd_esc(buf, sizeof(buf), r ? r : "(none)", 64, PD_ESC_TOKEN);
		pd_log(PD_LOG_WARNING, "unknown request type \"%s\"; closing the connection", buf);
	}
	return 0;
}

/* ---------------------------------------------------------------- loops */

static void conn_close(conn *c, const char *why);
static void conn_process(conn *c);

/* list_touch - move C to the tail of its loop's activity list */
static void list_touch(conn *c)
{
	loop *lp = c->lp;

	c->last_us = pd_now_us();
	if (lp->tail == c)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else if (lp->head == c)
		lp->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = lp->tail;
	c->next = NULL;
	if (lp->tail)
		lp->tail->next = c;
	lp->tail = c;
	if (!lp->head)
		lp->head = c;
}

/* list_remove - take C off its loop's list */
static void list_remove(conn *c)
{
	loop *lp = c->lp;

	if (c->prev)
		c->prev->next = c->next;
	else
		lp->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		lp->tail = c->prev;
	c->prev = c->next = NULL;
}

/* conn_free - release a connection's memory */
static void conn_free(conn *c)
{
	pd_req_free(&c->req);
	free(c->in);
	free(c);
	pd_metric_add(PD_M_CONN_OPEN, -1);
}

/* conn_detach - take a connection off its loop and close its socket */
static void conn_detach(conn *c)
{
	list_remove(c);
	c->lp->n_conns--;
	close(c->fd);
	c->fd = -1;
}

/* conn_bury - free C after the current epoll batch, which may still
 * hold events pointing at it */
static void conn_bury(conn *c)
{
	c->dead = 1;
	c->qnext = c->lp->graveyard;
	c->lp->graveyard = c;
}

/* conn_close - close a connection that no worker holds; freed after the batch */
static void conn_close(conn *c, const char *why)
{
	if (c->dead)
		return;
	if (why)
		pd_log(PD_LOG_DEBUG, "connection %d closed: %s", c->fd, why);
	conn_detach(c);
	conn_bury(c);
}

/* loop_bury_all - free the connections closed during the batch */
static void loop_bury_all(loop *lp)
{
	while (lp->graveyard) {
		conn *c = lp->graveyard;

		lp->graveyard = c->qnext;
		conn_free(c);
	}
}

/* conn_arm_out - ask for EPOLLOUT while a reply is pending, or stop */
static void conn_arm_out(conn *c, int on)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (on ? EPOLLOUT : 0), .data.ptr = c};

	if (c->want_out == on)
		return;
	c->want_out = on;
	epoll_ctl(c->lp->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* conn_flush - send what is pending; 1 done, 0 would block, -1 error */
static int conn_flush(conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_arm_out(c, 1);
			return 0;
		}
		return -1;
	}
	c->out_len = c->out_off = 0;
	conn_arm_out(c, 0);
	return 1;
}

/* conn_read - read what the socket has: 1 when the buffer filled up (more
 * may be waiting, and with EPOLLET no new event comes for it), 0 when the
 * socket is read out for now, -1 on a hard error */
static int conn_read(conn *c, const pd_limits *lim)
{
	size_t want = lim->max_line + 64;

	if (want < 1024)
		want = 1024;
	if (c->in_cap < want) {
		c->in = pd_xrealloc(c->in, want);
		c->in_cap = want;
	}
	while (!c->eof && !c->drained && c->in_len < c->in_cap) {
		ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);

		if (n > 0) {
			size_t asked = c->in_cap - c->in_len;

			c->in_len += (size_t)n;
			if ((size_t)n < asked && !c->rdhup) {
				/* a short read took all the socket had: the next byte
				 * to arrive raises a new (edge-triggered) event */
				c->drained = 1;
				break;
			}
			continue;
		}
		if (n == 0) {
			c->eof = 1;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		return -1;
	}
	list_touch(c);
	return c->in_len == c->in_cap && !c->eof && !c->drained;
}

/* finish_request - reply, then log, and get ready for the next request */
static int finish_request(conn *c)
{
	uint64_t us = pd_now_us() - c->t0;
	int rc;

	c->out_len = pd_proto_reply(c->out, sizeof(c->out), c->res.reply.text);
	c->out_off = 0;
	if (c->ls->close_after_reply)
		c->closing = 1; /* one request per connection: close once the reply is out */
	pd_metrics_request(c->res.reply.text, us); /* counted before the client can scrape */
	rc = conn_flush(c); /* the client waits for this; the log line can follow */
	log_decision(&c->req, c->chain, &c->res, us);
	gen_release(c->gen);
	c->gen = NULL;
	c->chain = NULL;
	pd_req_reset(&c->req);
	pd_req_trim(&c->req);
	return rc;
}

/* queue_work - hand a request to the worker pool */
static void queue_work(conn *c)
{
	c->qnext = NULL;
	pthread_mutex_lock(&work_lock);
	if (work_tail)
		work_tail->qnext = c;
	else
		work_head = c;
	work_tail = c;
	pthread_cond_signal(&work_cond);
	pthread_mutex_unlock(&work_lock);
}

/* conn_process - parse buffered input, run or queue complete requests */
static void conn_process(conn *c)
{
	for (;;) {
		pd_conf *g;
		size_t used = 0;
		const char *why = "";
		enum pd_feed f;
		int rc;

		if (c->busy || c->out_len)
			return; /* wait for the worker or for the socket */
		if (c->closing) {
			conn_close(c, "close_after_reply");
			return;
		}
		g = loop_gen(c->lp);
		rc = conn_read(c, &g->limits);
		if (rc < 0) {
			conn_close(c, "read error");
			return;
		}
		f = pd_proto_feed(&c->req, c->in, c->in_len, &used, &g->limits, &why);
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
		if (f == PD_FEED_GARBAGE) {
			pd_metric_add(PD_M_GARBAGE_LINES, 1);
			pd_log(PD_LOG_WARNING, "connection %d: %s", c->fd, why);
			continue;
		}
		if (f == PD_FEED_ERROR) {
			pd_metric_add(PD_M_CONN_OVER_LIMIT, 1);
			pd_log(PD_LOG_WARNING, "connection %d: %s (limit %zu line, %zu attributes, %zu bytes); closing",
			       c->fd, why, g->limits.max_line, g->limits.max_attrs, g->limits.max_request);
			conn_close(c, NULL);
			return;
		}
		if (f == PD_FEED_MORE) {
			if (rc == 1)
				continue; /* the buffer was full: read on */
			if ((c->req.lines || c->in_len) && !c->rq_start)
				c->rq_start = pd_now_us(); /* read_timeout runs from here */
			if (c->eof) {
				if (c->req.lines)
					pd_log(PD_LOG_WARNING, "connection %d: client closed in the middle of a request",
					       c->fd);
				conn_close(c, "end of input");
			}
			return;
		}
		/* PD_FEED_DONE: a complete request */
		c->rq_start = 0;
		if (!request_ok(&c->req)) {
			pd_metric_add(PD_M_BAD_REQUESTS, 1);
			conn_close(c, NULL);
			return;
		}
		c->t0 = pd_now_us();
		c->gen = gen_hold(g);
		c->chain = select_chain(g, &c->req, c->ls->chain);
		if (pd_chain_run(c->chain, &c->req, g->default_action, g->on_error, &c->res, 0) == PD_CHAIN_BLOCKED) {
			c->busy = 1; /* a plugin may block: a worker goes on from there */
			pd_metric_add(PD_M_HANDOFFS, 1);
			queue_work(c);
			return;
		}
		if (finish_request(c) < 0) {
			conn_close(c, "write error");
			return;
		}
	}
}

static unsigned long drops_unlogged; /* under work_lock */
static uint64_t drops_since;          /* when the first of them was dropped */

/* note_drops - log the dropped requests once the queue is empty, or once a
 * second under sustained overload (work_lock held) */
static void note_drops(int queue_empty)
{
	if (!drops_unlogged || (!queue_empty && pd_now_us() - drops_since < 1000000u))
		return;
	pd_log(PD_LOG_WARNING,
	       "dropped %lu request(s) whose time budget ran out while they waited for a worker "
	       "(all %zu worker threads busy: raise threads, or see which plugin is slow); on_error applied",
	       drops_unlogged, n_workers);
	drops_unlogged = 0;
}

/* expired - has C's request outlived request_timeout while it waited? */
static int expired(const conn *c)
{
	uint64_t now = pd_now_us();

	return now > c->t0 && now - c->t0 > (uint64_t)c->gen->request_timeout * 1000000u;
}

/* worker_main - run chains that may block */
static void *worker_main(void *arg)
{
	(void)arg;
	pd_chain_may_block(1);
	for (;;) {
		conn *c;
		loop *lp;
		uint64_t one = 1;

		pthread_mutex_lock(&work_lock);
		note_drops(!work_head);
		while (!work_head && !work_stop)
			pthread_cond_wait(&work_cond, &work_lock);
		if (!work_head) {
			pthread_mutex_unlock(&work_lock);
			return NULL;
		}
		c = work_head;
		work_head = c->qnext;
		if (!work_head)
			work_tail = NULL;
		if (expired(c)) { /* answered on_error already, or about to be: never run it late */
			if (!drops_unlogged++)
				drops_since = pd_now_us();
			pthread_mutex_unlock(&work_lock);
			pd_metric_add(PD_M_DROPPED, 1);
			pd_reply_set(&c->res.reply, c->gen->on_error);
			c->res.plugin = "timeout";
		} else {
			pthread_mutex_unlock(&work_lock);
			pd_chain_run(c->chain, &c->req, c->gen->default_action, c->gen->on_error, &c->res, 1);
		}
		lp = c->lp;
		pthread_mutex_lock(&lp->done_lock);
		c->qnext = lp->done;
		lp->done = c;
		pthread_mutex_unlock(&lp->done_lock);
		(void)!write(lp->efd, &one, sizeof(one));
	}
}

/* loop_done - answer requests the workers finished */
static void loop_done(loop *lp)
{
	uint64_t v;
	conn *list;

	(void)!read(lp->efd, &v, sizeof(v));
	pthread_mutex_lock(&lp->done_lock);
	list = lp->done;
	lp->done = NULL;
	pthread_mutex_unlock(&lp->done_lock);
	while (list) {
		conn *c = list;

		list = c->qnext;
		c->busy = 0;
		if (c->orphaned) { /* answered on timeout and closed already */
			gen_release(c->gen);
			c->gen = NULL;
			lp->n_orphans--;
			conn_bury(c);
			continue;
		}
		if (finish_request(c) < 0) {
			conn_close(c, "write error");
			continue;
		}
		conn_process(c); /* more input may have come meanwhile */
	}
}

/* listeners_watch - add (ON) or remove this loop's interest in the listening
 * sockets; -1 when one cannot be added */
static int listeners_watch(loop *lp, int on)
{
	for (size_t k = 0; k < n_listeners; k++) {
		struct epoll_event lev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &listeners[k]};

		if (epoll_ctl(lp->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, listeners[k].fd, &lev) < 0 && on)
			return -1;
	}
	return 0;
}

/* loop_accept - take new connections from listener L */
static void loop_accept(loop *lp, const listener *l)
{
	for (int i = 0; i < ACCEPT_BURST; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		conn *c;
		struct epoll_event ev;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				static atomic_ulong warned;

				/* the connection stays in the backlog: stop looking for a moment
				 * (the listener is level-triggered: it would wake this loop at once) */
				if (atomic_fetch_add(&warned, 1) % 1000 == 0)
					pd_log(PD_LOG_ERR,
					       "accept on %s: %s (raise the file descriptor limit); "
					       "accepting paused for %d ms at a time, clients wait in the backlog",
					       l->text, strerror(errno), ACCEPT_PAUSE_MS);
				if (!lp->accept_resume) {
					listeners_watch(lp, 0);
					lp->accept_resume = pd_now_us() + ACCEPT_PAUSE_MS * 1000u;
				}
			}
			return;
		}
		c = pd_xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->lp = lp;
		c->ls = l;
		pd_req_init(&c->req);
		ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
		ev.data.ptr = c;
		if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			pd_log(PD_LOG_ERR, "epoll_ctl: %s", strerror(errno));
			close(fd);
			free(c);
			continue;
		}
		lp->n_conns++;
		list_touch(c);
		pd_metric_add(PD_M_CONN_OPEN, 1);
		pd_metric_add(PD_M_CONN_ACCEPTED, 1);
	}
}

/* loop_idle - close connections idle longer than idle_timeout */
static void loop_idle(loop *lp, int idle_timeout)
{
	uint64_t limit = (uint64_t)idle_timeout * 1000000u;
	uint64_t now = pd_now_us();
	conn *c = lp->head;

	while (c && now - c->last_us > limit) {
		conn *next = c->next;

		if (!c->busy) {
			pd_log(PD_LOG_INFO, "connection %d idle for %d s%s; closing", c->fd, idle_timeout,
			       c->req.lines ? " in the middle of a request" : "");
			conn_close(c, NULL);
		}
		c = next;
	}
}

/* loop_slow - close connections whose request has not arrived whole within
 * read_timeout (a client that trickles bytes keeps its idle timer fresh);
 * looks at most once a second, so that it costs nothing under load */
static void loop_slow(loop *lp, int read_timeout)
{
	uint64_t now = pd_now_us(), limit = (uint64_t)read_timeout * 1000000u;
	conn *c = lp->head;

	if (now - lp->slow_sweep < 1000000u)
		return;
	lp->slow_sweep = now;
	while (c) {
		conn *next = c->next;

		if (!c->busy && c->rq_start && now - c->rq_start > limit) {
			pd_metric_add(PD_M_CONN_SLOW, 1);
			pd_log(PD_LOG_WARNING,
			       "connection %d: request not complete after %d s (%zu line(s), %zu byte(s) of a line so far); "
			       "closing",
			       c->fd, read_timeout, c->req.lines, c->in_len);
			conn_close(c, NULL);
		}
		c = next;
	}
}

/* over_budget - has C's request, or the plugin it is in, run too long */
static int over_budget(conn *c, uint64_t now, int request_timeout)
{
	const char *running = atomic_load_explicit(&c->res.running, memory_order_acquire);
	int pt = atomic_load_explicit(&c->res.running_timeout, memory_order_relaxed);

	uint64_t since = atomic_load_explicit(&c->res.running_since, memory_order_relaxed);

	/* a worker may stamp running_since after NOW was read: never subtract
	 * a later time from an earlier one (the unsigned difference would be huge) */
	if (now > c->t0 && now - c->t0 > (uint64_t)request_timeout * 1000000u)
		return 1;
	return running && pt > 0 && now > since && now - since > (uint64_t)pt * 1000000u;
}

/* loop_timeouts - answer on_error for requests over their time budget */
static void loop_timeouts(loop *lp, int request_timeout, int min_timeout)
{
	uint64_t now = pd_now_us();
	conn *c = lp->head;

	/* the list is ordered by last activity: nothing later can be over */
	while (c && now - c->last_us > (uint64_t)min_timeout * 1000000u) {
		conn *next = c->next;

		if (c->busy && !c->orphaned && over_budget(c, now, request_timeout)) {
			pd_result res = {.plugin = "timeout"};
			const char *hung = atomic_load(&c->res.running);

			pd_log(PD_LOG_ERR,
			       "connection %d: no answer within its time budget (plugin %s%s, request_timeout %d s); "
			       "on_error \"%s\" applies and the connection is closed",
			       c->fd, hung ? hung : "(queue)", hung ? " timeout" : "", request_timeout, c->gen->on_error);
			pd_reply_set(&res.reply, c->gen->on_error);
			res.plugin = hung ? hung : "timeout";
			c->out_len = pd_proto_reply(c->out, sizeof(c->out), res.reply.text);
			c->out_off = 0;
			(void)send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
			log_decision(&c->req, c->chain, &res, now - c->t0);
			pd_metrics_request(res.reply.text, now - c->t0);
			pd_metric_add(PD_M_TIMEOUTS, 1);
			c->orphaned = 1;
			lp->n_orphans++;
			conn_detach(c);
		}
		c = next;
	}
}

/* is_listener - epoll data pointing into the listener table */
static const listener *is_listener(void *p)
{
	if ((char *)p >= (char *)listeners && (char *)p < (char *)(listeners + MAX_LISTENERS))
		return p;
	return NULL;
}

/* loop_main - one network thread */
static void *loop_main(void *arg)
{
	loop *lp = arg;
	struct epoll_event evs[256];
	int listening = 1;
	uint64_t stop_deadline = 0;

	pd_log_batch(1);
	for (;;) {
		int n;

		pd_log_flush(); /* the lines of the last batch, in one system call */
		n = epoll_wait(lp->ep, evs, 256, lp->accept_resume ? ACCEPT_PAUSE_MS : 500);
		int idle, rto, mto, rdto;

		if (atomic_load(&stopping)) {
			if (listening) {
				listeners_watch(lp, 0);
				listening = 0;
				stop_deadline = pd_now_us() + (uint64_t)atomic_load(&stopping) * 1000u;
			}
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			const listener *l;

			if (p == DONE_TAG) {
				loop_done(lp);
			} else if ((l = is_listener(p))) {
				if (listening)
					loop_accept(lp, l);
			} else {
				conn *c = p;

				if (c->dead)
					continue;
				c->drained = 0; /* new data (or end of input) may be there */
				if (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					c->rdhup = 1;
				if (c->busy)
					continue; /* gone, or looked at again when the worker is done */
				if (c->out_len && (evs[i].events & EPOLLOUT)) {
					int rc = conn_flush(c);

					if (rc < 0) {
						conn_close(c, "write error");
						continue;
					}
					if (rc == 0)
						continue;
					/* the reply is out: go on with what is buffered (the next
					 * pipelined request, EOF, close_after_reply) even when no
					 * new input came with this event */
					conn_process(c);
					continue;
				}
				if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					conn_process(c);
			}
		}
		{
			pd_conf *g = loop_gen(lp); /* renewed here at least every 500 ms after a swap */

			idle = g->idle_timeout;
			rto = g->request_timeout;
			mto = g->min_timeout;
			rdto = g->read_timeout;
		}
		if (lp->accept_resume && listening && pd_now_us() >= lp->accept_resume) {
			lp->accept_resume = 0; /* try again: descriptors may have been freed */
			if (listeners_watch(lp, 1) < 0)
				pd_log(PD_LOG_ERR, "epoll: %s", strerror(errno));
		}
		loop_timeouts(lp, rto, mto);
		loop_idle(lp, idle);
		loop_slow(lp, rdto);
		if (!listening) {
			/* stopping: idle connections go now, busy ones when done */
			conn *c = lp->head;

			while (c) {
				conn *next = c->next;

				if (!c->busy && !c->out_len)
					conn_close(c, NULL);
				c = next;
			}
			/* done when no connection is left and no worker holds a timed-out request */
			if ((!lp->head && !lp->n_orphans) || pd_now_us() > stop_deadline) {
				loop_bury_all(lp);
				if (lp->gen)
					gen_release(lp->gen);
				lp->gen = NULL;
				break;
			}
		}
		loop_bury_all(lp);
	}
	pd_log_batch(0);
	return NULL;
}

/* pd_server_start - loops and workers */
int pd_server_start(pd_conf *c)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	current = c;
	n_loops = c->io_threads > 0 ? (size_t)c->io_threads : (size_t)(ncpu > 0 ? ncpu : 1);
	if (n_loops > MAX_LOOPS)
		n_loops = MAX_LOOPS;
	for (size_t i = 0; i < n_loops; i++) {
		loop *lp = &loops[i];
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = DONE_TAG};

		lp->ep = epoll_create1(EPOLL_CLOEXEC);
		lp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		pthread_mutex_init(&lp->done_lock, NULL);
		if (lp->ep < 0 || lp->efd < 0 || epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->efd, &ev) < 0) {
			pd_log(PD_LOG_ERR, "epoll: %s", strerror(errno));
			return -1;
		}
		if (listeners_watch(lp, 1) < 0) {
			pd_log(PD_LOG_ERR, "epoll: %s", strerror(errno));
			return -1;
		}
	}
	n_workers = (size_t)c->threads;
	workers = pd_xcalloc(n_workers, sizeof(*workers));
	for (size_t i = 0; i < n_workers; i++)
		if (pthread_create(&workers[i], NULL, worker_main, NULL) != 0) {
			pd_log(PD_LOG_ERR, "cannot start worker thread");
			return -1;
		}
	for (size_t i = 0; i < n_loops; i++)
		if (pthread_create(&loops[i].tid, NULL, loop_main, &loops[i]) != 0) {
			pd_log(PD_LOG_ERR, "cannot start network thread");
			return -1;
		}
	if (*c->metrics_listen && pd_metrics_start(c->metrics_listen) < 0)
		return -1;
	pd_log(PD_LOG_INFO, "serving with %zu network threads and %zu worker threads", n_loops, n_workers);
	return 0;
}

/* pd_server_conf - the generation in use */
const pd_conf *pd_server_conf(void)
{
	return current;
}

/* pd_server_retired_full - the number of retired generations still held by
 * requests when no room is left for another, else 0 (main thread): a reload
 * must then be refused, never waited for */
size_t pd_server_retired_full(void)
{
	pd_server_reap();
	return n_retired < sizeof(retired) / sizeof(retired[0]) ? 0 : n_retired;
}

/* pd_server_swap - serve NEWC; retire the old generation (room for it was
 * checked with pd_server_retired_full) */
void pd_server_swap(pd_conf *newc)
{
	pd_conf *old;

	pthread_rwlock_wrlock(&gen_lock);
	old = current;
	current = newc;
	atomic_fetch_add_explicit(&gen_seq, 1, memory_order_release);
	pthread_rwlock_unlock(&gen_lock);
	for (size_t i = 0; i < n_loops; i++) { /* wake the loops: they let go of the old one now */
		uint64_t one = 1;

		(void)!write(loops[i].efd, &one, sizeof(one));
	}
	retired[n_retired++] = old;
	pd_server_reap();
}

/* pd_server_reap - free retired generations with no request left */
void pd_server_reap(void)
{
	for (size_t i = 0; i < n_retired;) {
		if (atomic_load_explicit(&retired[i]->refs, memory_order_acquire) == 0) {
			pd_conf_free(retired[i]);
			retired[i] = retired[--n_retired];
		} else {
			i++;
		}
	}
}

/* pd_server_stop - graceful stop */
int pd_server_stop(int grace_ms)
{
	struct timespec deadline;
	int stuck = 0;

	atomic_store(&stopping, grace_ms > 0 ? grace_ms : 1);
	for (size_t i = 0; i < n_loops; i++)
		pthread_join(loops[i].tid, NULL);
	pthread_mutex_lock(&work_lock);
	work_stop = 1;
	pthread_cond_broadcast(&work_cond);
	pthread_mutex_unlock(&work_lock);
	/* a worker stuck in a plugin is not waited for past a short delay */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 2;
	for (size_t i = 0; i < n_workers; i++)
		if (pthread_timedjoin_np(workers[i], NULL, &deadline) != 0)
			stuck++;
	if (stuck) {
		pd_log(PD_LOG_ERR, "%d worker thread(s) still inside a plugin; exiting without running fini", stuck);
		return -1;
	}
	for (size_t i = 0; i < n_loops; i++) {
		/* requests finished after their loop stopped, orphans included */
		while (loops[i].done) {
			conn *c = loops[i].done;

			loops[i].done = c->qnext;
			c->busy = 0;
			if (c->orphaned) {
				gen_release(c->gen);
				conn_free(c);
			}
		}
		while (loops[i].head) {
			conn *c = loops[i].head;

			if (c->gen)
				gen_release(c->gen);
			conn_close(c, NULL);
		}
		loop_bury_all(&loops[i]);
		close(loops[i].ep);
		close(loops[i].efd);
	}
	for (size_t i = 0; i < n_listeners; i++) {
		close(listeners[i].fd);
		if (listeners[i].unix_path)
			unlink(listeners[i].unix_path);
		free(listeners[i].text);
		free(listeners[i].chain);
		free(listeners[i].unix_path);
	}
	n_listeners = 0;
	free(workers);
	pd_metrics_stop();
	pd_server_reap();
	for (size_t i = 0; i < n_retired; i++)
		pd_conf_free(retired[i]);
	n_retired = 0;
	pd_conf_free(current);
	current = NULL;
	return 0;
}

/* pd_server_stats - SIGUSR1: every metric to the log, one per line */
void pd_server_stats(void)
{
	size_t len;
	char *text = pd_metrics_render(&len), *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (line[0] != '#')
			pd_log(PD_LOG_INFO, "stats: %s", line);
	free(text);
}

/* ----------------------------------------------------------- spawn mode */

/* write_all - blocking write of a whole buffer */
static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* pd_spawn_serve - one connection on stdin/stdout (master.cf spawn) */
int pd_spawn_serve(pd_conf *g, int in, int out)
{
	size_t cap = g->limits.max_line + 64 < 1024 ? 1024 : g->limits.max_line + 64;
	char *buf = pd_xmalloc(cap);
	size_t len = 0;
	int eof = 0, rc = 0;
	pd_request req;
	pd_result res;
	char reply[PD_REPLY_MAX + 16];

	pd_req_init(&req);
	pd_chain_may_block(1); /* one connection, one thread: plugins may wait here */
	for (;;) {
		size_t used = 0;
		const char *why = "";
		enum pd_feed f = pd_proto_feed(&req, buf, len, &used, &g->limits, &why);

		memmove(buf, buf + used, len - used);
		len -= used;
		if (f == PD_FEED_GARBAGE) {
			pd_log(PD_LOG_WARNING, "stdin: %s", why);
			continue;
		}
		if (f == PD_FEED_ERROR) {
			pd_log(PD_LOG_WARNING, "stdin: %s; closing", why);
			rc = -1;
			break;
		}
		if (f == PD_FEED_DONE) {
			uint64_t t0 = pd_now_us();
			const pd_chain *ch;
			size_t n;

			if (!request_ok(&req)) {
				rc = -1;
				break;
			}
			ch = select_chain(g, &req, "default");
			pd_chain_run(ch, &req, g->default_action, g->on_error, &res, 0);
			n = pd_proto_reply(reply, sizeof(reply), res.reply.text);
			log_decision(&req, ch, &res, pd_now_us() - t0);
			pd_req_reset(&req);
			if (write_all(out, reply, n) < 0) {
				rc = -1;
				break;
			}
			continue;
		}
		/* PD_FEED_MORE */
		if (eof) {
			if (req.lines)
				pd_log(PD_LOG_WARNING, "stdin: end of input in the middle of a request");
			break;
		}
		{
			struct pollfd pfd = {.fd = in, .events = POLLIN};
			int pr = poll(&pfd, 1, g->idle_timeout * 1000);
			ssize_t r;

			if (pr == 0) {
				pd_log(PD_LOG_INFO, "stdin: idle for %d s; exiting", g->idle_timeout);
				break;
			}
			if (pr < 0 && errno == EINTR)
				continue;
			r = read(in, buf + len, cap - len);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				eof = 1;
			else
				len += (size_t)r;
		}
	}
	pd_req_free(&req);
	free(buf);
	return rc;
}
