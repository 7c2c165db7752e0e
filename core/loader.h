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
	const pd_plugin_info *info;
	pd_plugin_init_fn *init;
	pd_plugin_check_fn *check;
	pd_plugin_fini_fn *fini;
	pd_plugin_validate_fn *validate; /* optional (API 2) */
} pd_module;

/* Start libltdl; once per process. 0 or -1 (logged). */
int pd_loader_init(void);

/* Find NAME (NAME.la or NAME.so) in the colon-separated SEARCH_PATH, check
 * its ABI number before running any of its code, then its API level and
 * symbols. On failure returns NULL and writes the reason (naming the file)
 * into ERR. The caller owns the result (pd_module_close). */
pd_module *pd_module_open(const char *search_path, const char *name, char *err, size_t errlen);
void pd_module_close(pd_module *mod);

#endif
