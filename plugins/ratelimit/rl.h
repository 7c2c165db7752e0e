/* rl.h - the ratelimit plugin's rules, keys and check, shared by its files */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_RATELIMIT_H
#define PD_RATELIMIT_H

#include <stddef.h>
#include <policyd/plugin.h>

#define RL_PARTS_MAX 4    /* attributes in one combined key, "a+b+c+d" */
#define RL_KEYS_MAX 8     /* key choices of a rule (the first non-empty wins) */
#define RL_LIMITS_MAX 8   /* windows of one rule */
#define RL_WARN_MAX 4     /* warn_at fractions */
#define RL_VALUE_MAX 300  /* longest key value in the store; longer ones are hashed */
#define RL_LINE_MAX 1024  /* longest line of an overrides file */

/* what a rule counts */
enum rl_count { RL_MESSAGES, RL_RECIPIENTS, RL_BYTES, RL_REQUESTS };

/* one window: at most MAX in any WINDOW seconds */
struct rl_limit {
	long long max;
	unsigned window;
};

/* a set of limits; n == 0 with unlimited set: the key is exempt */
struct rl_limits {
	struct rl_limit l[RL_LIMITS_MAX];
	size_t n;
	int unlimited;
};

/* one key choice: attributes joined by '+' */
struct rl_key {
	char *text;                    /* as configured: "sasl_username+client_address" */
	char *part[RL_PARTS_MAX];      /* attribute names */
	size_t n;
};

/* one override: the key's value and its own limits */
struct rl_override {
	char *key;
	struct rl_limits limits;
};

struct rl_rule {
	char *name;
	enum rl_count count;
	struct rl_key keys[RL_KEYS_MAX];
	size_t nkeys;
	struct rl_limits limits;
	char *action;
	int prefix4, prefix6;
	double warn[RL_WARN_MAX];
	size_t nwarn;
	char *overrides_path;          /* "" : none */
	struct rl_override *over;      /* sorted by key, read-only after init */
	size_t nover;
};

struct rl {
	struct rl_rule *rules;
	size_t nrules;
	struct pd_table *exempt;       /* exempt_recipients (exact table) */
	unsigned count_state;          /* 1: END-OF-MESSAGE, 2: DATA */
};

/* rules.c */
extern cfg_opt_t rl_options[];
const char *rl_count_name(enum rl_count c);
int rl_parse_limit(const char *text, int bytes, struct rl_limit *out, const char **why);
int rl_parse_fraction(const char *text, double *out);
const char *rl_action_error(const char *v);
int rl_validate(cfg_t *sec);
int rl_rule_load(struct rl_rule *r, cfg_t *rsec, char *err, size_t errlen);
int rl_overrides_load(struct rl_rule *r, const char *path, char *err, size_t errlen);
const struct rl_limits *rl_limits_for(const struct rl_rule *r, const char *value);
void rl_rule_free(struct rl_rule *r);

/* key.c */
int rl_key_attr_ok(const char *name);
int rl_key_value(const pd_host *h, const pd_request *req, const struct rl_rule *r, const struct rl_key *k,
		 char *out, size_t cap);
void rl_store_key(const struct rl_rule *r, const struct rl_key *k, unsigned window, const char *value,
		  char *out, size_t cap);

#endif
