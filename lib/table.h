/* table.h - lookup tables keyed by addresses, domains, networks or regexes (access tables, chain selection) */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_TABLE_H
#define PD_TABLE_H

#include <stddef.h>

/*
 * A table maps keys to value strings, which it does not interpret (an
 * action such as "REJECT 5.7.1 ...", "OK", "score:+3.5", or nothing for a
 * list of keys). Build it with pd_table_add and pd_table_load, then it is
 * read-only: any number of threads may look up in it at once, without
 * locks, as long as nobody adds to it any more.
 *
 * Kinds (one per table):
 *
 * PD_TABLE_CIDR    keys are IPv4 or IPv6 networks ("192.0.2.0/24",
 *                  "2001:db8::/32") or hosts ("192.0.2.1", "::1"); a
 *                  network written in IPv4-mapped form ("::ffff:192.0.2.0/120")
 *                  is the IPv4 network (192.0.2.0/24). A prefix length is
 *                  decimal and no bit past it may be set. An IPv4-mapped
 *                  client address (::ffff:192.0.2.1) is looked up as the
 *                  IPv4 address, so IPv6 networks that span the mapped
 *                  range (::/0, ::/80) do not match it: 0.0.0.0/0 is every
 *                  IPv4 client, ::/0 every IPv6 one. The longest matching
 *                  prefix wins, whatever the order of the entries.
 *
 * PD_TABLE_EXACT   address keys; no parent domain is ever looked up:
 *                    user@domain  that address
 *                    user@        that local part at any domain
 *                    @domain      every address at that domain, not at
 *                                 its subdomains
 *                    domain       the same as @domain
 *                    <>           the null sender (the empty address)
 *                  .domain is refused (it needs a suffix table).
 *
 * PD_TABLE_SUFFIX  the same keys, but:
 *                    domain       the domain and all its subdomains (as
 *                                 Postfix access tables with the default
 *                                 parent_domain_matches_subdomains)
 *                    .domain      the subdomains of domain, not domain
 *                                 itself (as Postfix access tables when
 *                                 smtpd_access_maps is removed from that
 *                                 setting)
 *                    @domain      still that domain only
 *
 * PD_TABLE_REGEX   keys are /pattern/: a POSIX extended regular
 *                  expression, case-insensitive, NOT anchored (write ^ and
 *                  $ yourself: /example\.com/ also matches
 *                  "user@example.com.evil.test"), matched against the text
 *                  with only its surrounding <> removed (the null sender
 *                  is ""). Entries are tried in the order they were added,
 *                  one regexec each: a regex table is a list scan. (glibc's
 *                  regexec takes a lock inside each compiled pattern, so
 *                  threads matching the same regex table wait for each
 *                  other there; the other kinds take no lock at all.)
 *
 * Keys and looked-up addresses: one surrounding pair of <> is removed;
 * ASCII letters are folded to lower case in domains and in local parts
 * (Postfix folds the whole lookup key of its access tables too; other
 * bytes, UTF-8 included, compare as they are); one trailing dot of a
 * domain is ignored; an address is split at its last '@'. In keys, a
 * domain is labels of letters, digits, '-', '_' and bytes >= 0x80
 * separated by single dots, or an address literal in [] (matched as
 * written, never as a parent domain); a local part is any bytes but white
 * space and control characters. Looked-up text is not validated: what is
 * not in the table does not match.
 *
 * pd_table_match_addr on an exact or suffix table splits the address at
 * its last '@' and tries, first match wins:
 *   1. user@domain                 (both parts non-empty)
 *   2. @domain, then domain        (suffix tables: domain is tried too)
 *   3. the parent domains, nearest first (suffix tables, and not for an
 *      address literal): for a.b.example.com, ".b.example.com" then
 *      "b.example.com", then ".example.com", "example.com", ".com", "com"
 *   4. user@                       (a non-empty local part)
 * An address without '@' is a bare domain (a recipient domain, a host
 * name): steps 2 and 3 only. The empty address ("" or "<>") matches the
 * <> key and nothing else. The caller goes through its tables in order.
 */

/* the kind of a table */
enum pd_table_kind { PD_TABLE_CIDR, PD_TABLE_EXACT, PD_TABLE_SUFFIX, PD_TABLE_REGEX };

/* pd_table_load flag: a line may be a key alone (a list, for chain
 * selection); such an entry matches with the value "". */
#define PD_TABLE_VALUE_OPTIONAL 1u

typedef struct pd_table pd_table;

/* A value check: return 0 if VALUE is acceptable, else -1 with a reason in
 * WHY (capacity WHYLEN). Called when a value that no entry of the table has
 * yet is added: once per distinct value, not once per entry. */
typedef int (*pd_table_check_fn)(const char *value, char *why, size_t whylen, void *arg);

/* An empty table of KIND, or NULL (out of memory or unknown kind). */
pd_table *pd_table_new(enum pd_table_kind kind);

/* The kind of T. */
enum pd_table_kind pd_table_kind(const pd_table *t);

/* "cidr", "exact", "suffix" or "regex" to a kind: 0, or -1 if unknown. */
int pd_table_kind_parse(const char *name, enum pd_table_kind *kind);

/* The name of KIND ("cidr", ...), "?" if unknown. */
const char *pd_table_kind_name(enum pd_table_kind kind);

/* Check every value added from now on with FN (NULL: no check beyond
 * being one non-empty line). */
void pd_table_set_check(pd_table *t, pd_table_check_fn fn, void *arg);

/* Add KEY with VALUE (both trimmed of spaces, tabs, CR and LF; VALUE NULL:
 * a key without value, which matches with ""). A value must be one line:
 * not empty, no control character but TAB. A regex key may hold white
 * space here, not in a file. A key that an earlier entry already has is ignored (the first one
 * wins; see pd_table_duplicates). Returns 0, or -1 with the reason in ERR
 * and T unchanged. */
int pd_table_add(pd_table *t, const char *key, const char *value, char *err, size_t errlen);

/* Add the entries of the file PATH: "KEY VALUE" lines (VALUE is the rest of
 * the line, trimmed), blank lines, and comments (a line whose first
 * non-blank character is '#'; a '#' further on is part of the value). A
 * line that starts with white space and is not blank or a comment is an
 * error (Postfix would join it to the line before). Regex keys cannot
 * contain white space (write [[:space:]]). FLAGS: PD_TABLE_VALUE_OPTIONAL.
 * Returns 0, or -1 with "PATH:LINE: reason" (or "PATH: reason") in ERR and
 * T as it was before the call. */
int pd_table_load(pd_table *t, const char *path, unsigned flags, char *err, size_t errlen);

/* The value of the first entry matching ADDRESS in an exact, suffix or
 * regex table, or NULL (no match, another kind, T or ADDRESS NULL). */
const char *pd_table_match_addr(const pd_table *t, const char *address);

/* The value of the longest network of a cidr table holding the address
 * IP (text as Postfix sends client_address), or NULL (no match, not an
 * address, another kind, T or IP NULL). */
const char *pd_table_match_ip(const pd_table *t, const char *ip);

/* Every entry TEXT matches (an address, a domain or a client address, by
 * the table's kind), in the order the first-match functions try them (for
 * a cidr table: longest network first), each entry's value to FN; FN
 * returns 1 to stop. Returns 1 if FN stopped, else 0. For indexes that
 * must know every match (chain selection), not only the first. */
int pd_table_each(const pd_table *t, const char *text, int (*fn)(const char *value, void *arg), void *arg);

/* Merge mode (ON): adding a key an entry already has no longer ignores it
 * but appends ",VALUE" to that entry's value (unless VALUE is one of its
 * comma-separated items already): a key of several lists at once, e.g.
 * the numbers of the chains that name a domain ("3,17"). Not for regex
 * tables (every regex entry stands alone). A load that fails in merge mode
 * may leave earlier entries' values merged: discard the table. */
void pd_table_set_merge(pd_table *t, int on);

/* Add the keys listed in the file PATH, one per line (comments and blank
 * lines as for pd_table_load, nothing after a key), each with VALUE.
 * 0, or -1 with "PATH:LINE: reason" in ERR. */
int pd_table_load_keys(pd_table *t, const char *path, const char *value, char *err, size_t errlen);

/* pd_table_match_ip for a cidr table, else pd_table_match_addr. */
const char *pd_table_match(const pd_table *t, const char *text);

/* The number of entries (duplicates ignored are not counted). */
size_t pd_table_size(const pd_table *t);

/* The bytes T has allocated (keys, values, indexes; the compiled state of
 * regexes is not included: the C library does not tell it). */
size_t pd_table_memory(const pd_table *t);

/* The number of keys ignored because an earlier entry had them; FIRST (if
 * not NULL) gets where the first was ("PATH:LINE: duplicate key ...") or
 * NULL if none, valid until T is changed or freed. */
size_t pd_table_duplicates(const pd_table *t, const char **first);

/* Free T and everything in it (NULL is fine). */
void pd_table_free(pd_table *t);

#endif
