/* main.c - policyd: the command line and the start-up order */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * NAME
 *	policyd - Postfix SMTPD access policy server with plugins
 * SYNOPSIS
 *	policyd [-c FILE] [-f] [-t] [-s] [-q REQUEST-FILE] [-v]... [-V]
 * DESCRIPTION
 *	Start-up order: parse the config and load the plugins (-t stops
 *	here; -s serves stdin/stdout, spawn.c; -q answers a file's requests,
 *	query.c), check the pidfile, bind the
 *	listeners (listeners.c), go to the background (daemonize.c), write the
 *	pidfile (pidfile.c), then either supervise (supervise.c) or serve
 *	(serve.c: drop privileges, start the plugins, serve until SIGTERM;
 *	SIGHUP reloads, reload.c).
 */
#include "config.h"
#include "conf.h"
#include "daemonize.h"
#include "describe.h"
#include "listeners.h"
#include "loader.h"
#include "log.h"
#include "pidfile.h"
#include "privileges.h"
#include "query.h"
#include "serve.h"
#include "spawn.h"
#include "supervise.h"
#include "util.h"

#include <limits.h>
#include <unbound.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* usage - the command line */
static void usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: policyd [-c FILE] [-f] [-t] [-s] [-q REQUEST-FILE] [-v]... [-V]\n"
		"  -c FILE  configuration file (default %s/policyd.conf)\n"
		"  -f       stay in the foreground and log to stderr too\n"
		"  -t       check the configuration and load every plugin, then exit\n"
		"  -s       serve one connection on stdin/stdout (master.cf spawn)\n"
		"  -q FILE  answer the requests in FILE (name=value lines) and print each plugin's verdict\n"
		"  -v       more logging (repeat for more)\n"
		"  -V       print the version and exit\n",
		PD_SYSCONFDIR);
	exit(rc);
}

/* absolute_path - the config path, made absolute before we chdir("/") */
static char *absolute_path(const char *file)
{
	char buf[PATH_MAX];

	if (realpath(file, buf))
		return pd_xstrdup(buf);
	return pd_xstrdup(file); /* the load will report why it cannot be read */
}

/* run_spawn - -s: one connection on stdin/stdout */
static int run_spawn(pd_conf *c)
{
	int rc;

	if (pd_conf_start(c) < 0) {
		pd_conf_free(c);
		return 1;
	}
	rc = pd_spawn_serve(c, STDIN_FILENO, STDOUT_FILENO); /* frees C */
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *file = PD_SYSCONFDIR "/policyd.conf";
	int foreground = 0, check = 0, spawn = 0, verbose = 0, opt, notify = -1;
	const char *query = NULL;
	char *conf_file;
	pd_conf *c;
	uid_t uid;
	gid_t gid;
	sigset_t sigs;

	while ((opt = getopt(argc, argv, "c:ftsq:vVh")) != -1) {
		switch (opt) {
		case 'c':
			file = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 't':
			check = 1;
			break;
		case 's':
			spawn = 1;
			break;
		case 'q':
			query = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			/* libconfuse's types are part of the plugin ABI: plugins must use the same */
			printf("policyd %s (plugin ABI %d, API %d; libconfuse %s, libunbound %s)\n", PACKAGE_VERSION,
			       PD_PLUGIN_ABI, PD_PLUGIN_API, PD_CONFUSE_VERSION, ub_version());
			return 0;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);

	/* signals are taken synchronously by the main thread; every thread
	 * started later inherits this mask */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* stderr carries errors until start-up is done (or always with -f);
	 * in spawn mode stdout is the protocol, and stderr only with -f */
	/* under systemd (-f, JOURNAL_STREAM set) syslog already reaches the
	 * journal: copying lines to stderr would log each twice */
	pd_log_open("policyd", LOG_MAIL, (!spawn || foreground) && !(foreground && getenv("JOURNAL_STREAM")), verbose);
	if (pd_loader_init() < 0)
		return 1;
	conf_file = absolute_path(file);
	c = pd_conf_load(conf_file, verbose);
	if (!c)
		return 1;
	pd_log_set_facility(c->facility);
	pd_log_set_socket(query ? "" : c->syslog_socket); /* -q: an admin's test, not the mail log */
	if (check) {
		pd_describe(c, conf_file, verbose, stdout);
		pd_conf_free(c);
		free(conf_file);
		return 0;
	}
	if (spawn) {
		free(conf_file);
		return run_spawn(c);
	}
	if (query) {
		free(conf_file);
		return pd_query_run(c, query);
	}

	pd_raise_nofile();
	if (geteuid() == 0 && !*c->user) {
		pd_log(PD_LOG_ERR,
		       "%s: refusing to run as root: set user = \"policyd\" (an unprivileged account; policyd "
		       "binds first, then drops to it), or user = \"root\" to run as root anyway",
		       c->file);
		return 1;
	}
	if (pd_priv_lookup(c, &uid, &gid) < 0 || pd_pidfile_running(c->pidfile) < 0 ||
	    pd_listeners_bind(c) < 0)
		return 1;
	pd_priv_check_readable(c, conf_file, uid, gid);
	if (!foreground)
		notify = pd_daemonize();
	if (pd_pidfile_write(c->pidfile, uid, gid) < 0 || pd_conf_state_dir(c, uid, gid) < 0) {
		pd_tell_parent(notify, 1, foreground);
		return 1;
	}
	{
		pd_run_args a = {.conf_file = conf_file, .verbose = verbose, .foreground = foreground, .uid = uid,
				 .gid = gid, .sigs = &sigs};
		char *pidfile = pd_xstrdup(c->pidfile);
		int rc = c->supervise ? pd_supervise(c, &a, notify) : pd_serve(c, &a, notify);

		pd_pidfile_remove(pidfile);
		free(pidfile);
		free(conf_file);
		if (rc == 1)
			_exit(1); /* a plugin still busy, or start-up failed: no atexit work */
		pd_log(PD_LOG_INFO, "stopped");
		return rc;
	}
}
