/* spfdrv.c - test-only policy server: libspf2 as it is (its own resolver, no fixes) behind a unix socket */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Usage: spfdrv SECTION-FILE SOCKET-PATH, where SECTION-FILE says "ASIS".
 * Listens on SOCKET-PATH and answers the Postfix policy protocol with plain
 * libspf2's result, one thread per connection, until SIGTERM: for
 * `tests/spf/rfc7208.py --asis`, which compares libspf2 alone with the spf
 * plugin (that one runs in the daemon, on the core's DNS service).
 */
#include <policyd/mockhost.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <spf2/spf.h>

static SPF_server_t *asis; /* "ASIS": plain libspf2, for comparison */
static pthread_mutex_t asis_lock = PTHREAD_MUTEX_INITIALIZER;

/* asis_check - libspf2 as it is: its own resolver, its own result */
static void asis_check(const pd_request *req, char *out, size_t len)
{
	const char *ip = mock_host.attr(req, "client_address");
	const char *helo = mock_host.attr(req, "helo_name");
	const char *sender = mock_host.attr(req, "sender");
	SPF_request_t *r;
	SPF_response_t *resp = NULL;
	SPF_result_t res;

	pthread_mutex_lock(&asis_lock);
	r = SPF_request_new(asis);
	if (SPF_request_set_ipv4_str(r, ip ? ip : "") != SPF_E_SUCCESS)
		SPF_request_set_ipv6_str(r, ip ? ip : "");
	if (helo && *helo)
		SPF_request_set_helo_dom(r, helo);
	SPF_request_set_env_from(r, sender ? sender : "");
	SPF_request_query_mailfrom(r, &resp);
	res = resp ? SPF_response_result(resp) : SPF_RESULT_INVALID;
	if (res == SPF_RESULT_FAIL)
		snprintf(out, len, "550 5.7.23 fail");
	else if (res == SPF_RESULT_PERMERROR)
		snprintf(out, len, "550 5.7.24 permerror");
	else if (res == SPF_RESULT_TEMPERROR)
		snprintf(out, len, "DEFER_IF_PERMIT 4.7.24 temperror");
	else
		snprintf(out, len, "PREPEND Received-SPF: %s", SPF_strresult(res));
	if (resp)
		SPF_response_free(resp);
	SPF_request_free(r);
	pthread_mutex_unlock(&asis_lock);
}

/* serve - answer policy requests on one connection */
static void *serve(void *arg)
{
	int fd = (int)(long)arg;
	FILE *in = fdopen(fd, "r");
	char line[4096];
	pd_request *req = NULL;

	if (!in) {
		close(fd);
		return NULL;
	}
	while (fgets(line, sizeof(line), in)) {
		size_t n = strcspn(line, "\r\n");

		line[n] = 0;
		if (n == 0) {
			pd_reply *rep = mock_reply_new();
			char out[PD_REPLY_MAX + 32];
			const char *t;
			int len;

			if (!req)
				req = mock_request_new(NULL);
			{
				char a[PD_REPLY_MAX];

				asis_check(req, a, sizeof(a));
				mock_host.reply(rep, "%s", a);
			}
			t = mock_reply_text(rep);
			len = snprintf(out, sizeof(out), "action=%s\n\n", t);
			if (write(fd, out, (size_t)len) != len)
				break;
			mock_reply_free(rep);
			mock_request_free(req);
			req = NULL;
			continue;
		}
		if (!strchr(line, '='))
			continue;
		if (!req)
			req = mock_request_new(line, NULL);
		else {
			char *eq = strchr(line, '=');

			*eq = 0;
			mock_request_set(req, line, eq + 1);
		}
	}
	if (req)
		mock_request_free(req);
	fclose(in);
	return NULL;
}

/* main - parse the section, init the plugin, accept connections */
int main(int argc, char **argv)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	FILE *f;
	char text[65536];
	size_t n;
	int lfd;

	if (argc != 3 || strlen(argv[2]) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "usage: spfdrv SECTION-FILE SOCKET-PATH\n");
		return 2;
	}
	f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = 0;
	fclose(f);
	mock_clock = time(NULL);
	if (strncmp(text, "ASIS", 4) != 0) {
		fprintf(stderr, "spfdrv: runs libspf2 as it is only (ASIS); the spf plugin runs in policyd\n");
		return 2;
	}
	asis = SPF_server_new(SPF_DNS_RESOLV, 0); /* no cache: zones change per scenario */
	if (!asis)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sun.sun_path, argv[2]);
	unlink(argv[2]);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(lfd, 64) < 0) {
		perror("listen");
		return 1;
	}
	fprintf(stderr, "spfdrv: ready\n");
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		pthread_t t;

		if (c < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pthread_create(&t, NULL, serve, (void *)(long)c) != 0)
			close(c);
		else
			pthread_detach(t);
	}
	SPF_server_free(asis);
	return 0;
}
