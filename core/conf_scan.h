/* conf_scan.h - pass 1 over policyd.conf: which plugins, and where to find them */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_CONF_SCAN_H
#define PD_CONF_SCAN_H

#include <stddef.h>

#define PD_SCAN_MAX_PLUGINS 64

/* What pass 1 learns. libconfuse cannot skip sections it does not know
 * (the plugin sections), so this small scanner reads just enough of the
 * file; pass 2 then parses everything strictly with libconfuse. */
typedef struct pd_scan {
	char *plugin_dir;                      /* last plugin_dir value, or NULL */
	size_t n;                              /* plugins named anywhere, first-use order */
	char *names[PD_SCAN_MAX_PLUGINS];
	int lines[PD_SCAN_MAX_PLUGINS];        /* line where each was first named */
} pd_scan;

/* Scan FILE. 0, or -1 after logging why (unreadable, too many plugins).
 * Syntax errors are left for pass 2 to report. */
int pd_conf_scan(const char *file, pd_scan *out);
void pd_conf_scan_free(pd_scan *s);

#endif
