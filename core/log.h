/* log.h - the logging ladder: syslog, and stderr in the foreground */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_LOG_H
#define PD_LOG_H

#include <stdarg.h>
#include <syslog.h>

#include <policyd/plugin.h> /* PD_LOG_ERR ... PD_LOG_DEBUG: syslog's values */

#define PD_LOG_CRIT LOG_CRIT

#if defined(__GNUC__)
#define PD_FMT(f, a) __attribute__((format(printf, f, a)))
#else
#define PD_FMT(f, a)
#endif

/* Open the log. TO_STDERR: copy every line to stderr. VERBOSE: -v count
 * (0 drops debug lines, 1+ keeps them). */
void pd_log_open(const char *ident, int facility, int to_stderr, int verbose);
void pd_log_set_stderr(int on);
void pd_log_set_facility(int facility);
/* Send syslog lines to the datagram socket PATH ("" = no syslog). */
void pd_log_set_socket(const char *path);
int pd_log_verbose(void);

/* Batch this thread's syslog lines (ON) until pd_log_flush(), which sends
 * them with one system call; OFF flushes and stops. For network threads. */
void pd_log_batch(int on);
void pd_log_flush(void);

/* Facility by name ("mail", "local0" ...), or -1. */
int pd_log_facility(const char *name);

/* Log one line. Never pass client data as FMT. */
void pd_log(int level, const char *fmt, ...) PD_FMT(2, 3);
void pd_vlog(int level, const char *prefix, const char *fmt, va_list ap) PD_FMT(3, 0);
/* Log a finished line as is (the caller made client data loggable). */
void pd_log_text(int level, const char *line);

/* Log at error level and exit(1): for configuration and startup failures. */
void pd_fatal(const char *fmt, ...) PD_FMT(1, 2) __attribute__((noreturn));

#endif
