/* conf_scan.h - pass 1 over policyd.conf: which plugins and instances, where to find them, titles filled in */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_CONF_SCAN_H
#define PD_CONF_SCAN_H

#include <stddef.h>

#define PD_SCAN_MAX_PLUGINS 64
#define PD_SCAN_MAX_INSTANCES 256
#define PD_SCAN_TEXT_MAX 16384 /* longest word or string the scanner keeps whole (plugin_dir: a search path) */

/* What pass 1 learns. libconfuse cannot skip sections it does not know
 * (the plugin sections), nor take a section whose title is optional, so
 * this small scanner reads just enough of the file: the plugins lists
 * (instance names), the sections (MODULE "TITLE" { } is instance TITLE of
 * plugin MODULE; MODULE { } is instance MODULE), plugin_dir. It gives pass 2
 * the file's text with the optional titles filled in on the same lines
 * (greylist { -> greylist "greylist" {, store { -> store "default" {), and
 * an empty section for each instance named without one, after the last
 * line: libconfuse then parses everything strictly, with the file's lines. */
typedef struct pd_scan {
	char *plugin_dir;                       /* last plugin_dir value, or NULL */
	size_t n;                               /* instance names in plugins lists, first-use order */
	char *names[PD_SCAN_MAX_INSTANCES];
	int lines[PD_SCAN_MAX_INSTANCES];       /* line where each was first named */
	size_t n_sections;                      /* instance sections */
	char *sec_title[PD_SCAN_MAX_INSTANCES];
	char *sec_module[PD_SCAN_MAX_INSTANCES];
	int sec_line[PD_SCAN_MAX_INSTANCES];
	size_t n_modules;                       /* plugins to load, first-use order */
	char *modules[PD_SCAN_MAX_PLUGINS];
	int module_lines[PD_SCAN_MAX_PLUGINS];
	char *text;                             /* the text for pass 2 (NUL-terminated) */
	size_t len;
} pd_scan;

/* The plugin (module) whose instance NAME is, per the sections: a titled
 * section's plugin, else NAME itself. */
const char *pd_scan_module_of(const pd_scan *s, const char *name);

/* Scan FILE. 0, or -1 after logging why (unreadable, too many plugins).
 * Syntax errors are left for pass 2 to report. */
int pd_conf_scan(const char *file, pd_scan *out);
void pd_conf_scan_free(pd_scan *s);

#endif
