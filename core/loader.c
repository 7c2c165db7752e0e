/* loader.c - load plugin modules with libltdl and check their ABI */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "loader.h"
#include "log.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libltdl is not thread-safe: every call goes through this lock. */
static pthread_mutex_t ltdl_lock = PTHREAD_MUTEX_INITIALIZER;

/* pd_loader_init - start libltdl */
int pd_loader_init(void)
{
	int rc;

	pthread_mutex_lock(&ltdl_lock);
	rc = lt_dlinit();
	pthread_mutex_unlock(&ltdl_lock);
	if (rc != 0) {
		pd_log(PD_LOG_ERR, "cannot initialise libltdl");
		return -1;
	}
	return 0;
}

/* valid_module_name - plugin names are plain words, never paths */
static int valid_module_name(const char *name)
{
	if (!*name || strlen(name) > 64)
		return 0;
	for (const char *p = name; *p; p++)
		if (!(*p == '_' || *p == '-' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9')))
			return 0;
	return 1;
}

/* open_in_path - try each directory of the search path (lock held) */
static lt_dlhandle open_in_path(const char *search_path, const char *name, char *err, size_t errlen)
{
	char *path = pd_xstrdup(search_path);
	char *save = NULL;
	lt_dlhandle h = NULL;

	snprintf(err, errlen, "no %s.la or %s.so in plugin_dir %s", name, name, search_path);
	for (char *dir = strtok_r(path, ":", &save); dir && !h; dir = strtok_r(NULL, ":", &save)) {
		char *file = pd_path_resolve(dir, name);
		const char *why;

		/* code any local user could replace is never loaded */
		if (pd_path_private(dir, &why) == -2) {
			snprintf(err, errlen, "plugin_dir %s: %s", dir, why);
			free(file);
			break;
		}
		h = lt_dlopenext(file);
		if (h) {
			const lt_dlinfo *li = lt_dlgetinfo(h);

			if (li && li->filename && pd_path_private(li->filename, &why) < 0) {
				snprintf(err, errlen, "%s: %s", li->filename, why);
				lt_dlclose(h);
				h = NULL;
				free(file);
				break;
			}
		}
		if (!h) {
			const char *e = lt_dlerror();

			/* "file not found" just means: try the next directory */
			if (e && !strstr(e, "not found"))
				snprintf(err, errlen, "%s: %s", file, e);
		}
		free(file);
	}
	free(path);
	return h;
}

/* pd_module_open - load, then check ABI, API and symbols */
pd_module *pd_module_open(const char *search_path, const char *name, char *err, size_t errlen)
{
	pd_module *m;
	const unsigned *abi;
	const lt_dlinfo *info;

	if (!valid_module_name(name)) {
		snprintf(err, errlen, "invalid plugin name");
		return NULL;
	}
	m = pd_xcalloc(1, sizeof(*m));
	pthread_mutex_lock(&ltdl_lock);
	m->handle = open_in_path(search_path, name, err, errlen);
	if (!m->handle)
		goto fail;
	info = lt_dlgetinfo(m->handle);
	m->path = pd_xstrdup(info && info->filename ? info->filename : name);
	m->name = pd_xstrdup(name);
	/* the ABI number is data: read it before any plugin code runs */
	abi = lt_dlsym(m->handle, "pd_plugin_abi");
	if (!abi) {
		snprintf(err, errlen, "%s: missing symbol pd_plugin_abi (not a policyd plugin?)", m->path);
		goto fail;
	}
	if (*abi != PD_PLUGIN_ABI) {
		snprintf(err, errlen, "%s: plugin ABI %u, but this policyd needs ABI %u: rebuild the plugin", m->path,
			 *abi, (unsigned)PD_PLUGIN_ABI);
		goto fail;
	}
	m->info = lt_dlsym(m->handle, "pd_plugin");
	m->init = (pd_plugin_init_fn *)lt_dlsym(m->handle, "pd_plugin_init");
	m->check = (pd_plugin_check_fn *)lt_dlsym(m->handle, "pd_plugin_check");
	m->fini = (pd_plugin_fini_fn *)lt_dlsym(m->handle, "pd_plugin_fini");
	m->validate = (pd_plugin_validate_fn *)lt_dlsym(m->handle, "pd_plugin_validate"); /* optional */
	if (!m->info || !m->init || !m->check || !m->fini) {
		snprintf(err, errlen, "%s: missing symbol %s", m->path,
			 !m->info ? "pd_plugin" : !m->init ? "pd_plugin_init" : !m->check ? "pd_plugin_check" : "pd_plugin_fini");
		goto fail;
	}
	if (m->info->api > PD_PLUGIN_API) {
		snprintf(err, errlen, "%s: plugin needs API level %u, this policyd has API %u: upgrade policyd", m->path,
			 m->info->api, (unsigned)PD_PLUGIN_API);
		goto fail;
	}
	pthread_mutex_unlock(&ltdl_lock);
	return m;
fail:
	if (m->handle)
		lt_dlclose(m->handle);
	pthread_mutex_unlock(&ltdl_lock);
	free(m->path);
	free(m->name);
	free(m);
	return NULL;
}

/* pd_module_close - unload a module */
void pd_module_close(pd_module *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&ltdl_lock);
	lt_dlclose(m->handle);
	pthread_mutex_unlock(&ltdl_lock);
	free(m->path);
	free(m->name);
	free(m);
}
