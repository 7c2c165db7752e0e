/* gl_olddb.c - test helper: write a greylist.db as the plugin wrote it before the state service */
/* SPDX-License-Identifier: BSD-2-Clause */
/* usage: gl_olddb PATH RECORD...   RECORD: T|NET|SENDER|RECIPIENT|TYPE|FIRST|LAST (a triplet,
 * TYPE T or P) or C|NET|COUNT|FIRST|LAST (a client network). The format is the old
 * store_gdbm.c's (see plugins/greylist/legacy.c): key 'T' NET \0 SENDER \0 RECIPIENT or
 * 'C' NET, value gl_rec_encode's 32 bytes. */
#include "gl.h"

#include <gdbm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	GDBM_FILE db;

	if (argc < 2) {
		fputs("usage: gl_olddb PATH RECORD...\n", stderr);
		return 2;
	}
	db = gdbm_open(argv[1], 0, GDBM_NEWDB | GDBM_NOLOCK, 0600, NULL);
	if (!db) {
		fprintf(stderr, "gl_olddb: %s: %s\n", argv[1], gdbm_strerror(gdbm_errno));
		return 1;
	}
	for (int i = 2; i < argc; i++) {
		char *f[7] = {0}, *p = argv[i], key[GL_KEY_MAX];
		unsigned char val[GL_REC_SIZE];
		int n = 0;
		size_t kl;
		gl_rec r = {0};
		datum k, v;

		while (n < 7 && (f[n++] = strsep(&p, "|")))
			;
		if (f[0] && !strcmp(f[0], "T") && f[6]) {
			kl = (size_t)snprintf(key, sizeof(key), "T%s%c%s%c%s", f[1], 0, f[2], 0, f[3]);
			r.type = f[4][0];
			r.first_seen = strtoll(f[5], NULL, 10);
			r.last_seen = strtoll(f[6], NULL, 10);
			r.count = 1;
		} else if (f[0] && !strcmp(f[0], "C") && f[4]) {
			kl = (size_t)snprintf(key, sizeof(key), "C%s", f[1]);
			r.type = GL_T_CLIENT;
			r.count = (uint32_t)strtoul(f[2], NULL, 10);
			r.first_seen = strtoll(f[3], NULL, 10);
			r.last_seen = strtoll(f[4], NULL, 10);
		} else {
			fprintf(stderr, "gl_olddb: bad record %s\n", argv[i]);
			return 2;
		}
		gl_rec_encode(&r, val);
		k.dptr = key;
		k.dsize = (int)kl;
		v.dptr = (char *)val;
		v.dsize = GL_REC_SIZE;
		if (gdbm_store(db, k, v, GDBM_REPLACE) != 0) {
			fprintf(stderr, "gl_olddb: store: %s\n", gdbm_strerror(gdbm_errno));
			return 1;
		}
	}
	gdbm_close(db);
	return 0;
}
