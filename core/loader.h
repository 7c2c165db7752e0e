/* loader.h - load plugin modules with libltdl and check their ABI */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_LOADER_H
#define PD_LOADER_H

#include <ltdl.h>
#include <stddef.h>

#include <policyd/plugin.h>

/* A loaded module: one per plugin name and configuration generation. */
typedef struct pd_module {
	lt_dlhandle handle;
	char *name; /* as listed in the config */
	char *path; /* file actually loaded */
	const pd_plugin_desc *desc; /* its one export, checked */
} pd_module;

/* Start libltdl; once per process. 0 or -1 (logged). */
int pd_loader_init(void);

/* Find NAME (NAME.so, or what NAME.la names) in the colon-separated
 * SEARCH_PATH, refuse it if another local user could change it (before it is
 * opened), then check its descriptor's ABI number before calling any of its
 * code, then its API level and entry points. On failure returns NULL and writes the reason (naming the file)
 * into ERR. The caller owns the result (pd_module_close). */
pd_module *pd_module_open(const char *search_path, const char *name, char *err, size_t errlen);
void pd_module_close(pd_module *mod);

#endif
