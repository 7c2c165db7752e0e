/* gl.h - internal interfaces of the greylist plugin: keys, records, decisions, whitelists */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_GL_H
#define PD_GL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <confuse.h>

#include "siphash.h"

/* Longest address part kept in a key (longer ones are cut). */
#define GL_ADDR_MAX 320
/* Longest key the plugin builds. */
#define GL_KEY_MAX 512 /* PD_STORE_KEY_MAX: the state service's longest key */
/* Size of an encoded record. */
#define GL_REC_SIZE 32
#define GL_REC_VERSION 1

/* Record types (byte 1 of an encoded record). */
#define GL_T_PENDING 'T' /* triplet seen, not yet retried after the delay */
#define GL_T_PASSED 'P'  /* triplet retried after the delay: passes */
#define GL_T_CLIENT 'C'  /* client network: count of successful deliveries */
#define GL_T_META 'M'    /* bookkeeping of the old database (time of the last cleanup) */

/* One stored record (triplet or client), decoded. */
typedef struct gl_rec {
	int type;           /* GL_T_* */
	uint32_t count;     /* triplet: passes seen; client: deliveries */
	int64_t first_seen; /* first request */
	int64_t last_seen;  /* last update */
	int64_t passed_at;  /* triplet: when confirmed; client: when whitelisted */
} gl_rec;

/* Parameters that determine keys: the plugin and the admin command must agree. */
typedef struct gl_keyconf {
	int ipv4_prefix;      /* 0..32 */
	int ipv6_prefix;      /* 0..128 */
	int normalise_sender; /* BATV, SRS, VERP, +ext */
	int privacy;          /* keys are keyed hashes */
	uint8_t hash_key[16]; /* SipHash key when privacy is on */
} gl_keyconf;

/* key.c. Keys are text (the state service's keys): a triplet is
 * "T:NET SENDER RECIPIENT" (SENDER and RECIPIENT folded, bytes <= ' ', DEL and '%' as %HH;
 * too long: "T:NET #" and 32 hex digits of a hash), a client "C:ADDRESS/BITS"; under privacy
 * "T:" 16 hex digits of NET's keyed hash, a space, 32 of the triplet's, and "C:" 16 hex digits. */
int gl_client_net(const gl_keyconf *kc, const char *addr, char *out, size_t outsz);
/* the network of ADDR with BITS4/BITS6 (the auto-whitelist's grouping) */
int gl_addr_net(const char *addr, int bits4, int bits6, char *out, size_t outsz);
void gl_fold_addr(const char *in, char *out, size_t outsz);
void gl_norm_sender(const gl_keyconf *kc, const char *in, char *out, size_t outsz);
size_t gl_triplet_key(const gl_keyconf *kc, const char *net, const char *sender, const char *rcpt,
		      char *out, size_t outsz);
size_t gl_client_key(const gl_keyconf *kc, const char *net, char *out, size_t outsz);
/* the start every triplet key of NET has ("T:NET " or "T:HASH ") */
size_t gl_client_prefix(const gl_keyconf *kc, const char *net, char *out, size_t outsz);
void gl_rec_encode(const gl_rec *r, unsigned char out[GL_REC_SIZE]);
int gl_rec_decode(const void *in, size_t len, gl_rec *r);
int gl_key_from_secret(const char *secret, uint8_t key[16]);
int gl_key_file(const char *path, int create, uint8_t key[16], char *err, size_t errsz);
int gl_rec_expired(const gl_rec *r, int64_t now, long retry_window, long lifetime);

/* Decision of one triplet (triplet.c): the input, the verdict. */
typedef struct gl_tin {
	int64_t now;
	long delay, retry_window, lifetime;
} gl_tin;

#define GL_V_DEFER 0      /* new triplet or early retry: defer, remaining seconds left */
#define GL_V_PASS 1       /* known triplet passes */
#define GL_V_PASSED_NOW 2 /* first retry after the delay: passes, delayed seconds */

typedef struct gl_tout {
	int verdict;
	int fresh; /* DEFER: the triplet was new (or forgotten) */
	long remaining, delayed;
} gl_tout;

/* the record update of a triplet (pd_store_update_fn): ARG is a gl_tdec */
typedef struct gl_tdec {
	gl_tin in;
	gl_tout out;
} gl_tdec;
int gl_triplet_update(void *arg, const void *old, size_t oldlen, void *new, size_t *newlen, unsigned *ttl);

/* the auto-whitelist record of one client address: count a delivery (at most once per
 * interval), or refresh a whitelisted one; ARG is a gl_cdec */
typedef struct gl_cdec {
	int64_t now;
	long interval, lifetime, needed;
	int refresh;        /* 1: only refresh a whitelisted record's last_seen (no count) */
	uint32_t count;     /* out: the count after the update */
	int whitelisted_now; /* out: this update reached NEEDED */
} gl_cdec;
int gl_client_update(void *arg, const void *old, size_t oldlen, void *new, size_t *newlen, unsigned *ttl);
/* is client record R auto-whitelisted at NOW? */
int gl_client_listed(const gl_rec *r, int64_t now, long needed, long lifetime);

/* legacy.c: the database of the plugin before the state service (keys as below, 32-byte
 * records); import its live triplets with IMPORT(ARG, key, record, ttl); -1 when it cannot be
 * read (ERR), else the number of records read, with *TRIPLETS imported and *SKIPPED left out */
typedef int gl_import_fn(void *arg, const char *key, const gl_rec *rec, unsigned ttl);
long gl_legacy_import(const char *path, const gl_keyconf *kc, int64_t now, long retry_window,
		      long lifetime, gl_import_fn *fn, void *arg, long *triplets, long *skipped,
		      char *err, size_t errsz);
/* the text key (under KC) of a legacy binary key (T/t triplets only); 0 if it is not one */
size_t gl_legacy_key(const gl_keyconf *kc, const unsigned char *key, size_t klen, char *out, size_t outsz);

/* whitelist.c */
typedef struct gl_wl gl_wl;
gl_wl *gl_wl_new(void);
void gl_wl_free(gl_wl *wl);
/* load a client (CLIENTS=1) or recipient file; -1 with "file:line: why" in ERR */
int gl_wl_load(gl_wl *wl, const char *path, int clients, char *err, size_t errsz);
/* add one entry (for tests and files); -1 with the reason in ERR */
int gl_wl_add(gl_wl *wl, const char *entry, int clients, char *err, size_t errsz);
/* does the client match? names and regexes: the verified client_name only, never the reverse name */
int gl_wl_client(const gl_wl *wl, const char *addr, const char *name);
int gl_wl_recipient(const gl_wl *wl, const char *rcpt);
size_t gl_wl_count(const gl_wl *wl);

/* options.c */
#include <confuse.h>
#define GL_DEF_TEXT "4.2.0 Greylisted, please retry in %s seconds"
extern cfg_opt_t gl_options[];
/* checks across the section's options (pd_plugin_desc.validate): 0 or -1 after cfg_error */
int gl_validate_section(cfg_t *sec);


#endif
