/* spf.c - the spf plugin: SPF checks of MAIL FROM and HELO with RFC 7208 fixes over libspf2 */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "spf_int.h"

#include <policyd/plugin.h>

#include "escape.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_FIELD     256  /* longest client string we copy */
#define MSG_CACHE_MAX 8192 /* messages remembered for one-check-per-message: 2-way sets */
#define MSG_CACHE_TTL 3600 /* seconds a message's decision is remembered */

/* What to do with a result. */
enum act { ACT_NONE, ACT_HEADER, ACT_REJECT, ACT_DEFER };

static const char *const act_names[] = {"none", "header", "reject", "defer", NULL};

/* A decision remembered for the later recipients of the same message. */
struct msg {
	unsigned hash; /* of key, compared first */
	char key[160];
	time_t expires;
	char reply[PD_REPLY_MAX + 1]; /* "" = DUNNO */
	int repeat;                   /* repeat the reply for later recipients */
};

struct spf {
	pd_spf_resolver *res;
	pd_spf_engine *eng;
	char *resolv_conf;
	char receiver[256];
	unsigned timeout_ms;
	int helo_check, mailfrom_check, observe, skip_localhost;
	enum act act[2][PD_SPF_NRESULTS]; /* [helo?][result] */
	char **skip_helo;
	size_t nskip_helo;
	char **whitelist;
	size_t nwhitelist;
	pthread_mutex_t lock;
	struct msg *msgs; /* MSG_CACHE_MAX / 2 sets of 2, indexed by the key's hash */
};

static cfg_opt_t spf_opts[] = {
    CFG_INT("dns_timeout", 5, CFGF_NONE),
    CFG_INT("lookup_limit", 10, CFGF_NONE),
    CFG_INT("void_limit", 2, CFGF_NONE),
    CFG_STR("receiver", "", CFGF_NONE),
    CFG_STR("resolv_conf", "", CFGF_NONE), /* "": the core's (dns { resolv_conf }) */
    CFG_INT("cache_size", 10000, CFGF_NONE),
    CFG_INT("cache_max_ttl", 3600, CFGF_NONE),
    CFG_INT("result_cache_size", 16384, CFGF_NONE),
    CFG_STR("explanation", "SPF fail - not authorized: %{i} is not allowed to send mail for %{d}", CFGF_NONE),
    CFG_BOOL("helo_check", cfg_true, CFGF_NONE),
    CFG_BOOL("mailfrom_check", cfg_true, CFGF_NONE),
    CFG_BOOL("skip_localhost", cfg_true, CFGF_NONE),
    CFG_STR_LIST("skip_helo", "{}", CFGF_NONE),
    CFG_STR_LIST("whitelist", "{}", CFGF_NONE),
    CFG_STR("mailfrom_pass", "header", CFGF_NONE),
    CFG_STR("mailfrom_fail", "reject", CFGF_NONE),
    CFG_STR("mailfrom_softfail", "header", CFGF_NONE),
    CFG_STR("mailfrom_neutral", "header", CFGF_NONE),
    CFG_STR("mailfrom_none", "header", CFGF_NONE),
    CFG_STR("mailfrom_temperror", "defer", CFGF_NONE),
    CFG_STR("mailfrom_permerror", "header", CFGF_NONE),
    CFG_STR("helo_pass", "none", CFGF_NONE),
    CFG_STR("helo_fail", "reject", CFGF_NONE),
    CFG_STR("helo_softfail", "none", CFGF_NONE),
    CFG_STR("helo_neutral", "none", CFGF_NONE),
    CFG_STR("helo_none", "none", CFGF_NONE),
    CFG_STR("helo_temperror", "none", CFGF_NONE),
    CFG_STR("helo_permerror", "none", CFGF_NONE),
    CFG_END()};

/* free_list - free a copied string list */
static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* copy_list - copy the config list OPT, lower-cased; 0 or -1 */
static int copy_list(cfg_t *cfg, const char *opt, char ***out, size_t *n)
{
	size_t cnt = cfg ? cfg_size(cfg, opt) : 0;

	*out = calloc(cnt + 1, sizeof(char *));
	*n = 0;
	if (!*out)
		return -1;
	for (size_t i = 0; i < cnt; i++) {
		char *s = strdup(cfg_getnstr(cfg, opt, (unsigned)i));

		if (!s)
			return -1;
		for (char *p = s; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		(*out)[(*n)++] = s;
	}
	return 0;
}

/* cfg_int - integer option with a fallback when there is no section */
static long cfg_int(cfg_t *cfg, const char *name, long dflt)
{
	return cfg ? cfg_getint(cfg, name) : dflt;
}

/* cfg_bool - boolean option with a fallback */
static int cfg_bool(cfg_t *cfg, const char *name, int dflt)
{
	return cfg ? (int)cfg_getbool(cfg, name) : dflt;
}

/* cfg_str - string option with a fallback */
static const char *cfg_str(cfg_t *cfg, const char *name, const char *dflt)
{
	const char *s = cfg ? cfg_getstr(cfg, name) : NULL;

	return s ? s : dflt;
}

/* spf_free - free everything of an instance */
static void spf_free(struct spf *s)
{
	if (!s)
		return;
	pd_spf_engine_free(s->eng);
	pd_spf_resolver_free(s->res);
	free(s->resolv_conf);
	free_list(s->skip_helo, s->nskip_helo);
	free_list(s->whitelist, s->nwhitelist);
	free(s->msgs);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* read_actions - the 14 result-to-action options; 0 or -1 after logging */
static int read_actions(pd_instance *inst, struct spf *s)
{
	static const char *const defaults[2][PD_SPF_NRESULTS] = {
	    {"header", "header", "header", "reject", "header", "defer", "header"},
	    {"none", "none", "none", "reject", "none", "none", "none"},
	};

	for (int h = 0; h < 2; h++)
		for (int r = 0; r < PD_SPF_NRESULTS; r++) {
			char name[32];
			const char *v;
			int k;

			snprintf(name, sizeof(name), "%s_%s", h ? "helo" : "mailfrom",
			         pd_spf_result_name((enum pd_spf_result)r));
			v = cfg_str(inst->cfg, name, defaults[h][r]);
			for (k = 0; act_names[k]; k++)
				if (strcasecmp(v, act_names[k]) == 0)
					break;
			if (!act_names[k]) {
				inst->host->log(inst, PD_LOG_ERR, "%s = \"%.64s\": use none, header, reject or defer",
				                name, v);
				return -1;
			}
			s->act[h][r] = (enum act)k;
		}
	return 0;
}

/* spf_init - read options, set up the DNS layer and the libspf2 engine */
static int spf_init(pd_instance *inst)
{
	struct spf *s = calloc(1, sizeof(*s));
	cfg_t *cfg = inst->cfg;
	struct pd_spf_engine_cfg ec;
	char err[256] = "";
	long timeout = cfg_int(cfg, "dns_timeout", 5), cache = cfg_int(cfg, "cache_size", 10000);
	long maxttl = cfg_int(cfg, "cache_max_ttl", 3600);
	long limit = cfg_int(cfg, "lookup_limit", 10), voids = cfg_int(cfg, "void_limit", 2);
	long results = cfg_int(cfg, "result_cache_size", 16384);

	if (!s) {
		inst->host->log(inst, PD_LOG_ERR, "out of memory");
		return -1;
	}
	pthread_mutex_init(&s->lock, NULL);
	if (timeout < 1 || timeout > 60 || cache < 0 || cache > 10000000 || maxttl < 0 || limit < 1 || limit > 100 ||
	    voids < 0 || voids > 100 || results < 0 || results > 1000000) {
		inst->host->log(inst, PD_LOG_ERR,
		                "dns_timeout must be 1..60 s, cache_size 0..10000000, "
		                "lookup_limit 1..100, void_limit 0..100, result_cache_size 0..1000000");
		goto fail;
	}
	s->timeout_ms = (unsigned)timeout * 1000;
	snprintf(s->receiver, sizeof(s->receiver), "%s", cfg_str(cfg, "receiver", ""));
	if (!s->receiver[0] && gethostname(s->receiver, sizeof(s->receiver) - 1) != 0)
		snprintf(s->receiver, sizeof(s->receiver), "%s", "localhost");
	s->helo_check = cfg_bool(cfg, "helo_check", 1);
	s->mailfrom_check = cfg_bool(cfg, "mailfrom_check", 1);
	s->observe = inst->observe; /* the core's observe filter: only the header, never a rejection */
	s->skip_localhost = cfg_bool(cfg, "skip_localhost", 1);
	if (read_actions(inst, s) < 0)
		goto fail;
	if (copy_list(cfg, "skip_helo", &s->skip_helo, &s->nskip_helo) < 0 ||
	    copy_list(cfg, "whitelist", &s->whitelist, &s->nwhitelist) < 0) {
		inst->host->log(inst, PD_LOG_ERR, "out of memory");
		goto fail;
	}
	s->msgs = calloc(MSG_CACHE_MAX, sizeof(*s->msgs));
	s->res = s->msgs ? pd_spf_resolver_new(inst) : NULL;
	if (!s->res) {
		inst->host->log(inst, PD_LOG_ERR, "out of memory");
		goto fail;
	}
	/* the core's DNS service does the lookups: tell it our settings */
	s->resolv_conf = strdup(cfg_str(cfg, "resolv_conf", ""));
	if (!s->resolv_conf)
		goto fail;
	if (*s->resolv_conf)
		inst->dns_resolv_conf = s->resolv_conf;
	inst->dns_timeout_ms = s->timeout_ms;
	inst->dns_cache = cache != 0; /* cache_size = 0: every lookup goes to the servers */
	if (maxttl > 0 && (unsigned)maxttl < inst->dns_max_ttl)
		inst->dns_max_ttl = (unsigned)maxttl;
	inst->blocking = 0; /* it waits for DNS through the core, never on a thread */
	ec.receiver = s->receiver;
	ec.lookup_limit = (unsigned)limit;
	ec.void_limit = (unsigned)voids;
	ec.explanation = cfg_str(cfg, "explanation", NULL);
	ec.result_cache = cache ? (size_t)results : 0; /* outcomes live only as long as their cached answers */
	s->eng = pd_spf_engine_new(s->res, &ec, err, sizeof(err));
	if (!s->eng) {
		inst->host->log(inst, PD_LOG_ERR, "libspf2: %s", err);
		goto fail;
	}
	inst->data = s;
	return 0;
fail:
	spf_free(s);
	return -1;
}

/* spf_fini - free the instance */
static void spf_fini(pd_instance *inst)
{
	spf_free(inst->data);
	inst->data = NULL;
}

/* attr - a request attribute or "" */
static const char *attr(pd_instance *inst, pd_request *req, const char *name)
{
	const char *v = inst->host->attr(req, name);

	return v ? v : "";
}

/* is_localhost - 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104 */
static int is_localhost(const char *ip)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, ip, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, ip, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return 0;
}

/* name_listed - is NAME in LIST (exact, or under an entry starting with ".")? */
static int name_listed(char **list, size_t n, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(list[i]);

		if (list[i][0] == '.' && len >= l && strcasecmp(name + len - l, list[i]) == 0)
			return 1;
		if (strcasecmp(name, list[i]) == 0)
			return 1;
	}
	return 0;
}

/* clean_sp - copy text for a header or reply: printable ASCII, bounded; SPACES kept? */
static void clean_sp(char *out, size_t outlen, const char *in, int spaces)
{
	size_t o = 0;

	for (; *in && o + 1 < outlen && o < MAX_FIELD; in++)
		out[o++] = (((unsigned char)*in > 0x20 || (spaces && *in == ' ')) && (unsigned char)*in < 0x7f &&
		            *in != '"' && *in != '\\' && *in != ';' && *in != '(' && *in != ')')
		               ? *in
		               : '?';
	out[o] = 0;
}

/* clean - copy a single token of client text (no spaces) */
static void clean(char *out, size_t outlen, const char *in)
{
	clean_sp(out, outlen, in, 0);
}

/* header_value - the RFC 7208 9.1 Received-SPF field body */
static void header_value(struct spf *s, char *buf, size_t len, const struct pd_spf_outcome *o, const char *ip,
                         const char *sender, const char *helo, int helo_identity)
{
	char cs[101], ch[65], cip[47], cr[65], cm[MAX_FIELD + 1], kv[470];
	const char *res = pd_spf_result_name(o->result);
	size_t n, room;

	/* the key-value pairs first, each field capped so that they always fit */
	clean(cip, sizeof(cip), ip);
	clean(ch, sizeof(ch), helo);
	clean(cr, sizeof(cr), s->receiver);
	if (*sender)
		clean(cs, sizeof(cs), sender);
	else
		snprintf(cs, sizeof(cs), "%s", "<>");
	n = (size_t)snprintf(kv, sizeof(kv),
	                     "receiver=%s; client-ip=%s; envelope-from=\"%s\"; helo=\"%s\"; identity=%s;", cr, cip, cs,
	                     ch, helo_identity ? "helo" : "mailfrom");
	if (n < sizeof(kv) && o->mechanism[0]) {
		clean(cm, 61, o->mechanism); /* record text from DNS */
		n += (size_t)snprintf(kv + n, sizeof(kv) - n, " mechanism=\"%s\";", cm);
	}
	if (n < sizeof(kv) && o->problem[0] && (o->result == PD_SPF_PERMERROR || o->result == PD_SPF_TEMPERROR)) {
		clean_sp(cm, 61, o->problem, 1);
		n += (size_t)snprintf(kv + n, sizeof(kv) - n, " problem=\"%s\";", cm);
	}
	/* the comment (optional in RFC 7208 9.1) gets what room is left */
	room = len > strlen(res) + n + 5 ? len - strlen(res) - n - 5 : 0;
	if (room > MAX_FIELD + 1)
		room = MAX_FIELD + 1;
	if (room > 16) {
		clean_sp(cm, room, o->comment, 1);
		snprintf(buf, len, "%s (%.*s) %.*s", res, (int)room, cm, (int)n, kv);
	} else {
		snprintf(buf, len, "%s %.*s", res, (int)n, kv);
	}
}

/* decide - the reply for outcome O under action A; 1 when decisive */
static int decide(struct spf *s, enum act a, const struct pd_spf_outcome *o, const char *ip, const char *sender,
                  const char *helo, int helo_identity, char *reply, size_t len)
{
	char hv[PD_REPLY_MAX + 1 - sizeof("PREPEND Received-SPF: ")], txt[MAX_FIELD + 1], dom[MAX_FIELD + 1];
	const char *at = strrchr(sender, '@');

	clean(dom, sizeof(dom), helo_identity || !*sender ? helo : (at ? at + 1 : sender));
	if (s->observe && a != ACT_NONE)
		a = ACT_HEADER;
	switch (a) {
	case ACT_REJECT:
		if (o->result == PD_SPF_PERMERROR) {
			clean_sp(txt, sizeof(txt), o->problem, 1);
			snprintf(reply, len, "550 5.7.24 SPF permerror for %.200s: %.200s", dom, txt);
		} else if (o->result == PD_SPF_TEMPERROR) {
			clean_sp(txt, sizeof(txt), o->problem, 1);
			snprintf(reply, len, "550 5.7.24 SPF temperror for %.200s: %.200s", dom, txt);
		} else {
			/* the explanation comes from DNS: keep it printable, spaces allowed */
			size_t k = 0;

			for (const char *p = o->explanation; *p && k < MAX_FIELD; p++)
				txt[k++] = ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f) ? *p : '?';
			txt[k] = 0;
			if (k)
				snprintf(reply, len, "550 5.7.23 %s%s", helo_identity ? "HELO: " : "", txt);
			else
				snprintf(reply, len, "550 5.7.23 SPF %s for %s%.200s", pd_spf_result_name(o->result),
				         helo_identity ? "HELO " : "", dom);
		}
		return 1;
	case ACT_DEFER:
		clean_sp(txt, sizeof(txt), o->problem, 1);
		snprintf(reply, len, "DEFER_IF_PERMIT 4.7.24 SPF %s for %.200s: %.200s", pd_spf_result_name(o->result),
		         dom, txt[0] ? txt : "try again later");
		return 1;
	case ACT_HEADER:
		header_value(s, hv, sizeof(hv), o, ip, sender, helo, helo_identity);
		snprintf(reply, len, "PREPEND Received-SPF: %s", hv);
		return 0;
	default:
		reply[0] = 0;
		return 0;
	}
}

/* whitelisted - does a listed domain's SPF authorise IP? */
static int whitelisted(struct spf *s, const char *ip)
{
	for (size_t i = 0; i < s->nwhitelist; i++) {
		struct pd_spf_outcome o;
		char from[300];

		snprintf(from, sizeof(from), "postmaster@%s", s->whitelist[i]);
		pd_spf_engine_check(s->eng, ip, s->whitelist[i], from, 0, &o);
		if (o.result == PD_SPF_PASS)
			return 1;
	}
	return 0;
}

/* msg_lookup - the remembered reply for KEY: 1 found (REPLY filled), 0 not */
static int msg_lookup(pd_instance *inst, struct spf *s, const char *key, char *reply, size_t len)
{
	time_t now = inst->host->now();
	unsigned h = pd_spf_key_hash(key);
	int found = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = h % (MSG_CACHE_MAX / 2) * 2, e = i + 2; i < e; i++) { /* its set: 2 slots */
		struct msg *m = &s->msgs[i];

		if (m->hash == h && m->key[0] && m->expires > now && strcmp(m->key, key) == 0) {
			snprintf(reply, len, "%s", m->repeat ? m->reply : "");
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}

/* msg_store - remember the reply for the other recipients of the message */
static void msg_store(pd_instance *inst, struct spf *s, const char *key, const char *reply, int repeat)
{
	struct msg *m;

	unsigned h = pd_spf_key_hash(key);
	time_t now = inst->host->now();

	pthread_mutex_lock(&s->lock);
	m = &s->msgs[h % (MSG_CACHE_MAX / 2) * 2]; /* the older (or expired) slot of the set */
	if (m[1].expires < m->expires)
		m++;
	snprintf(m->key, sizeof(m->key), "%s", key);
	m->hash = h;
	snprintf(m->reply, sizeof(m->reply), "%s", reply);
	m->repeat = repeat;
	m->expires = now + MSG_CACHE_TTL;
	pthread_mutex_unlock(&s->lock);
}

/* problem_field - " problem=..." for a log line (text from DNS, escaped), or "" */
static const char *problem_field(const struct pd_spf_outcome *o, char *buf)
{
	if (!o->problem[0])
		return "";
	memcpy(buf, " problem=\"", 10);
	pd_esc(buf + 10, 4 * 100 + 4, o->problem, 100, 0);
	strcat(buf, "\"");
	return buf;
}

/* spf_check - check HELO and MAIL FROM once per message. Every lookup the
 * check needs is asked in the same pass where it can be (the whitelist, the
 * HELO and the MAIL FROM identity), so that they are under way together;
 * when one is not in yet, nothing is logged, stored or replied and the core
 * runs the check again once the answers are in. */
static int spf_check(pd_instance *inst, pd_request *req, pd_reply *reply)
{
	struct spf *s = inst->data;
	const char *ip = attr(inst, req, "client_address");
	const char *helo = attr(inst, req, "helo_name");
	const char *sender = attr(inst, req, "sender");
	const char *instance = attr(inst, req, "instance");
	char key[160], out[PD_REPLY_MAX + 1] = "", header[PD_REPLY_MAX + 1] = "";
	char hlog[1100] = ""; /* the HELO result, logged in one line with the MAIL FROM one */
	char esc_ip[4 * 46 + 4], esc_helo[4 * 64 + 4], esc_sender[4 * 64 + 4], esc_problem[4 * 100 + 16];
	struct pd_spf_outcome o, mo;
	int decisive = 0, listed = 0, missed = 0;

	if (!*ip || (s->skip_localhost && is_localhost(ip)))
		return PD_CHECK_OK;
	if (*helo && name_listed(s->skip_helo, s->nskip_helo, helo))
		return PD_CHECK_OK;
	if (*instance) {
		snprintf(key, sizeof(key), "%.40s|%.46s|%.64s", instance, ip, sender);
		if (msg_lookup(inst, s, key, out, sizeof(out))) {
			if (out[0])
				inst->host->reply(reply, "%s", out);
			return PD_CHECK_OK;
		}
	}
	pd_esc(esc_ip, sizeof(esc_ip), ip, 46, PD_ESC_TOKEN); /* client data in log lines: escape.h */
	pd_esc(esc_helo, sizeof(esc_helo), helo, 64, PD_ESC_TOKEN);
	pd_spf_req = req;
	pd_spf_missed = 0;
	pd_spf_timed_out = 0;
	if (s->nwhitelist) {
		listed = whitelisted(s, ip);
		missed = pd_spf_missed;
		if (listed && !missed) {
			pd_spf_req = NULL;
			inst->host->log(inst, PD_LOG_INFO, "client %s authorised by a whitelisted domain", esc_ip);
			if (*instance)
				msg_store(inst, s, key, "", 0);
			return PD_CHECK_OK;
		}
	}
	/* HELO identity first (unless the null sender makes it the MAIL FROM identity) */
	if (s->helo_check && *helo && *sender) {
		pd_spf_missed = 0;
		pd_spf_engine_check(s->eng, ip, helo, sender, 1, &o);
		missed |= pd_spf_missed;
		if (!missed) {
			enum act a = s->act[1][o.result];

			decisive = decide(s, a, &o, ip, sender, helo, 1, out, sizeof(out));
			if (a == ACT_HEADER)
				snprintf(header, sizeof(header), "%s", out);
			snprintf(hlog, sizeof(hlog), "identity=helo helo=%s client=%s result=%s%s%s", esc_helo, esc_ip,
			         pd_spf_result_name(o.result), o.cached ? " cached=yes" : "",
			         problem_field(&o, esc_problem));
		}
	}
	if (!decisive && s->mailfrom_check) { /* also while HELO waits: its lookups go out together */
		pd_spf_missed = 0;
		pd_spf_engine_check(s->eng, ip, helo, sender, 0, &mo);
		missed |= pd_spf_missed;
	}
	pd_spf_req = NULL;
	if (missed)
		return PD_CHECK_WAIT;
	if (!decisive && s->mailfrom_check) {
		char mf[PD_REPLY_MAX + 1];

		decisive = decide(s, s->act[0][mo.result], &mo, ip, sender, helo, 0, mf, sizeof(mf));
		if (decisive || mf[0])
			snprintf(out, sizeof(out), "%s", mf);
		else
			snprintf(out, sizeof(out), "%s", header);
		pd_esc(esc_sender, sizeof(esc_sender), sender, 64, PD_ESC_TOKEN);
		inst->host->log(inst, PD_LOG_INFO, "%s%sidentity=mailfrom sender=<%s> client=%s result=%s%s%s", hlog,
		                hlog[0] ? "; " : "", esc_sender, esc_ip, pd_spf_result_name(mo.result),
		                mo.cached ? " cached=yes" : "", problem_field(&mo, esc_problem));
	} else if (hlog[0]) {
		inst->host->log(inst, PD_LOG_INFO, "%s", hlog); /* decided by HELO (or no MAIL FROM check) */
	}
	if (*instance)
		msg_store(inst, s, key, out, decisive);
	if (out[0])
		inst->host->reply(reply, "%s", out);
	return PD_CHECK_OK;
}

const pd_plugin_desc pd_plugin = {
    PD_PLUGIN_HEADER,
    .name = "spf",
    .version = "2.0",
    .description = "SPF (RFC 7208) checks of MAIL FROM and HELO, libspf2 on the core's asynchronous DNS",
    .flags = PD_PLUGIN_SKIP_SASL,
    .default_states = "RCPT",
    .options = spf_opts,
    .init = spf_init,
    .check = spf_check,
    .fini = spf_fini,
};
