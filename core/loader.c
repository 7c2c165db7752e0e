/* loader.c - load plugin modules with libltdl and check their ABI */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "loader.h"
#include "log.h"
#include "util.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* la_dlname - the shared object a libtool .la file LA names (its dlname, in
 * .libs/ when not installed), or NULL */
static char *la_dlname(const char *la)
{
	FILE *f = fopen(la, "r");
	char line[512], dlname[256] = "", *dir, *slash, *out;
	int installed = 1;

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "dlname='%255[^']'", dlname) == 1)
			continue;
		if (strncmp(line, "installed=no", 12) == 0)
			installed = 0;
	}
	fclose(f);
	if (!dlname[0] || strchr(dlname, '/'))
		return NULL;
	dir = pd_xstrdup(la);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	out = pd_xmalloc(strlen(dir) + strlen(dlname) + 8);
	sprintf(out, "%s/%s%s", slash ? dir : ".", installed ? "" : ".libs/", dlname);
	free(dir);
	return out;
}

/* module_file - the file plugin NAME in DIR would load: DIR/NAME.so, or
 * what DIR/NAME.la names; NULL if neither exists */
static char *module_file(const char *dir, const char *name)
{
	char *base = pd_path_resolve(dir, name), *file = pd_xmalloc(strlen(base) + 4), *so;

	sprintf(file, "%s.so", base);
	if (access(file, F_OK) == 0) {
		free(base);
		return file;
	}
	sprintf(file, "%s.la", base);
	so = access(file, F_OK) == 0 ? la_dlname(file) : NULL;
	free(file);
	free(base);
	return so;
}

/* open_in_path - try each directory of the search path (lock held). A file
 * another local user could change is refused before it is opened, so that
 * none of its code (constructors included) ever runs. */
static lt_dlhandle open_in_path(const char *search_path, const char *name, char *err, size_t errlen)
{
	char *path = pd_xstrdup(search_path);
	char *save = NULL, why[PATH_MAX + 128];
	lt_dlhandle h = NULL;

	snprintf(err, errlen, "no %s.so or %s.la in plugin_dir %s", name, name, search_path);
	for (char *dir = strtok_r(path, ":", &save); dir && !h; dir = strtok_r(NULL, ":", &save)) {
		char *file;

		if (pd_path_safe(dir, why, sizeof(why)) == -2) {
			snprintf(err, errlen, "plugin_dir %s: %s", dir, why);
			break;
		}
		file = module_file(dir, name);
		if (!file)
			continue; /* not here: the next directory */
		if (pd_path_safe(file, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s: %s", file, why);
			free(file);
			break;
		}
		h = lt_dlopen(file);
		if (!h) {
			const char *e = lt_dlerror();

			snprintf(err, errlen, "%s: %s", file, e ? e : "cannot load");
			free(file);
			break;
		}
		free(file);
	}
	free(path);
	return h;
}

/* pd_module_open - load, then check the descriptor: ABI, API, entry points */
pd_module *pd_module_open(const char *search_path, const char *name, char *err, size_t errlen)
{
	pd_module *m;
	const pd_plugin_desc *d;
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
	/* the descriptor is data: its ABI number is read before any plugin code runs */
	d = lt_dlsym(m->handle, "pd_plugin");
	if (!d) {
		snprintf(err, errlen, "%s: no pd_plugin descriptor (not a policyd plugin, or one for ABI 1: rebuild it)",
			 m->path);
		goto fail;
	}
	if (d->abi != PD_PLUGIN_ABI) {
		snprintf(err, errlen, "%s: plugin ABI %u, but this policyd needs ABI %u: rebuild the plugin", m->path,
			 d->abi, (unsigned)PD_PLUGIN_ABI);
		goto fail;
	}
	if (d->api > PD_PLUGIN_API) {
		snprintf(err, errlen, "%s: plugin needs API level %u, this policyd has API %u: upgrade policyd", m->path,
			 d->api, (unsigned)PD_PLUGIN_API);
		goto fail;
	}
	if (!d->init || !d->check || !d->fini) {
		snprintf(err, errlen, "%s: descriptor without %s", m->path,
			 !d->init ? "init" : !d->check ? "check" : "fini");
		goto fail;
	}
	m->desc = d;
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
