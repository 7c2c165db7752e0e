/* supervise.c - the master process: it keeps the sockets, runs the serving process and restarts it when it dies */
/* SPDX-License-Identifier: BSD-2-Clause */

/*
 * With supervise = true (the default) the process that bound the sockets
 * stays as a small master: it forks the serving process (serve.c), forwards
 * SIGHUP, SIGUSR1 and SIGTERM to it, and when it dies names the plugin its
 * threads were in (from slots in shared memory that chain.c writes) and
 * starts a new one, backing off when it keeps dying young.
 */
#include "config.h"
#include "supervise.h"
#include "conf.h"
#include "daemonize.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* start_worker - fork a worker; returns its pid and whether it got ready */
static pid_t start_worker(pd_conf *c, const pd_run_args *a, int *ready)
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
		pd_run_args wa = *a;

		close(p[0]);
		wa.master = getppid(); /* never outlive the master */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		exit(pd_serve(c, &wa, p[1]) == 0 ? PD_WORKER_EXIT : 1);
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

/* pd_supervise - keep the sockets, run a worker, restart it if it dies */
int pd_supervise(pd_conf *c, const pd_run_args *a, int notify)
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
		pd_tell_parent(notify, 1, a->foreground);
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
				pd_tell_parent(notify, 0, a->foreground);
				pd_notify("READY=1");
			}
			first = 0;
		} else {
			if (pid > 0)
				waitpid(pid, &status, 0);
			if (first) {
				pd_tell_parent(notify, 1, a->foreground);
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
				return WIFEXITED(status) && WEXITSTATUS(status) == PD_WORKER_EXIT ? 0 : 1;
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
