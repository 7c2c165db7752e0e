/* legacy.c - read the greylist database of before the state service, to import its triplets */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The plugin kept its own GDBM file (database, "greylist.db" under
 * state_dir) until it moved onto the core's state service. Its format:
 * GDBM_NOLOCK file (the plugin's lock was byte 0 of PATH.lock), values of
 * GL_REC_SIZE bytes (gl_rec_encode), keys
 *   'T' NET '\0' SENDER '\0' RECIPIENT   a triplet (no final NUL)
 *   't' H8 H16                           a triplet under privacy: SipHash of NET (8 bytes),
 *                                        the 128-bit hash of NET\0SENDER\0RECIPIENT
 *   'C' NET, 'c' H8                      a client network's auto-whitelist record
 *   'M' '\0' "cleanup"                   the time of the last expiry pass
 * Only live triplets are imported: the old auto-whitelist counted per
 * network (ipv4_prefix), the new one per address, so its client records do
 * not carry over (the clients earn it again).
 */
#include "gl.h"

#include <errno.h>
#include <gdbm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* hexn - N bytes as hex into OUT */
static void hexn(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

size_t gl_legacy_key(const gl_keyconf *kc, const unsigned char *key, size_t klen, char *out, size_t outsz)
{
	if (klen == 25 && key[0] == 't') { /* the same hashes as gl_triplet_key under privacy */
		if (outsz < 2 + 16 + 1 + 32 + 1)
			return 0;
		memcpy(out, "T:", 2);
		hexn(key + 1, 8, out + 2);
		out[18] = ' ';
		hexn(key + 9, 16, out + 19);
		return 51;
	}
	if (klen >= 3 && key[0] == 'T') {
		char net[80], sender[GL_ADDR_MAX + 1], rcpt[GL_ADDR_MAX + 1];
		const unsigned char *p = key + 1, *end = key + klen;
		const unsigned char *z1 = memchr(p, 0, (size_t)(end - p)), *z2;
		size_t rl;

		if (!z1 || (size_t)(z1 - p) >= sizeof(net))
			return 0;
		z2 = memchr(z1 + 1, 0, (size_t)(end - z1 - 1));
		if (!z2 || (size_t)(z2 - z1 - 1) >= sizeof(sender))
			return 0;
		rl = (size_t)(end - z2 - 1);
		if (rl >= sizeof(rcpt) || memchr(z2 + 1, 0, rl))
			return 0;
		memcpy(net, p, (size_t)(z1 - p));
		net[z1 - p] = 0;
		memcpy(sender, z1 + 1, (size_t)(z2 - z1 - 1));
		sender[z2 - z1 - 1] = 0;
		memcpy(rcpt, z2 + 1, rl);
		rcpt[rl] = 0;
		return gl_triplet_key(kc, net, sender, rcpt, out, outsz);
	}
	return 0;
}

long gl_legacy_import(const char *path, const gl_keyconf *kc, int64_t now, long retry_window,
		      long lifetime, gl_import_fn *fn, void *arg, long *triplets, long *skipped,
		      char *err, size_t errsz)
{
	GDBM_FILE db = gdbm_open(path, 0, GDBM_READER | GDBM_NOLOCK, 0600, NULL);
	datum k, next;
	long n = 0;

	*triplets = *skipped = 0;
	if (!db) {
		snprintf(err, errsz, "%s: %s%s%s", path, gdbm_strerror(gdbm_errno),
			 gdbm_check_syserr(gdbm_errno) ? ": " : "", gdbm_check_syserr(gdbm_errno) ? strerror(errno) : "");
		return -1;
	}
	for (k = gdbm_firstkey(db); k.dptr; k = next) {
		datum v = gdbm_fetch(db, k);
		char key[GL_KEY_MAX + 1];
		gl_rec r;
		int64_t end;

		n++;
		if (v.dptr && gl_rec_decode(v.dptr, (size_t)v.dsize, &r) == 0 &&
		    (r.type == GL_T_PENDING || r.type == GL_T_PASSED) &&
		    gl_legacy_key(kc, (const unsigned char *)k.dptr, (size_t)k.dsize, key, sizeof(key))) {
			end = r.type == GL_T_PENDING ? r.first_seen + retry_window : r.last_seen + lifetime;
			if (end >= now && r.first_seen <= now + 86400 && end - now < 315360000) {
				if (fn(arg, key, &r, (unsigned)(end - now + 1)) != 0) {
					snprintf(err, errsz, "%s: the state service refused a record", path);
					free(v.dptr);
					free(k.dptr);
					gdbm_close(db);
					return -1;
				}
				(*triplets)++;
			} else
				(*skipped)++;
		} else
			(*skipped)++;
		free(v.dptr);
		next = gdbm_nextkey(db, k);
		free(k.dptr);
	}
	if (gdbm_errno != GDBM_NO_ERROR && gdbm_errno != GDBM_ITEM_NOT_FOUND) {
		snprintf(err, errsz, "%s: reading: %s", path, gdbm_strerror(gdbm_errno));
		gdbm_close(db);
		return -1;
	}
	gdbm_close(db);
	return n;
}
