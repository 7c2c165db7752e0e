/* tap.h - a minimal test harness: CHECK() counts, done() prints the tally */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_TAP_H
#define PD_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tap_pass, tap_fail;

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (cond) {                                                              \
			tap_pass++;                                                      \
		} else {                                                                 \
			tap_fail++;                                                      \
			fprintf(stdout, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                        \
	} while (0)

#define CHECK_STR(a, b)                                                                                       \
	do {                                                                                                  \
		const char *a_ = (a), *b_ = (b);                                                              \
		if (a_ && b_ && strcmp(a_, b_) == 0) {                                                        \
			tap_pass++;                                                                           \
		} else {                                                                                      \
			tap_fail++;                                                                           \
			fprintf(stdout, "FAIL %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, a_ ? a_ : "(null)", \
				b_ ? b_ : "(null)");                                                          \
		}                                                                                             \
	} while (0)

/* tap_done - print "N passed, N failed" and return the exit status */
static inline int tap_done(void)
{
	printf("%d passed, %d failed\n", tap_pass, tap_fail);
	return tap_fail ? 1 : 0;
}

/* Capture what is written to stderr between begin and end. */
static int tap_saved_fd = -1;
static FILE *tap_tmp;

static inline void stderr_begin(void)
{
	fflush(stderr);
	tap_tmp = tmpfile();
	tap_saved_fd = dup(2);
	dup2(fileno(tap_tmp), 2);
}

/* stderr_end - stop capturing; returns a malloc'd string */
static inline char *stderr_end(void)
{
	long n;
	char *buf;

	fflush(stderr);
	dup2(tap_saved_fd, 2);
	close(tap_saved_fd);
	n = ftell(tap_tmp);
	buf = calloc(1, (size_t)n + 1);
	rewind(tap_tmp);
	if (n > 0 && fread(buf, 1, (size_t)n, tap_tmp) != (size_t)n)
		buf[0] = 0;
	fclose(tap_tmp);
	fputs(buf, stderr);
	return buf;
}

#endif
