/* log.c - the logging ladder: syslog, and stderr in the foreground */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int log_stderr = 1;
static int log_verbose;
static int log_facility = LOG_MAIL;
static int log_syslog;

/* pd_log_open - start logging to syslog (and stderr if asked) */
void pd_log_open(const char *ident, int facility, int to_stderr, int verbose)
{
	log_facility = facility;
	log_stderr = to_stderr;
	log_verbose = verbose;
	openlog(ident, LOG_PID | LOG_NDELAY, facility);
	log_syslog = 1;
}

/* pd_log_set_stderr - turn the stderr copy on or off */
void pd_log_set_stderr(int on)
{
	log_stderr = on;
}

/* pd_log_set_facility - change the syslog facility (config reload) */
void pd_log_set_facility(int facility)
{
	log_facility = facility;
}

/* pd_log_verbose - the -v count */
int pd_log_verbose(void)
{
	return log_verbose;
}

/* pd_log_facility - facility code by name, -1 if unknown */
int pd_log_facility(const char *name)
{
	static const struct {
		const char *name;
		int code;
	} tab[] = {
	    {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},     {"local0", LOG_LOCAL0},
	    {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},
	    {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcasecmp(tab[i].name, name) == 0)
			return tab[i].code;
	return -1;
}

/* level_name - short word for stderr lines */
static const char *level_name(int level)
{
	switch (level) {
	case LOG_CRIT:
		return "fatal: ";
	case LOG_ERR:
		return "error: ";
	case LOG_WARNING:
		return "warning: ";
	case LOG_DEBUG:
		return "debug: ";
	default:
		return "";
	}
}

/* pd_vlog - format once, send to syslog and (maybe) stderr in one write */
void pd_vlog(int level, const char *prefix, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	if (level == LOG_DEBUG && log_verbose < 1)
		return;
	n = snprintf(line, sizeof(line), "%s", prefix ? prefix : "");
	if (n < 0)
		n = 0;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (log_syslog)
		syslog(log_facility | level, "%s", line);
	if (log_stderr) {
		char out[2200];
		int m = snprintf(out, sizeof(out), "policyd[%ld]: %s%s\n", (long)getpid(), level_name(level), line);

		if (m > 0)
			(void)!write(STDERR_FILENO, out, (size_t)m < sizeof(out) ? (size_t)m : sizeof(out) - 1);
	}
}

/* pd_log - log one line */
void pd_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pd_vlog(level, NULL, fmt, ap);
	va_end(ap);
}

/* pd_fatal - log and exit(1) */
void pd_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pd_vlog(LOG_CRIT, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
