/* main.c - policyd: command line, start-up, privileges, signals, reload */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * NAME
 *	policyd - Postfix SMTPD access policy server with plugins
 * SYNOPSIS
 *	policyd [-c FILE] [-f] [-t] [-s] [-v]... [-V]
 * DESCRIPTION
 *	Start-up order: parse the config and load the plugins (-t stops
 *	here), bind the listeners, go to the background (the parent waits
 *	until the child is ready or has failed, and exits accordingly),
 *	write the pidfile, drop privileges, run the plugins' init, serve.
 *	SIGHUP builds a new configuration beside the running one and swaps
 *	it in only on success. SIGTERM/SIGINT finish in-flight requests and
 *	run every plugin's fini. SIGUSR1 logs counters.
 */
#include "config.h"
#include "conf.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "server.h"
#include "util.h"

#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GRACE_MS 10000

static void usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: policyd [-c FILE] [-f] [-t] [-s] [-v]... [-V]\n"
		"  -c FILE  configuration file (default %s/policyd.conf)\n"
		"  -f       stay in the foreground and log to stderr too\n"
		"  -t       check the configuration and load every plugin, then exit\n"
		"  -s       serve one connection on stdin/stdout (master.cf spawn)\n"
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

/* lookup_ids - uid/gid to drop to; -1 when the config names no user */
static int lookup_ids(const pd_conf *c, uid_t *uid, gid_t *gid)
{
	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (*c->user) {
		struct passwd *pw = getpwnam(c->user);

		if (!pw) {
			pd_log(PD_LOG_ERR, "user \"%s\": no such user", c->user);
			return -1;
		}
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	}
	if (*c->group) {
		struct group *gr = getgrnam(c->group);

		if (!gr) {
			pd_log(PD_LOG_ERR, "group \"%s\": no such group", c->group);
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

/* check_conf_readable - warn when the daemon's user could not read FILE
 * again after dropping privileges (SIGHUP would then fail) */
static void check_conf_readable(const pd_conf *c, const char *file, uid_t uid, gid_t gid)
{
	struct stat st;
	gid_t groups[256];
	int ng = 256, ok;

	if (uid == (uid_t)-1 || uid == 0 || stat(file, &st) < 0)
		return;
	ok = (st.st_mode & S_IROTH) || (st.st_uid == uid && (st.st_mode & S_IRUSR));
	if (!ok && (st.st_mode & S_IRGRP)) {
		if (st.st_gid == gid)
			ok = 1;
		else if (*c->user && getgrouplist(c->user, gid, groups, &ng) >= 0)
			for (int i = 0; i < ng && !ok; i++)
				ok = groups[i] == st.st_gid;
	}
	if (!ok)
		pd_log(PD_LOG_WARNING,
		       "%s is not readable by user \"%s\": a reload (SIGHUP) after dropping privileges will fail; "
		       "chgrp %s it (mode 0640)",
		       file, c->user, *c->group ? c->group : c->user);
}

/* drop_privileges - become the configured user for good */
static int drop_privileges(const pd_conf *c, uid_t uid, gid_t gid)
{
	if (uid == 0)
		pd_log(PD_LOG_WARNING, "running as root, as user = \"root\" in %s asks", c->file);
	if (uid == (uid_t)-1 && gid == (gid_t)-1)
		return 0;
	if (geteuid() != 0) {
		if ((uid == (uid_t)-1 || uid == geteuid()) && (gid == (gid_t)-1 || gid == getegid()))
			return 0;
		pd_log(PD_LOG_ERR, "cannot switch to user \"%s\": policyd is not running as root", c->user);
		return -1;
	}
	if (gid != (gid_t)-1 &&
	    ((*c->user ? initgroups(c->user, gid) : setgroups(1, &gid)) < 0 || setgid(gid) < 0)) {
		pd_log(PD_LOG_ERR, "cannot switch to group %ld: %s", (long)gid, strerror(errno));
		return -1;
	}
	if (uid != (uid_t)-1 && setuid(uid) < 0) {
		pd_log(PD_LOG_ERR, "cannot switch to user \"%s\": %s", c->user, strerror(errno));
		return -1;
	}
	if (uid != 0 && uid != (uid_t)-1 && setuid(0) == 0) {
		pd_log(PD_LOG_ERR, "privileges could be regained after dropping them; refusing to run");
		return -1;
	}
	pd_log(PD_LOG_INFO, "running as uid %ld gid %ld", (long)getuid(), (long)getgid());
	return 0;
}

/* pidfile_running - 0, or -1 (logged) when the pidfile PATH names a live
 * process: run before any listener is touched, so that a second start
 * leaves the running daemon as it is */
static int pidfile_running(const char *path)
{
	char buf[32];
	int fd;
	ssize_t n;
	long pid;

	if (!*path || (fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	pid = strtol(buf, NULL, 10);
	if (pid > 0 && pid != getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
		pd_log(PD_LOG_ERR, "pidfile %s: policyd already runs as pid %ld", path, pid);
		return -1;
	}
	return 0;
}

/* pidfile_dir - create the pidfile's directory; one we create belongs to
 * UID/GID (unless -1), so that a daemon that dropped privileges can remove
 * its pidfile at exit. 0 or -1 (logged) */
static int pidfile_dir(const char *path, uid_t uid, gid_t gid)
{
	char *dir = pd_xstrdup(path);
	char *slash = strrchr(dir, '/');
	struct stat st;
	int rc = 0;

	if (slash && slash != dir) {
		*slash = 0;
		if (lstat(dir, &st) < 0 && errno == ENOENT) {
			int fd;

			if (pd_mkdir_p(dir, 0755) < 0 ||
			    (fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
				pd_log(PD_LOG_ERR, "pidfile %s: cannot create its directory: %s", path, strerror(errno));
				rc = -1;
			} else {
				if (uid != (uid_t)-1 && fchown(fd, uid, gid) < 0)
					pd_log(PD_LOG_WARNING, "pidfile directory %s: cannot change owner: %s", dir,
					       strerror(errno));
				close(fd);
			}
		}
	}
	free(dir);
	return rc;
}

/* write_pidfile - our pid into PATH, never through a symlink or into a file
 * with other names (the directory may belong to the daemon's user); 0 or -1 */
static int write_pidfile(const char *path, uid_t uid, gid_t gid)
{
	char buf[32];
	struct stat st;
	int fd, n;

	if (!*path)
		return 0;
	if (pidfile_running(path) < 0 || pidfile_dir(path, uid, gid) < 0)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
	if (fd < 0) {
		pd_log(PD_LOG_ERR, "pidfile %s: %s%s", path, strerror(errno),
		       errno == ELOOP ? " (a symbolic link: refusing to follow it)" : "");
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		pd_log(PD_LOG_ERR, "pidfile %s: not a plain file with one name; refusing to write it", path);
		close(fd);
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t)n) != n) {
		pd_log(PD_LOG_ERR, "pidfile %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* pidfile_remove - at exit; a failure is logged, never silent */
static void pidfile_remove(const char *path)
{
	if (*path && unlink(path) < 0 && errno != ENOENT)
		pd_log(PD_LOG_WARNING, "pidfile %s: cannot remove it: %s", path, strerror(errno));
}

/* daemonize - fork; the parent exits with the child's start-up status */
static int daemonize(void)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0 || (pid = fork()) < 0) {
		pd_log(PD_LOG_ERR, "cannot go to the background: %s", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		char st = 1;

		close(p[1]);
		if (read(p[0], &st, 1) != 1)
			st = 1;
		_exit(st);
	}
	close(p[0]);
	setsid();
	if (chdir("/") < 0)
		pd_log(PD_LOG_WARNING, "chdir /: %s", strerror(errno));
	{
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, STDIN_FILENO);
			dup2(fd, STDOUT_FILENO);
			if (fd > 2)
				close(fd);
		}
	}
	return p[1];
}

/* tell_parent - report start-up status and detach stderr */
static void tell_parent(int fd, char status, int foreground)
{
	if (fd < 0)
		return;
	(void)!write(fd, &status, 1);
	close(fd);
	if (!foreground) {
		int nul = open("/dev/null", O_WRONLY);

		pd_log_set_stderr(0);
		if (nul >= 0) {
			dup2(nul, STDERR_FILENO);
			close(nul);
		}
	}
}

/* raise_nofile - many smtpd processes keep connections open */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* same_listeners - reload cannot rebind after privileges are gone */
static int same_listeners(const pd_conf *a, const pd_conf *b)
{
	if (a->n_listen != b->n_listen)
		return 0;
	for (size_t i = 0; i < a->n_listen; i++)
		if (strcmp(a->listen[i].text, b->listen[i].text) || strcmp(a->listen[i].chain, b->listen[i].chain))
			return 0;
	return 1;
}

/* reload - SIGHUP: new generation beside the old, swapped only on success */
static void reload(const char *file, int verbose)
{
	pd_conf *n;
	const pd_conf *old = pd_server_conf();

	size_t held = pd_server_retired_full();

	if (held) {
		pd_log(PD_LOG_ERR,
		       "SIGHUP: reload refused: %zu earlier configurations are still held by requests that have "
		       "not finished (a plugin that hangs? see \"no answer within its time budget\" above); "
		       "the current configuration stays in use; reload again later, or restart",
		       held);
		return;
	}
	pd_log(PD_LOG_INFO, "SIGHUP: reloading %s", file);
	n = pd_conf_load(file, verbose);
	if (!n) {
		pd_log(PD_LOG_ERR, "reload failed; the previous configuration stays in use");
		return;
	}
	if (!same_listeners(old, n))
		pd_log(PD_LOG_WARNING, "listen addresses changed: that takes a restart; keeping the current ones");
	if (n->threads != old->threads || n->io_threads != old->io_threads)
		pd_log(PD_LOG_WARNING, "threads/io_threads changed: that takes a restart");
	if (pd_conf_start(n) < 0) {
		pd_log(PD_LOG_ERR, "reload failed; the previous configuration stays in use");
		pd_conf_free(n);
		return;
	}
	pd_log_set_facility(n->facility);
	pd_log_set_socket(n->syslog_socket);
	pd_server_swap(n);
	pd_log(PD_LOG_INFO, "reloaded %s", file);
}

/* run_spawn - -s: one connection on stdin/stdout */
static int run_spawn(pd_conf *c)
{
	int rc;

	if (pd_conf_start(c) < 0) {
		pd_conf_free(c);
		return 1;
	}
	rc = pd_spawn_serve(c, STDIN_FILENO, STDOUT_FILENO);
	pd_conf_free(c);
	return rc < 0 ? 1 : 0;
}

#define WORKER_EXIT 2 /* a worker process returning to main */

typedef struct run_args {
	const char *conf_file;
	int verbose, foreground;
	pid_t master; /* the supervising process, or 0 */
	uid_t uid;
	gid_t gid;
	const sigset_t *sigs;
} run_args;

/* serve - the signal loop of a serving process; returns 0, or 1 when a
 * plugin was still busy at the end */
static int serve(const run_args *a)
{
	for (;;) {
		struct timespec tick = {0, 200 * 1000 * 1000};
		int sig = sigtimedwait(a->sigs, NULL, &tick);

		if (a->master && getppid() != a->master) {
			pd_log(PD_LOG_ERR, "the master process is gone; stopping");
			break;
		}
		if (sig == SIGHUP) {
			reload(a->conf_file, a->verbose);
		} else if (sig == SIGUSR1) {
			pd_server_stats();
		} else if (sig == SIGTERM || sig == SIGINT) {
			pd_log(PD_LOG_INFO, "%s: finishing in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
		pd_server_reap();
	}
	if (pd_server_stop(GRACE_MS) < 0) {
		pd_log(PD_LOG_ERR, "stopped with a plugin still busy");
		return 1;
	}
	return 0;
}

/* run_worker - drop privileges, init the plugins, serve; READY_FD gets
 * '0' once serving or '1' on failure (-1: nobody to tell) */
static int run_worker(pd_conf *c, const run_args *a, int ready_fd)
{
	if (drop_privileges(c, a->uid, a->gid) < 0) {
		tell_parent(ready_fd, 1, 1);
		return 1;
	}
	/* changing credentials cleared the parent-death signal: arm it again */
	if (a->master && (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != a->master)) {
		tell_parent(ready_fd, 1, 1);
		return 1;
	}
	if (pd_conf_start(c) < 0 || pd_server_start(c) < 0) {
		tell_parent(ready_fd, 1, 1);
		return 1;
	}
	pd_log(PD_LOG_INFO, "policyd %s ready (%s)", PACKAGE_VERSION, a->conf_file);
	tell_parent(ready_fd, 0, a->foreground);
	if (!c->supervise) /* else the master tells systemd */
		pd_notify("READY=1");
	return serve(a);
}

/* start_worker - fork a worker; returns its pid and whether it got ready */
static pid_t start_worker(pd_conf *c, const run_args *a, int *ready)
{
	int p[2];
	pid_t pid;
	char st = 1;

	*ready = 0;
	if (pipe(p) < 0 || (pid = fork()) < 0) {
		pd_log(PD_LOG_ERR, "cannot start a worker process: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		run_args wa = *a;

		close(p[0]);
		wa.master = getppid(); /* never outlive the master */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		exit(run_worker(c, &wa, p[1]) == 0 ? WORKER_EXIT : 1);
	}
	close(p[1]);
	if (read(p[0], &st, 1) == 1 && st == 0)
		*ready = 1;
	close(p[0]);
	return pid;
}

/* describe_exit - "exit status N" or "signal N" for a log line */
static void describe_exit(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
			 WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
}

/* crashed_plugins - names the worker's threads were inside, comma-separated */
static void crashed_plugins(pd_slot *slots, size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n && used + 2 < len; i++) {
		if (!slots[i].name[0])
			continue;
		slots[i].name[PD_SLOT_NAME - 1] = 0;
		if (!strstr(buf, slots[i].name))
			used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", slots[i].name);
		slots[i].name[0] = 0;
	}
}

/* run_master - keep the sockets, run a worker, restart it if it dies */
static int run_master(pd_conf *c, const run_args *a, int notify)
{
	/* shared with the workers: restart count, then the crash slots */
	size_t n_slots = 1200, size = sizeof(pd_slot) * (n_slots + 1);
	char *shm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned long *restarts = (unsigned long *)shm;
	pd_slot *slots = (pd_slot *)(shm + sizeof(pd_slot));
	unsigned crashes = 0;
	int first = 1;

	if (shm == MAP_FAILED) {
		pd_log(PD_LOG_ERR, "mmap: %s", strerror(errno));
		tell_parent(notify, 1, a->foreground);
		return 1;
	}
	pd_chain_set_slots(slots, n_slots);
	pd_metrics_set_restarts(restarts);
	for (;;) {
		int ready, status = 0;
		pid_t pid;
		uint64_t started = pd_now_us();

		memset(slots, 0, n_slots * sizeof(pd_slot));
		if (!first) {
			/* a restarted worker gets the file as it is now, if it loads */
			pd_conf *n = pd_conf_load(a->conf_file, a->verbose);

			if (n) {
				pd_conf_free(c);
				c = n;
			} else {
				pd_log(PD_LOG_WARNING, "restarting the worker with the configuration loaded before");
			}
		}
		pid = start_worker(c, a, &ready);
		if (pid > 0 && ready) {
			pd_log(PD_LOG_INFO, "worker %ld serving", (long)pid);
			if (first) {
				tell_parent(notify, 0, a->foreground);
				pd_notify("READY=1");
			}
			first = 0;
		} else {
			if (pid > 0)
				waitpid(pid, &status, 0);
			if (first) {
				tell_parent(notify, 1, a->foreground);
				return 1;
			}
			pid = -1;
		}
		/* supervise until the worker dies or we are told to stop */
		while (pid > 0) {
			struct timespec tick = {1, 0};
			int sig = sigtimedwait(a->sigs, NULL, &tick);

			if (sig == SIGHUP) {
				kill(pid, SIGHUP); /* the worker reloads beside its running config */
			} else if (sig == SIGUSR1) {
				kill(pid, SIGUSR1);
			} else if (sig == SIGTERM || sig == SIGINT) {
				pd_notify("STOPPING=1");
				kill(pid, sig);
				waitpid(pid, &status, 0);
				pd_conf_free(c);
				munmap(shm, size);
				return WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT ? 0 : 1;
			}
			if (waitpid(pid, &status, WNOHANG) == pid) {
				char how[96], who[512];

				describe_exit(status, how, sizeof(how));
				crashed_plugins(slots, n_slots, who, sizeof(who));
				pd_log(PD_LOG_ERR, "worker %ld died (%s)%s%s; restarting it", (long)pid, how,
				       *who ? " while inside plugin " : "", who);
				__atomic_add_fetch(restarts, 1, __ATOMIC_RELAXED);
				pid = -1;
			}
		}
		/* back off when it keeps dying young: 0, 0.1, 0.2 ... 10 s */
		crashes = pd_now_us() - started < 10000000u ? crashes + 1 : 0;
		if (crashes > 1) {
			unsigned ms = 100u << (crashes - 2 < 7 ? crashes - 2 : 7);
			struct timespec wait = {(ms > 10000 ? 10000 : ms) / 1000, (long)((ms > 10000 ? 10000 : ms) % 1000) * 1000000};

			pd_log(PD_LOG_WARNING, "worker keeps dying; waiting %u ms before the next start", ms > 10000 ? 10000 : ms);
			if (sigtimedwait(a->sigs, NULL, &wait) == SIGTERM) {
				pd_conf_free(c);
				return 0;
			}
		}
	}
}

int main(int argc, char **argv)
{
	const char *file = PD_SYSCONFDIR "/policyd.conf";
	int foreground = 0, check = 0, spawn = 0, verbose = 0, opt, notify = -1;
	char *conf_file;
	pd_conf *c;
	uid_t uid;
	gid_t gid;
	sigset_t sigs;

	while ((opt = getopt(argc, argv, "c:ftsvVh")) != -1) {
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
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("policyd %s (plugin ABI %d, API %d)\n", PACKAGE_VERSION, PD_PLUGIN_ABI, PD_PLUGIN_API);
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
	pd_log_set_socket(c->syslog_socket);
	if (check) {
		printf("%s: configuration OK, %zu plugin(s), %zu chain(s)\n", conf_file, c->n_mods, c->n_chains);
		for (size_t i = 0; i < c->n_mods; i++)
			printf("  plugin %s %s (%s)%s%s\n", c->mods[i]->name,
			       c->mods[i]->info->version ? c->mods[i]->info->version : "", c->mods[i]->path,
			       verbose && c->mods[i]->info->description ? ": " : "",
			       verbose && c->mods[i]->info->description ? c->mods[i]->info->description : "");
		pd_conf_free(c);
		free(conf_file);
		return 0;
	}
	if (spawn) {
		free(conf_file);
		return run_spawn(c);
	}

	raise_nofile();
	if (geteuid() == 0 && !*c->user) {
		pd_log(PD_LOG_ERR,
		       "%s: refusing to run as root: set user = \"policyd\" (an unprivileged account; policyd "
		       "binds first, then drops to it), or user = \"root\" to run as root anyway",
		       c->file);
		return 1;
	}
	if (lookup_ids(c, &uid, &gid) < 0 || pidfile_running(c->pidfile) < 0 || pd_server_bind(c) < 0)
		return 1;
	check_conf_readable(c, conf_file, uid, gid);
	if (!foreground)
		notify = daemonize();
	if (write_pidfile(c->pidfile, uid, gid) < 0 || pd_conf_state_dir(c, uid, gid) < 0) {
		tell_parent(notify, 1, foreground);
		return 1;
	}
	{
		run_args a = {.conf_file = conf_file, .verbose = verbose, .foreground = foreground, .uid = uid,
			      .gid = gid, .sigs = &sigs};
		char *pidfile = pd_xstrdup(c->pidfile);
		int rc = c->supervise ? run_master(c, &a, notify) : run_worker(c, &a, notify);

		if (rc != WORKER_EXIT)
			pidfile_remove(pidfile);
		free(pidfile);
		free(conf_file);
		if (rc == WORKER_EXIT || rc == 1)
			_exit(1); /* a worker's end, or a plugin still busy: no atexit work */
		pd_log(PD_LOG_INFO, "stopped");
		return rc;
	}
}
