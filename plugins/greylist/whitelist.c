/* whitelist.c - client and recipient whitelists of the greylist plugin: files, parsing, matching */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "gl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Entry kinds. */
enum { W_NET4, W_NET6, W_HOST, W_SUFFIX, W_REGEX, W_ADDR, W_LOCAL, W_DOMAIN, W_DSUFFIX };

typedef struct wl_entry {
	int kind;
	int bits;              /* W_NET*: prefix length */
	unsigned char ip[16];  /* W_NET*: masked network */
	char *text;            /* names, addresses, domains (lower case) */
	regex_t re;            /* W_REGEX */
} wl_entry;

struct gl_wl {
	wl_entry *e;
	size_t n, cap;
};

/* gl_wl_new - an empty whitelist */
gl_wl *gl_wl_new(void)
{
	return calloc(1, sizeof(gl_wl));
}

/* gl_wl_free - free every entry */
void gl_wl_free(gl_wl *wl)
{
	if (!wl)
		return;
	for (size_t i = 0; i < wl->n; i++) {
		if (wl->e[i].kind == W_REGEX)
			regfree(&wl->e[i].re);
		free(wl->e[i].text);
	}
	free(wl->e);
	free(wl);
}

/* gl_wl_count - number of entries */
size_t gl_wl_count(const gl_wl *wl)
{
	return wl ? wl->n : 0;
}

/* mask_bits - clear the host part of an address of LEN bytes */
static void mask_bits(unsigned char *ip, size_t len, int bits)
{
	for (size_t i = 0; i < len; i++) {
		int keep = bits - 8 * (int)i;

		if (keep <= 0)
			ip[i] = 0;
		else if (keep < 8)
			ip[i] &= (unsigned char)(0xff << (8 - keep));
	}
}

/* parse_net - "ADDR" or "ADDR/BITS" (v4 or v6) into E; 1 parsed, 0 not an address, -1 bad */
static int parse_net(const char *s, wl_entry *e, char *err, size_t errsz)
{
	char a[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t al = slash ? (size_t)(slash - s) : strlen(s);
	int max;

	if (al >= sizeof(a))
		return 0;
	memcpy(a, s, al);
	a[al] = 0;
	memset(e->ip, 0, sizeof(e->ip));
	if (inet_pton(AF_INET, a, e->ip) == 1) {
		e->kind = W_NET4;
		max = 32;
	} else if (inet_pton(AF_INET6, a, e->ip) == 1) {
		e->kind = W_NET6;
		max = 128;
	} else {
		return 0;
	}
	e->bits = max;
	if (slash) {
		char *end;
		long b;

		errno = 0;
		b = strtol(slash + 1, &end, 10);
		if (!isdigit((unsigned char)slash[1]) || *end || errno || b < 0 || b > max) {
			snprintf(err, errsz, "bad prefix length in \"%.64s\" (0..%d)", s, max);
			return -1;
		}
		e->bits = (int)b;
	}
	mask_bits(e->ip, max / 8, e->bits);
	return 1;
}

/* valid_name - host or domain name characters only */
static int valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-' && *s != '_')
			return 0;
	return 1;
}

/* lower_dup - lower-case copy */
static char *lower_dup(const char *s)
{
	char *d = strdup(s);

	for (char *p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* gl_wl_add - parse ENTRY as a client or recipient whitelist entry and add it */
int gl_wl_add(gl_wl *wl, const char *s, int clients, char *err, size_t errsz)
{
	wl_entry e = {0};
	size_t len = strlen(s);

	if (len >= 2 && s[0] == '/' && s[len - 1] == '/') {
		char re[1024];
		int rc;

		if (len - 2 >= sizeof(re)) {
			snprintf(err, errsz, "regular expression too long");
			return -1;
		}
		memcpy(re, s + 1, len - 2);
		re[len - 2] = 0;
		rc = regcomp(&e.re, re, REG_EXTENDED | REG_ICASE | REG_NOSUB);
		if (rc != 0) {
			char m[128];

			regerror(rc, &e.re, m, sizeof(m));
			snprintf(err, errsz, "bad regular expression %.64s: %s", s, m);
			return -1;
		}
		e.kind = W_REGEX;
	} else if (clients) {
		int r = parse_net(s, &e, err, errsz);

		if (r < 0)
			return -1;
		if (r == 0) {
			const char *name = s[0] == '.' ? s + 1 : s;

			if (!valid_name(name) || strchr(s, '/')) {
				snprintf(err, errsz, "not an address, network, host name, .domain or /regex/: "
					 "\"%.64s\"", s);
				return -1;
			}
			e.kind = s[0] == '.' ? W_SUFFIX : W_HOST;
			e.text = lower_dup(name);
		}
	} else {
		const char *at = strchr(s, '@');

		if (at && at == s) { /* @domain */
			if (!valid_name(at + 1))
				goto bad_rcpt;
			e.kind = W_DOMAIN;
			e.text = lower_dup(at + 1);
		} else if (at && !at[1]) { /* local@ */
			e.kind = W_LOCAL;
			e.text = lower_dup(s);
			e.text[len - 1] = 0;
		} else if (at) {
			if (!valid_name(at + 1) || strchr(at + 1, '@'))
				goto bad_rcpt;
			e.kind = W_ADDR;
			e.text = lower_dup(s);
		} else if (s[0] == '.') {
			if (!valid_name(s + 1))
				goto bad_rcpt;
			e.kind = W_DSUFFIX;
			e.text = lower_dup(s + 1);
		} else {
			if (!valid_name(s))
				goto bad_rcpt;
			e.kind = W_DOMAIN;
			e.text = lower_dup(s);
		}
	}
	if ((e.kind == W_HOST || e.kind >= W_ADDR || e.kind == W_SUFFIX) && !e.text) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (wl->n == wl->cap) {
		size_t cap = wl->cap ? 2 * wl->cap : 16;
		wl_entry *ne = realloc(wl->e, cap * sizeof(*ne));

		if (!ne) {
			if (e.kind == W_REGEX)
				regfree(&e.re);
			free(e.text);
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		wl->e = ne;
		wl->cap = cap;
	}
	wl->e[wl->n++] = e;
	return 0;
bad_rcpt:
	snprintf(err, errsz, "not an address, local@, @domain, domain, .domain or /regex/: \"%.64s\"", s);
	return -1;
}

/* gl_wl_load - read a whitelist file: one entry a line, '#' comments; errors give file:line */
int gl_wl_load(gl_wl *wl, const char *path, int clients, char *err, size_t errsz)
{
	FILE *f = fopen(path, "re");
	char line[1100];
	unsigned lineno = 0;

	if (!f) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *end, why[256];
		size_t len = strlen(line);

		lineno++;
		if (len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f)) {
			snprintf(err, errsz, "%s:%u: line too long", path, lineno);
			fclose(f);
			return -1;
		}
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '#' || !*p)
			continue;
		end = p;
		while (*end && !isspace((unsigned char)*end))
			end++;
		if (*end) {
			char *q = end;

			*q++ = 0;
			while (isspace((unsigned char)*q))
				q++;
			if (*q && *q != '#') {
				snprintf(err, errsz, "%s:%u: one entry per line (a comment starts with #)",
					 path, lineno);
				fclose(f);
				return -1;
			}
		}
		if (gl_wl_add(wl, p, clients, why, sizeof(why)) != 0) {
			snprintf(err, errsz, "%s:%u: %s", path, lineno, why);
			fclose(f);
			return -1;
		}
	}
	if (ferror(f)) {
		snprintf(err, errsz, "%s: read error", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

/* name_known - a usable client name (Postfix says "unknown" when there is none) */
static int name_known(const char *n)
{
	return n && *n && strcmp(n, "unknown") != 0;
}

/* suffix_match - NAME equals DOM or ends in ".DOM" (case-insensitive) */
static int suffix_match(const char *name, const char *dom)
{
	size_t nl = strlen(name), dl = strlen(dom);

	if (nl == dl)
		return strcasecmp(name, dom) == 0;
	return nl > dl && name[nl - dl - 1] == '.' && strcasecmp(name + nl - dl, dom) == 0;
}

/* gl_wl_client - does the client (address, verified client_name) match an entry? */
int gl_wl_client(const gl_wl *wl, const char *addr, const char *name)
{
	/* Names are matched against Postfix's client_name only, which it sets when
	 * the forward and reverse DNS agree. reverse_client_name is whatever the
	 * client's own PTR record says (anybody can make theirs "mail.google.com"):
	 * it must never whitelist. */
	unsigned char ip[16] = {0};
	int fam = 0;

	if (!wl || !wl->n)
		return 0;
	if (addr && inet_pton(AF_INET, addr, ip) == 1)
		fam = 4;
	else if (addr && inet_pton(AF_INET6, addr, ip) == 1) {
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

		fam = 6;
		if (memcmp(ip, mapped, 12) == 0) {
			memmove(ip, ip + 12, 4);
			memset(ip + 4, 0, 12);
			fam = 4;
		}
	}
	for (size_t i = 0; i < wl->n; i++) {
		const wl_entry *e = &wl->e[i];

		switch (e->kind) {
		case W_NET4:
		case W_NET6: {
			unsigned char m[16];

			if ((e->kind == W_NET4) != (fam == 4) || !fam)
				break;
			memcpy(m, ip, 16);
			mask_bits(m, fam == 4 ? 4 : 16, e->bits);
			if (memcmp(m, e->ip, fam == 4 ? 4 : 16) == 0)
				return 1;
			break;
		}
		case W_HOST:
			if (name_known(name) && strcasecmp(name, e->text) == 0)
				return 1;
			break;
		case W_SUFFIX:
			if (name_known(name) && suffix_match(name, e->text))
				return 1;
			break;
		case W_REGEX:
			if (name_known(name) && regexec(&e->re, name, 0, NULL, 0) == 0)
				return 1;
			break;
		default:
			break;
		}
	}
	return 0;
}

/* gl_wl_recipient - does the recipient address match an entry? */
int gl_wl_recipient(const gl_wl *wl, const char *rcpt)
{
	const char *at;

	if (!wl || !wl->n || !rcpt || !*rcpt)
		return 0;
	at = strrchr(rcpt, '@');
	for (size_t i = 0; i < wl->n; i++) {
		const wl_entry *e = &wl->e[i];

		switch (e->kind) {
		case W_REGEX:
			if (regexec(&e->re, rcpt, 0, NULL, 0) == 0)
				return 1;
			break;
		case W_ADDR:
			if (strcasecmp(rcpt, e->text) == 0)
				return 1;
			break;
		case W_LOCAL:
			if (at && (size_t)(at - rcpt) == strlen(e->text) &&
			    strncasecmp(rcpt, e->text, (size_t)(at - rcpt)) == 0)
				return 1;
			break;
		case W_DOMAIN:
			if (at && strcasecmp(at + 1, e->text) == 0)
				return 1;
			break;
		case W_DSUFFIX:
			if (at && suffix_match(at + 1, e->text))
				return 1;
			break;
		default:
			break;
		}
	}
	return 0;
}
