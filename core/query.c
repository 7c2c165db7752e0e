/* query.c - policyd -q: requests from a file through the configured chains, each plugin's verdict printed */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * For an admin testing a configuration (postfwd's --cmd): the requests go
 * through the same pipeline as a connection's (spawn.c's loop, one socket
 * pair fed from the file), so filters, chain choice, DNS and blocking
 * plugins behave as in the daemon. The plugins run for real: state they
 * keep changes as for a real request.
 */
#include "config.h"
#include "query.h"
#include "chain.h"
#include "log.h"
#include "spawn.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FILE (16 * 1024 * 1024)

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

/* trace - one step, on stdout (plugins may run on a worker thread) */
static void trace(const char *instance, const char *what)
{
	pthread_mutex_lock(&out_mu);
	if (instance)
		printf("  %s: %s\n", instance, what);
	else
		printf("%s\n", what);
	fflush(stdout);
	pthread_mutex_unlock(&out_mu);
}

/* feed - a thread writing the file's text into the socket, then half-closing it */
typedef struct feed {
	int fd;
	char *buf;
	size_t len;
} feed;

static void *feeder(void *arg)
{
	feed *f = arg;
	size_t off = 0;

	while (off < f->len) {
		ssize_t w = write(f->fd, f->buf + off, f->len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	shutdown(f->fd, SHUT_WR);
	return NULL;
}

/* read_file - FILE's text, ending in an empty line; NULL (logged) if unreadable */
static char *read_file(const char *file, size_t *len)
{
	FILE *fp = fopen(file, "r");
	char *buf;
	size_t n;

	if (!fp) {
		pd_log(PD_LOG_ERR, "%s: cannot read: %s", file, strerror(errno));
		return NULL;
	}
	buf = malloc(MAX_FILE + 3);
	if (!buf) {
		fclose(fp);
		return NULL;
	}
	n = fread(buf, 1, MAX_FILE + 1, fp);
	fclose(fp);
	if (n > MAX_FILE) {
		pd_log(PD_LOG_ERR, "%s: larger than %d bytes", file, MAX_FILE);
		free(buf);
		return NULL;
	}
	if (n && buf[n - 1] != '\n')
		buf[n++] = '\n';
	if (n < 2 || buf[n - 2] != '\n') /* the last request's empty line */
		buf[n++] = '\n';
	*len = n;
	return buf;
}

/* pd_query_run - the file's requests through CONF */
int pd_query_run(pd_conf *c, const char *file)
{
	int sv[2], rc;
	pthread_t t;
	feed f;

	f.buf = read_file(file, &f.len);
	if (!f.buf) {
		pd_conf_free(c);
		return 1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		pd_log(PD_LOG_ERR, "socketpair: %s", strerror(errno));
		free(f.buf);
		pd_conf_free(c);
		return 1;
	}
	if (pd_conf_start(c) < 0) {
		close(sv[0]);
		close(sv[1]);
		free(f.buf);
		pd_conf_free(c);
		return 1;
	}
	f.fd = sv[1];
	if (pthread_create(&t, NULL, feeder, &f) != 0) {
		pd_log(PD_LOG_ERR, "cannot start a thread");
		close(sv[0]);
		close(sv[1]);
		free(f.buf);
		pd_conf_free(c);
		return 1;
	}
	pd_chain_trace = trace;
	rc = pd_spawn_serve(c, sv[0], STDOUT_FILENO); /* frees C */
	pd_chain_trace = NULL;
	pthread_join(t, NULL);
	close(sv[1]);
	free(f.buf);
	return rc < 0 ? 1 : 0;
}
