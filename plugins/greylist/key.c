/* key.c - greylist triplet keys: client networks, sender normalisation, keyed hashes (lib/siphash), records */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "gl.h"
#include "le64.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* gl_addr_net - "192.0.2.0/24" for ADDR with BITS4 (IPv4) or BITS6 (IPv6) bits; 0, or -1 if not an IP */
int gl_addr_net(const char *addr, int bits4, int bits6, char *out, size_t outsz)
{
	unsigned char a[16];
	char buf[INET6_ADDRSTRLEN];
	int bits;

	if (inet_pton(AF_INET, addr, a) == 1) {
		bits = bits4;
		uint32_t v = ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | a[3];
		uint32_t mask = bits <= 0 ? 0 : bits >= 32 ? 0xffffffffu : ~((1u << (32 - bits)) - 1);
		v &= mask;
		a[0] = (unsigned char)(v >> 24);
		a[1] = (unsigned char)(v >> 16);
		a[2] = (unsigned char)(v >> 8);
		a[3] = (unsigned char)v;
		inet_ntop(AF_INET, a, buf, sizeof(buf));
	} else if (inet_pton(AF_INET6, addr, a) == 1) {
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

		if (memcmp(a, mapped, 12) == 0) { /* IPv4-mapped: group as IPv4 */
			inet_ntop(AF_INET, a + 12, buf, sizeof(buf));
			return gl_addr_net(buf, bits4, bits6, out, outsz);
		}
		bits = bits6;
		for (int i = 0; i < 16; i++) {
			int keep = bits - 8 * i;

			if (keep <= 0)
				a[i] = 0;
			else if (keep < 8)
				a[i] &= (unsigned char)(0xff << (8 - keep));
		}
		inet_ntop(AF_INET6, a, buf, sizeof(buf));
	} else {
		return -1;
	}
	if ((size_t)snprintf(out, outsz, "%s/%d", buf, bits) >= outsz)
		return -1;
	return 0;
}

/* gl_client_net - the triplet's client network of ADDR under the configured prefixes */
int gl_client_net(const gl_keyconf *kc, const char *addr, char *out, size_t outsz)
{
	return gl_addr_net(addr, kc->ipv4_prefix, kc->ipv6_prefix, out, outsz);
}

/* gl_fold_addr - lower-case copy of an address, cut at GL_ADDR_MAX; "" stays "" */
void gl_fold_addr(const char *in, char *out, size_t outsz)
{
	size_t n = 0, max = outsz - 1 < GL_ADDR_MAX ? outsz - 1 : GL_ADDR_MAX;

	for (; in && in[n] && n < max; n++)
		out[n] = (char)tolower((unsigned char)in[n]);
	out[n] = 0;
}

/* strip_batv - "prvs=TAG=user@dom" (and msprvs1=, btv1=) to "user@dom", in place */
static void strip_batv(char *a)
{
	static const char *const tags[] = {"prvs=", "msprvs1=", "btv1="};

	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		size_t tl = strlen(tags[i]);
		char *eq;

		if (strncmp(a, tags[i], tl) != 0)
			continue;
		if (a[tl] == '=') { /* btv1==TAG==user@dom */
			eq = strstr(a + tl + 1, "==");
			if (eq)
				eq++;
		} else {
			eq = strchr(a + tl, '=');
		}
		if (eq && strchr(eq + 1, '@'))
			memmove(a, eq + 1, strlen(eq + 1) + 1);
		return;
	}
}

/* strip_srs - "srs0=HASH=TT=origdom=origuser@fwd" (and srs1) to "origuser@origdom", in place */
static void strip_srs(char *a)
{
	char *p, *at, *f[4];
	char tmp[GL_ADDR_MAX + 1];

	if (strncmp(a, "srs0=", 5) != 0 && strncmp(a, "srs1=", 5) != 0)
		return;
	p = a + 5;
	if (a[3] == '1') { /* SRS1=HHH=fwd==HHH=TT=dom=user@fwd2: the SRS0 part after "==" */
		char *dd = strstr(p, "==");

		if (!dd)
			return;
		p = dd + 2;
	}
	at = strrchr(p, '@');
	if (!at)
		return;
	for (int i = 0; i < 3; i++) { /* HASH, TT, origdom */
		f[i] = p;
		p = memchr(p, '=', (size_t)(at - p));
		if (!p)
			return;
		p++;
	}
	f[3] = p; /* origuser, up to '@' */
	{
		int n = snprintf(tmp, sizeof(tmp), "%.*s@%.*s", (int)(at - f[3]), f[3],
				 (int)(f[3] - 1 - f[2]), f[2]);
		if (n < 0 || (size_t)n >= sizeof(tmp))
			return;
	}
	strcpy(a, tmp);
}

/* isword - a character that joins a "word" for VERP digit replacement */
static int isword(int c)
{
	return isalnum(c);
}

/* strip_verp - drop +extension; numeric words and long hex words of the local part to '#' */
static void strip_verp(char *a)
{
	char *at = strrchr(a, '@');
	char local[GL_ADDR_MAX + 1];
	size_t n = 0, len;
	char *plus;

	if (!at)
		at = a + strlen(a);
	plus = memchr(a, '+', (size_t)(at - a));
	if (plus && plus > a) {
		memmove(plus, at, strlen(at) + 1);
		at = plus;
	}
	len = (size_t)(at - a);
	for (size_t i = 0; i < len;) {
		if (isword((unsigned char)a[i])) {
			size_t j = i, digits = 0, hex = 1;

			while (j < len && isword((unsigned char)a[j])) {
				if (isdigit((unsigned char)a[j]))
					digits++;
				if (!isxdigit((unsigned char)a[j]))
					hex = 0;
				j++;
			}
			if (digits == j - i || (hex && digits && j - i >= 8)) {
				local[n++] = '#';
			} else {
				memcpy(local + n, a + i, j - i);
				n += j - i;
			}
			i = j;
		} else {
			local[n++] = a[i++];
		}
	}
	local[n] = 0;
	if (n + strlen(at) <= GL_ADDR_MAX) {
		memmove(a + n, at, strlen(at) + 1);
		memcpy(a, local, n);
	}
}

/* gl_norm_sender - fold the sender; "<>" for the null sender; optional BATV/SRS/VERP folding */
void gl_norm_sender(const gl_keyconf *kc, const char *in, char *out, size_t outsz)
{
	char a[GL_ADDR_MAX + 1];

	gl_fold_addr(in ? in : "", a, sizeof(a));
	if (!a[0]) {
		snprintf(out, outsz, "<>");
		return;
	}
	if (kc->normalise_sender) {
		strip_batv(a);
		strip_srs(a);
		strip_verp(a);
	}
	snprintf(out, outsz, "%s", a);
}

/* hash16 - 128 bits of keyed hash: SipHash under the key and under the key with a flipped byte */
static void hash16(const gl_keyconf *kc, const void *data, size_t len, unsigned char out[16])
{
	uint8_t k2[16];

	pd_siphash(kc->hash_key, data, len, out);
	memcpy(k2, kc->hash_key, 16);
	k2[0] ^= 0x5a;
	pd_siphash(k2, data, len, out + 8);
}

/* hex - N bytes of IN as 2N lower-case hex digits into OUT (room for 2N + 1) */
static void hex(const unsigned char *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = 0;
}

/* put_token - append S to OUT at *N with bytes <= ' ', DEL and '%' as %HH; 0, or -1 if it does
 * not fit in OUTSZ - 1 */
static int put_token(const char *s, char *out, size_t outsz, size_t *n)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= ' ' || *p == 127 || *p == '%') {
			if (*n + 3 >= outsz)
				return -1;
			snprintf(out + *n, 4, "%%%02X", *p);
			*n += 3;
		} else {
			if (*n + 1 >= outsz)
				return -1;
			out[(*n)++] = (char)*p;
		}
	}
	out[*n] = 0;
	return 0;
}

/* net_key - "TAG:NET" then SEP (privacy: "TAG:" + a 64-bit hash of NET); its length, 0 if it does not fit */
static size_t net_key(const gl_keyconf *kc, char tag, const char *net, const char *sep, char *out, size_t outsz)
{
	char x[17];
	int n;

	if (kc->privacy) {
		unsigned char h[8];

		pd_siphash(kc->hash_key, net, strlen(net), h);
		hex(h, 8, x);
		net = x;
	}
	n = snprintf(out, outsz, "%c:%s%s", tag, net, sep);
	return n < 0 || (size_t)n >= outsz ? 0 : (size_t)n;
}

/* gl_client_prefix - what every triplet key of NET starts with: "T:NET " (privacy: "T:" + hash) */
size_t gl_client_prefix(const gl_keyconf *kc, const char *net, char *out, size_t outsz)
{
	return net_key(kc, 'T', net, " ", out, outsz);
}

/* gl_triplet_key - key of (net, sender, rcpt): readable, or prefix + 128-bit hash */
size_t gl_triplet_key(const gl_keyconf *kc, const char *net, const char *sender, const char *rcpt,
		      char *out, size_t outsz)
{
	size_t pl = gl_client_prefix(kc, net, out, outsz), n = pl;
	unsigned char buf[GL_KEY_MAX * 2], h[16];
	size_t nl = strlen(net), sl = strlen(sender), rl = strlen(rcpt);
	char x[33];

	if (!pl)
		return 0;
	if (!kc->privacy && put_token(sender, out, outsz, &n) == 0 && n + 1 < outsz) {
		out[n++] = ' ';
		if (put_token(rcpt, out, outsz, &n) == 0)
			return n;
	}
	/* privacy, or too long for a key: a hash of the three (NUL-separated) */
	if (nl + sl + rl + 2 > sizeof(buf) || pl + (kc->privacy ? 32 : 33) >= outsz)
		return 0;
	memcpy(buf, net, nl + 1);
	memcpy(buf + nl + 1, sender, sl + 1);
	memcpy(buf + nl + sl + 2, rcpt, rl);
	hash16(kc, buf, nl + sl + rl + 2, h);
	hex(h, 16, x);
	snprintf(out + pl, outsz - pl, "%s%s", kc->privacy ? "" : "#", x);
	return pl + strlen(out + pl);
}

/* gl_client_key - key of the auto-whitelist record of NET ("C:192.0.2.7/32") */
size_t gl_client_key(const gl_keyconf *kc, const char *net, char *out, size_t outsz)
{
	return net_key(kc, 'C', net, "", out, outsz);
}

/* gl_rec_encode - fixed little-endian layout, GL_REC_SIZE bytes */
void gl_rec_encode(const gl_rec *r, unsigned char out[GL_REC_SIZE])
{
	memset(out, 0, GL_REC_SIZE);
	out[0] = GL_REC_VERSION;
	out[1] = (unsigned char)r->type;
	for (int i = 0; i < 4; i++)
		out[4 + i] = (unsigned char)(r->count >> (8 * i));
	pd_wr64le(out + 8, (uint64_t)r->first_seen);
	pd_wr64le(out + 16, (uint64_t)r->last_seen);
	pd_wr64le(out + 24, (uint64_t)r->passed_at);
}

/* gl_rec_decode - 0, or -1 for a record of the wrong size, version or type */
int gl_rec_decode(const void *in, size_t len, gl_rec *r)
{
	const unsigned char *p = in;

	if (len != GL_REC_SIZE || p[0] != GL_REC_VERSION)
		return -1;
	if (p[1] != GL_T_PENDING && p[1] != GL_T_PASSED && p[1] != GL_T_CLIENT && p[1] != GL_T_META)
		return -1;
	r->type = p[1];
	r->count = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
	r->first_seen = (int64_t)pd_rd64le(p + 8);
	r->last_seen = (int64_t)pd_rd64le(p + 16);
	r->passed_at = (int64_t)pd_rd64le(p + 24);
	return 0;
}

/* gl_key_from_secret - derive the 16-byte hash key from an admin secret string */
int gl_key_from_secret(const char *secret, uint8_t key[16])
{
	static const uint8_t k1[16] = "policyd-greylist";
	static const uint8_t k2[16] = "greylist-keyderv";

	if (!secret || strlen(secret) < 8)
		return -1;
	pd_siphash(k1, secret, strlen(secret), key);
	pd_siphash(k2, secret, strlen(secret), key + 8);
	return 0;
}

/* gl_key_file - read 32 hex digits from PATH; with CREATE make a random one (mode 0600) */
int gl_key_file(const char *path, int create, uint8_t key[16], char *err, size_t errsz)
{
	char buf[64];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && create) {
		uint8_t r[16];

		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
			snprintf(err, errsz, "getrandom: %s", strerror(errno));
			return -1;
		}
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			for (int i = 0; i < 16; i++)
				snprintf(buf + 2 * i, 3, "%02x", r[i]);
			buf[32] = '\n';
			if (write(fd, buf, 33) != 33 || fsync(fd) != 0) {
				snprintf(err, errsz, "%s: write: %s", path, strerror(errno));
				close(fd);
				unlink(path);
				return -1;
			}
			close(fd);
		} else if (errno != EEXIST) {
			snprintf(err, errsz, "%s: %s", path, strerror(errno));
			return -1;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 32) {
		snprintf(err, errsz, "%s: expected 32 hex digits", path);
		return -1;
	}
	for (int i = 0; i < 16; i++) {
		unsigned v;

		if (!isxdigit((unsigned char)buf[2 * i]) || !isxdigit((unsigned char)buf[2 * i + 1]) ||
		    sscanf(buf + 2 * i, "%2x", &v) != 1) {
			snprintf(err, errsz, "%s: expected 32 hex digits", path);
			return -1;
		}
		key[i] = (uint8_t)v;
	}
	return 0;
}

/* gl_rec_expired - is R forgotten at NOW (pending after RETRY_WINDOW, others after LIFETIME)? */
int gl_rec_expired(const gl_rec *r, int64_t now, long retry_window, long lifetime)
{
	switch (r->type) {
	case GL_T_PENDING:
		return now - r->first_seen > retry_window;
	case GL_T_PASSED:
	case GL_T_CLIENT:
		return now - r->last_seen > lifetime;
	default:
		return 0;
	}
}
