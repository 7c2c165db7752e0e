/* reload.h - SIGHUP: a new configuration built beside the running one, swapped in only on success */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_RELOAD_H
#define PD_RELOAD_H

/* Reload FILE (main thread of the serving process). Every outcome is logged:
 * "reloaded FILE", or why the old configuration stays in use. */
void pd_reload(const char *file, int verbose);

#endif
