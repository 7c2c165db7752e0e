/* store_redis.c - Redis storage backend of the greylist plugin (hiredis): shared by many MX hosts */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Records are Redis hashes under REDIS_PREFIX + the plugin's binary key,
 * fields t (type letter), c (count), f (first seen), l (last seen),
 * p (passed at / whitelisted at), with a TTL: a pending triplet lives
 * retry_window (+60 s) after it was first seen, a passed triplet or a
 * client record lifetime after its last update. Redis forgets them by
 * itself: no cleanup job, no sync, no compaction.
 *
 * The hot path is update(): one EVALSHA of the Lua script below, which
 * takes the same decision as greylist.c does with get/put on GDBM, for the
 * triplet and the client's auto-whitelist counter together. Redis runs a
 * script atomically, so daemons on many hosts can share one database
 * without losing updates. The script is loaded (SCRIPT LOAD) on every new
 * connection; a NOSCRIPT reply (a restarted Redis) falls back to EVAL.
 *
 * Connections: a small pool, one connection per concurrently checking
 * thread, reused. Any I/O error or timeout drops the connection and marks
 * the server down: logged once ("redis down: ..."); while down, requests
 * fail at once (the core's on_error applies) and one thread at a time
 * tries to reconnect, with a backoff from 100 ms doubling to 2 s. The
 * first successful reconnection logs "redis up again".
 *
 * Sentinel discovery (redis_sentinels, redis_master_name): the master's
 * address is not configured but asked from the sentinels, in order (from
 * the one that answered last), each within redis_connect_timeout (SENTINEL
 * get-master-addr-by-name), when the first connection is made and again
 * after any error. A new connection to
 * the master must answer ROLE with "master": a demoted old master answers
 * "slave" and counts as a failure (down, backoff, ask again). A reply
 * READONLY on a pooled connection (the master was demoted under it) drops
 * that connection and retries the command once on the master the sentinels
 * name now. Each change of the master is logged once; pooled connections
 * to a previous master are closed (a generation number per address).
 */
#include "gl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#define LOG_ERR_ 3
#define LOG_WARN_ 4
#define LOG_NOTICE_ 5

#define POOL_MAX 64
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define RKEY_MAX (64 + GL_KEY_MAX)

/* The decision of greylist.c's pd_plugin_check, in Lua (see there for the rules). */
static const char script[] =
	"local now=tonumber(ARGV[1]) local delay=tonumber(ARGV[2])\n"
	"local rw=tonumber(ARGV[3]) local life=tonumber(ARGV[4])\n"
	"local aw=tonumber(ARGV[5]) local fresh=ARGV[6]=='1'\n"
	"local function get(k)\n"
	"  local v=redis.call('HMGET',k,'t','c','f','l','p')\n"
	"  if not v[1] then return nil end\n"
	"  return {t=v[1],c=tonumber(v[2]) or 0,f=tonumber(v[3]) or 0,l=tonumber(v[4]) or 0,"
	"p=tonumber(v[5]) or 0}\n"
	"end\n"
	"local function put(k,r,ttl)\n"
	"  redis.call('HSET',k,'t',r.t,'c',r.c,'f',r.f,'l',r.l,'p',r.p)\n"
	"  if ttl<1 then ttl=1 end\n"
	"  redis.call('EXPIRE',k,ttl)\n"
	"end\n"
	"local function expired(r)\n"
	"  if r.t=='T' then return now-r.f>rw end\n"
	"  if r.t=='P' or r.t=='C' then return now-r.l>life end\n"
	"  return false\n"
	"end\n"
	"local c=nil\n"
	"if aw>0 then\n"
	"  c=get(KEYS[2])\n"
	"  if c and c.t=='C' and c.c>=aw and not expired(c) then\n"
	"    if now-c.l>=3600 or fresh or c.p==0 then\n"
	"      c.l=now if c.p==0 then c.p=now end\n"
	"      if fresh and c.c<4294967295 then c.c=c.c+1 end\n"
	"      put(KEYS[2],c,life)\n"
	"    end\n"
	"    return {3,0,0}\n"
	"  end\n"
	"  if not c or c.t~='C' or expired(c) then c={t='C',c=0,f=now,l=now,p=0} end\n"
	"end\n"
	"local t=get(KEYS[1])\n"
	"if not t or (t.t~='T' and t.t~='P') or expired(t) or t.f>now+86400 then\n"
	"  t={t='T',c=0,f=now,l=now,p=0}\n"
	"  put(KEYS[1],t,rw+60)\n"
	"  return {0,delay,0}\n"
	"end\n"
	"if t.t=='T' and now-t.f<delay then\n"
	"  local rem=delay-(now-t.f) if rem>delay then rem=delay end\n"
	"  return {0,rem,0}\n"
	"end\n"
	"local passed=0 local delayed=0\n"
	"if t.t=='T' then t.t='P' t.p=now passed=1 delayed=now-t.f end\n"
	"if passed==1 or fresh or now-t.l>=3600 then\n"
	"  t.l=now if t.c<4294967295 then t.c=t.c+1 end\n"
	"  put(KEYS[1],t,life)\n"
	"end\n"
	"if aw>0 and fresh then\n"
	"  c.c=c.c+1 c.l=now\n"
	"  if c.c>=aw and c.p==0 then c.p=now end\n"
	"  put(KEYS[2],c,life)\n"
	"end\n"
	"return {1+passed,0,delayed}\n";

struct gl_store {
	gl_redis_conf rc;
	gl_logger log;
	pthread_mutex_t mu;
	redisContext *idle[POOL_MAX];
	int n_idle;
	int down;          /* the server is considered unreachable */
	int probing;       /* a thread is reconnecting */
	long failed;       /* requests failed during this outage */
	long backoff_ms;
	int64_t next_try;  /* monotonic ms: next reconnection attempt */
	char sha[48];      /* the script's SHA1 ("" until loaded once) */
	time_t err_at;     /* last logged command error (once a minute) */
	/* sentinel mode (rc.n_sentinels > 0) */
	int master_known;  /* master_host/port are current: connect there without asking */
	char master_host[256];
	int master_port;
	unsigned gen;      /* bumped when the master's address changes */
	unsigned idle_gen[POOL_MAX];
	int role_warned;   /* ROLE refused (ACL): logged once, then not checked */
	int sentinel_first; /* the sentinel that answered last: asked first next time */
};

#define SLOG(s, lvl, ...) ((s)->log.fn((s)->log.ctx, (lvl), __VA_ARGS__))

/* mono_ms - monotonic milliseconds */
static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* tv_ms - a timeval of MS milliseconds */
static struct timeval tv_ms(long ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	return tv;
}

/* server_name - "host:port" or the socket path, for messages (call with mu held in sentinel mode) */
static void server_name(const gl_store *s, char *out, size_t outsz)
{
	if (s->rc.n_sentinels && s->master_port)
		snprintf(out, outsz, "master %s at %s:%d", s->rc.master_name, s->master_host,
			 s->master_port);
	else if (s->rc.n_sentinels)
		snprintf(out, outsz, "master %s", s->rc.master_name);
	else if (s->rc.path[0])
		snprintf(out, outsz, "unix:%s", s->rc.path);
	else
		snprintf(out, outsz, "%s:%d", s->rc.host, s->rc.port);
}

/* mark_down - record a failure: log the first of an outage, drop idle connections, back off */
static void mark_down(gl_store *s, const char *why)
{
	redisContext *drop[POOL_MAX];
	int n;
	char name[400];

	pthread_mutex_lock(&s->mu);
	s->failed++;
	s->master_known = 0; /* sentinel mode: the next connection asks the sentinels again */
	if (!s->down) {
		s->down = 1;
		s->backoff_ms = BACKOFF_MIN_MS;
		server_name(s, name, sizeof(name));
		SLOG(s, LOG_ERR_, "redis down: %s: %.300s (requests fail until it is back)", name, why);
	} else if (s->backoff_ms < BACKOFF_MAX_MS) {
		s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
	}
	s->next_try = mono_ms() + s->backoff_ms;
	n = s->n_idle;
	memcpy(drop, s->idle, (size_t)n * sizeof(*drop));
	s->n_idle = 0;
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < n; i++)
		redisFree(drop[i]);
}

/* flush_idle - close every idle connection (they went stale together: a restarted server) */
static void flush_idle(gl_store *s)
{
	redisContext *drop[POOL_MAX];
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->n_idle;
	memcpy(drop, s->idle, (size_t)n * sizeof(*drop));
	s->n_idle = 0;
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < n; i++)
		redisFree(drop[i]);
}

/* cmd_error_due - may a (non-I/O) error reply be logged now? once a minute */
static int cmd_error_due(gl_store *s)
{
	time_t now = time(NULL);
	int due;

	pthread_mutex_lock(&s->mu);
	due = !s->err_at || now - s->err_at >= 60 || now < s->err_at;
	if (due)
		s->err_at = now;
	pthread_mutex_unlock(&s->mu);
	return due;
}

/* simple - run one command on C expecting no error reply; -1 with the reason in WHY */
static int simple(redisContext *c, char *why, size_t whysz, int argc, const char **argv,
		  const size_t *lens, char *out, size_t outsz)
{
	redisReply *r = redisCommandArgv(c, argc, argv, lens);

	if (!r) {
		snprintf(why, whysz, "%s", c->errstr[0] ? c->errstr : "no reply");
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(why, whysz, "%s: %.200s", argv[0], r->str);
		freeReplyObject(r);
		return -1;
	}
	if (out && r->type == REDIS_REPLY_STRING)
		snprintf(out, outsz, "%.*s", (int)r->len, r->str);
	freeReplyObject(r);
	return 0;
}

/* auth - AUTH [USER] PASSWORD on C (nothing when PASSWORD is empty); -1 with WHY */
static int auth(redisContext *c, const char *user, const char *password, char *why, size_t whysz)
{
	if (!password[0])
		return 0;
	if (user[0])
		return simple(c, why, whysz, 3, (const char *[]){"AUTH", user, password},
			      (size_t[]){4, strlen(user), strlen(password)}, NULL, 0);
	return simple(c, why, whysz, 2, (const char *[]){"AUTH", password},
		      (size_t[]){4, strlen(password)}, NULL, 0);
}

/* ask_sentinel - the master's address from one sentinel; 0, or -1 with WHY */
static int ask_sentinel(gl_store *s, const gl_sentinel *sn, char *host, size_t hostsz, int *port,
			char *why, size_t whysz)
{
	struct timeval ct = tv_ms(s->rc.connect_timeout_ms);
	redisContext *c = redisConnectWithTimeout(sn->host, sn->port, ct);
	redisReply *r = NULL;
	const char *av[3] = {"SENTINEL", "get-master-addr-by-name", s->rc.master_name};
	size_t al[3] = {8, 23, strlen(s->rc.master_name)};
	int ret = -1;
	long p;

	if (!c) {
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	if (c->err) {
		snprintf(why, whysz, "connect: %s", c->errstr);
		goto out;
	}
	if (redisSetTimeout(c, ct) != REDIS_OK) {
		snprintf(why, whysz, "cannot set the timeout");
		goto out;
	}
	if (auth(c, s->rc.sentinel_username, s->rc.sentinel_password, why, whysz) != 0)
		goto out;
	r = redisCommandArgv(c, 3, av, al);
	if (!r) {
		snprintf(why, whysz, "%s", c->errstr[0] ? c->errstr : "no reply");
		goto out;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(why, whysz, "SENTINEL: %.200s", r->str);
		goto out;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		snprintf(why, whysz, "does not know a master named \"%.127s\"", s->rc.master_name);
		goto out;
	}
	if (r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
	    !r->element[0]->len || r->element[0]->len >= hostsz) {
		snprintf(why, whysz, "unexpected reply to SENTINEL get-master-addr-by-name");
		goto out;
	}
	p = strtol(r->element[1]->str, NULL, 10);
	if (p < 1 || p > 65535) {
		snprintf(why, whysz, "unexpected port \"%.20s\" for the master", r->element[1]->str);
		goto out;
	}
	memcpy(host, r->element[0]->str, r->element[0]->len);
	host[r->element[0]->len] = 0;
	*port = (int)p;
	ret = 0;
out:
	if (r)
		freeReplyObject(r);
	redisFree(c);
	return ret;
}

/* discover - ask the sentinels in order (from the one that answered last) for the master;
 * record it (new generation and a log line when it changed); 0 with HOST/PORT/GEN, or -1 */
static int discover(gl_store *s, char *host, size_t hostsz, int *port, unsigned *gen, char *why,
		    size_t whysz)
{
	char one[300];
	int i, k = 0, first, changed;
	const gl_sentinel *sn = NULL;

	pthread_mutex_lock(&s->mu);
	first = s->sentinel_first;
	pthread_mutex_unlock(&s->mu);
	for (i = 0; i < s->rc.n_sentinels; i++) {
		k = (first + i) % s->rc.n_sentinels;
		sn = &s->rc.sentinels[k];
		if (ask_sentinel(s, sn, host, hostsz, port, one, sizeof(one)) == 0)
			break;
	}
	if (i == s->rc.n_sentinels) {
		snprintf(why, whysz, "no sentinel named the master (last, %s:%d: %s)", sn->host, sn->port,
			 one);
		return -1;
	}
	pthread_mutex_lock(&s->mu);
	changed = strcmp(s->master_host, host) != 0 || s->master_port != *port;
	if (changed) {
		snprintf(s->master_host, sizeof(s->master_host), "%s", host);
		s->master_port = *port;
		s->gen++;
	}
	s->master_known = 1;
	s->sentinel_first = k;
	*gen = s->gen;
	pthread_mutex_unlock(&s->mu);
	if (changed) {
		SLOG(s, LOG_NOTICE_, "redis master %s at %s:%d (from sentinel %s:%d)", s->rc.master_name,
		     host, *port, sn->host, sn->port);
		flush_idle(s);
	}
	return 0;
}

/* check_role - sentinel mode: C must be connected to a master (ROLE); 0, or -1 with WHY */
static int check_role(gl_store *s, redisContext *c, char *why, size_t whysz)
{
	redisReply *r = redisCommand(c, "ROLE");
	int ok;

	if (!r) {
		snprintf(why, whysz, "%s", c->errstr[0] ? c->errstr : "no reply");
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		/* an ACL without ROLE: READONLY replies still reveal a replica */
		pthread_mutex_lock(&s->mu);
		ok = !s->role_warned;
		s->role_warned = 1;
		pthread_mutex_unlock(&s->mu);
		if (ok)
			SLOG(s, LOG_WARN_, "redis ROLE refused (%.200s): the master's role is not "
			     "checked on connect", r->str);
		freeReplyObject(r);
		return 0;
	}
	ok = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	     r->element[0]->type == REDIS_REPLY_STRING && !strcmp(r->element[0]->str, "master");
	if (!ok)
		snprintf(why, whysz, "ROLE: a %.20s, not the master (a failover in progress?)",
			 r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
				 r->element[0]->type == REDIS_REPLY_STRING
			     ? r->element[0]->str
			     : "server of unknown role");
	freeReplyObject(r);
	return ok ? 0 : -1;
}

/* connect_new - a new connection (to the master the sentinels name, in sentinel mode): timeouts,
 * AUTH, SELECT, ROLE, SCRIPT LOAD; NULL with WHY; *GEN is the master's generation */
static redisContext *connect_new(gl_store *s, unsigned *gen, char *why, size_t whysz)
{
	struct timeval ct = tv_ms(s->rc.connect_timeout_ms), ot = tv_ms(s->rc.timeout_ms);
	redisContext *c;
	char db[24], sha[48] = "", host[256];
	int port = 0, known;

	*gen = 0;
	if (s->rc.n_sentinels) {
		pthread_mutex_lock(&s->mu);
		known = s->master_known;
		snprintf(host, sizeof(host), "%s", s->master_host);
		port = s->master_port;
		*gen = s->gen;
		pthread_mutex_unlock(&s->mu);
		if (!known && discover(s, host, sizeof(host), &port, gen, why, whysz) != 0)
			return NULL;
		c = redisConnectWithTimeout(host, port, ct);
	} else if (s->rc.path[0])
		c = redisConnectUnixWithTimeout(s->rc.path, ct);
	else
		c = redisConnectWithTimeout(s->rc.host, s->rc.port, ct);
	if (!c) {
		snprintf(why, whysz, "out of memory");
		return NULL;
	}
	if (c->err) {
		snprintf(why, whysz, "connect: %s", c->errstr);
		goto fail;
	}
	if (redisSetTimeout(c, ot) != REDIS_OK) {
		snprintf(why, whysz, "cannot set the timeout");
		goto fail;
	}
	if (auth(c, s->rc.username, s->rc.password, why, whysz) != 0)
		goto fail;
	if (s->rc.db) {
		snprintf(db, sizeof(db), "%ld", s->rc.db);
		if (simple(c, why, whysz, 2, (const char *[]){"SELECT", db}, (size_t[]){6, strlen(db)},
			   NULL, 0))
			goto fail;
	}
	if (s->rc.n_sentinels && check_role(s, c, why, whysz) != 0)
		goto fail;
	if (simple(c, why, whysz, 3, (const char *[]){"SCRIPT", "LOAD", script},
		   (size_t[]){6, 4, sizeof(script) - 1}, sha, sizeof(sha)))
		goto fail;
	pthread_mutex_lock(&s->mu);
	if (!s->sha[0])
		memcpy(s->sha, sha, sizeof(sha));
	pthread_mutex_unlock(&s->mu);
	return c;
fail:
	redisFree(c);
	return NULL;
}

/* conn_get - an idle connection (*REUSED = 1), or a new one; NULL at once while down and backing
 * off; *GEN is the connection's master generation (for conn_put) */
static redisContext *conn_get(gl_store *s, int *reused, unsigned *gen)
{
	redisContext *c = NULL;
	char why[600], name[400];
	long failed;
	int was_down;

	pthread_mutex_lock(&s->mu);
	*reused = s->n_idle > 0;
	if (s->n_idle) {
		c = s->idle[--s->n_idle];
		*gen = s->idle_gen[s->n_idle];
		pthread_mutex_unlock(&s->mu);
		return c;
	}
	if (s->down && (s->probing || mono_ms() < s->next_try)) {
		s->failed++;
		pthread_mutex_unlock(&s->mu);
		return NULL;
	}
	was_down = s->down;
	if (was_down)
		s->probing = 1;
	pthread_mutex_unlock(&s->mu);

	c = connect_new(s, gen, why, sizeof(why));
	if (!c) {
		if (was_down) {
			pthread_mutex_lock(&s->mu);
			s->probing = 0;
			pthread_mutex_unlock(&s->mu);
		}
		mark_down(s, why);
		return NULL;
	}
	pthread_mutex_lock(&s->mu);
	was_down = s->down;
	failed = s->failed;
	s->down = 0;
	s->probing = 0;
	s->failed = 0;
	server_name(s, name, sizeof(name));
	pthread_mutex_unlock(&s->mu);
	if (was_down)
		SLOG(s, LOG_NOTICE_, "redis up again: %s (%ld requests failed during the outage)", name,
		     failed);
	return c;
}

/* conn_put - give back a healthy connection (closed when the pool is full or the master changed) */
static void conn_put(gl_store *s, redisContext *c, unsigned gen)
{
	pthread_mutex_lock(&s->mu);
	if (s->n_idle < POOL_MAX && !s->down && gen == s->gen) {
		s->idle_gen[s->n_idle] = gen;
		s->idle[s->n_idle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	if (c)
		redisFree(c);
}

/* conn_fail - drop a connection after an I/O error and mark the server down */
static void conn_fail(gl_store *s, redisContext *c)
{
	char why[300];

	snprintf(why, sizeof(why), "%s", c->errstr[0] ? c->errstr : "connection lost");
	redisFree(c);
	mark_down(s, why);
}

/* demoted - sentinel mode: R says the server is no longer the master (READONLY, from a command or
 * from inside the script) */
static int demoted(const gl_store *s, const redisReply *r)
{
	return s->rc.n_sentinels && r->type == REDIS_REPLY_ERROR &&
	       (!strncmp(r->str, "READONLY", 8) || strstr(r->str, "-READONLY") ||
		strstr(r->str, "READONLY You can't write"));
}

/* forget_master - sentinel mode: the next connection asks the sentinels; drop the idle ones */
static void forget_master(gl_store *s)
{
	pthread_mutex_lock(&s->mu);
	s->master_known = 0;
	pthread_mutex_unlock(&s->mu);
	flush_idle(s);
}

/* call - one command on a pooled connection, once more on a new connection when a reused one
 * found the server gone (closed or reset: a restart) or, with sentinels, demoted to a replica;
 * the reply (maybe an error reply) or NULL */
static redisReply *call(gl_store *s, int argc, const char **argv, const size_t *lens)
{
	int reused, err;
	unsigned gen;
	redisContext *c = conn_get(s, &reused, &gen);
	redisReply *r;

	if (!c)
		return NULL;
	r = redisCommandArgv(c, argc, argv, lens);
	err = errno;
	if ((!r && reused &&
	     (c->err == REDIS_ERR_EOF || (c->err == REDIS_ERR_IO && (err == ECONNRESET || err == EPIPE)))) ||
	    (r && demoted(s, r))) {
		if (r)
			freeReplyObject(r);
		redisFree(c);
		if (s->rc.n_sentinels)
			forget_master(s);
		else
			flush_idle(s);
		c = conn_get(s, &reused, &gen);
		if (!c)
			return NULL;
		r = redisCommandArgv(c, argc, argv, lens);
	}
	if (!r) {
		conn_fail(s, c);
		return NULL;
	}
	if (demoted(s, r)) {
		freeReplyObject(r);
		redisFree(c);
		mark_down(s, "the master the sentinels named answers READONLY (a replica)");
		return NULL;
	}
	conn_put(s, c, gen);
	return r;
}

/* run - one command on a pooled connection; the reply (not an error reply) or NULL after logging */
static redisReply *run(gl_store *s, int argc, const char **argv, const size_t *lens)
{
	redisReply *r = call(s, argc, argv, lens);

	if (!r)
		return NULL;
	if (r->type == REDIS_REPLY_ERROR) {
		if (cmd_error_due(s))
			SLOG(s, LOG_ERR_, "redis %s: %.300s", argv[0], r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* rkey - prefix + KEY into OUT; its length */
static size_t rkey(const gl_store *s, const unsigned char *key, size_t klen, char *out)
{
	size_t pl = strlen(s->rc.prefix);

	if (klen > GL_KEY_MAX)
		klen = GL_KEY_MAX;
	memcpy(out, s->rc.prefix, pl);
	memcpy(out + pl, key, klen);
	return pl + klen;
}

/* gl_redis_open - a store for the server in RC; tries one connection now */
gl_store *gl_redis_open(const gl_redis_conf *rc, const gl_logger *log)
{
	gl_store *s = calloc(1, sizeof(*s));
	redisContext *c;
	int reused;
	unsigned gen;

	if (!s) {
		log->fn(log->ctx, LOG_ERR_, "out of memory");
		return NULL;
	}
	s->rc = *rc;
	s->log = *log;
	pthread_mutex_init(&s->mu, NULL);
	c = conn_get(s, &reused, &gen); /* a failure is logged as "redis down" and is not fatal */
	if (c)
		conn_put(s, c, gen);
	return s;
}

/* st_open - not used: gl_redis_open takes the settings */
static gl_store *st_open(const char *path, int flags, const gl_logger *log)
{
	(void)flags;
	log->fn(log->ctx, LOG_ERR_, "%s: the redis backend is opened with its settings", path);
	return NULL;
}

/* st_begin - no-op: the script makes the hot path atomic */
static int st_begin(gl_store *s)
{
	(void)s;
	return 0;
}

/* st_end - no-op */
static void st_end(gl_store *s)
{
	(void)s;
}

/* st_get - HMGET one record; 1 found, 0 not found, -1 error */
static int st_get(gl_store *s, const unsigned char *key, size_t klen, gl_rec *rec)
{
	char k[RKEY_MAX];
	size_t kl = rkey(s, key, klen, k);
	const char *av[7] = {"HMGET", k, "t", "c", "f", "l", "p"};
	size_t al[7] = {5, kl, 1, 1, 1, 1, 1};
	redisReply *r = run(s, 7, av, al);
	long long v[4] = {0};

	if (!r)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
		freeReplyObject(r);
		return -1;
	}
	if (r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len != 1) {
		freeReplyObject(r);
		return 0;
	}
	for (int i = 0; i < 4; i++)
		if (r->element[i + 1]->type == REDIS_REPLY_STRING)
			v[i] = strtoll(r->element[i + 1]->str, NULL, 10);
	*rec = (gl_rec){.type = r->element[0]->str[0], .count = (uint32_t)v[0], .first_seen = v[1],
			.last_seen = v[2], .passed_at = v[3]};
	freeReplyObject(r);
	return 1;
}

/* ttl_of - seconds left for REC at time NOW (at least 1) */
static long ttl_of(const gl_store *s, const gl_rec *rec, int64_t now)
{
	long t = rec->type == GL_T_PENDING ? (long)(rec->first_seen + s->rc.retry_window + 60 - now)
					   : (long)(rec->last_seen + s->rc.lifetime - now);

	return t < 1 ? 1 : t;
}

/* st_put - HSET the record and its TTL (MULTI/EXEC: one round trip); 0 or -1 */
static int st_put(gl_store *s, const unsigned char *key, size_t klen, const gl_rec *rec)
{
	char k[RKEY_MAX], t[2] = {(char)rec->type, 0}, n[4][24], ttl[24];
	size_t kl = rkey(s, key, klen, k);
	int reused;
	unsigned gen;
	redisContext *c = conn_get(s, &reused, &gen);
	redisReply *r;
	int ok = 1;

	if (!c)
		return -1;
	snprintf(n[0], sizeof(n[0]), "%lu", (unsigned long)rec->count);
	snprintf(n[1], sizeof(n[1]), "%lld", (long long)rec->first_seen);
	snprintf(n[2], sizeof(n[2]), "%lld", (long long)rec->last_seen);
	snprintf(n[3], sizeof(n[3]), "%lld", (long long)rec->passed_at);
	snprintf(ttl, sizeof(ttl), "%ld", ttl_of(s, rec, (int64_t)time(NULL)));
	redisAppendCommand(c, "MULTI");
	redisAppendCommand(c, "HSET %b t %s c %s f %s l %s p %s", k, kl, t, n[0], n[1], n[2], n[3]);
	redisAppendCommand(c, "EXPIRE %b %s", k, kl, ttl);
	redisAppendCommand(c, "EXEC");
	for (int i = 0; i < 4; i++) {
		if (redisGetReply(c, (void **)&r) != REDIS_OK) {
			conn_fail(s, c);
			return -1;
		}
		if (r->type == REDIS_REPLY_ERROR || (i == 3 && r->type != REDIS_REPLY_ARRAY))
			ok = 0;
		freeReplyObject(r);
	}
	conn_put(s, c, gen);
	return ok ? 0 : -1;
}

/* st_del - DEL one record; 0 or -1 */
static int st_del(gl_store *s, const unsigned char *key, size_t klen)
{
	char k[RKEY_MAX];
	size_t kl = rkey(s, key, klen, k);
	redisReply *r = run(s, 2, (const char *[]){"DEL", k}, (size_t[]){3, kl});

	if (!r)
		return -1;
	freeReplyObject(r);
	return 0;
}

/* glob_escape - PREFIX with glob characters escaped, then "*" */
static void glob_escape(const char *prefix, char *out, size_t outsz)
{
	size_t n = 0;

	for (const char *p = prefix; *p && n + 3 < outsz; p++) {
		if (strchr("*?[]\\", *p))
			out[n++] = '\\';
		out[n++] = *p;
	}
	out[n++] = '*';
	out[n] = 0;
}

/* st_iterate - SCAN the prefix in batches, HMGET each record, delete on request */
static long st_iterate(gl_store *s, size_t batch, gl_iter_fn *fn, void *arg, long *deleted)
{
	char pat[160], cur[32] = "0", cnt[24];
	size_t pl = strlen(s->rc.prefix);
	long visited = 0, dummy;
	int stop = 0;

	if (!deleted)
		deleted = &dummy;
	*deleted = 0;
	glob_escape(s->rc.prefix, pat, sizeof(pat));
	snprintf(cnt, sizeof(cnt), "%zu", batch ? batch : 100);
	do {
		const char *av[6] = {"SCAN", cur, "MATCH", pat, "COUNT", cnt};
		size_t al[6] = {4, strlen(cur), 5, strlen(pat), 5, strlen(cnt)};
		redisReply *r = run(s, 6, av, al), *keys;

		if (!r)
			return -1;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return -1;
		}
		snprintf(cur, sizeof(cur), "%s", r->element[0]->str);
		keys = r->element[1];
		for (size_t i = 0; i < keys->elements && !stop; i++) {
			redisReply *k = keys->element[i];
			gl_rec rec;
			int got, v;

			if (k->type != REDIS_REPLY_STRING || k->len <= pl || k->len - pl > GL_KEY_MAX)
				continue;
			got = st_get(s, (unsigned char *)k->str + pl, k->len - pl, &rec);
			if (got < 0) {
				freeReplyObject(r);
				return -1;
			}
			if (got == 0)
				continue; /* expired meanwhile, or not a record of ours */
			visited++;
			v = fn(arg, (unsigned char *)k->str + pl, k->len - pl, &rec);
			if (v < 0)
				stop = 1;
			else if (v == 1 && st_del(s, (unsigned char *)k->str + pl, k->len - pl) == 0)
				(*deleted)++;
		}
		freeReplyObject(r);
	} while (!stop && strcmp(cur, "0") != 0);
	return visited;
}

/* st_sync - nothing to do: Redis persists by its own configuration */
static int st_sync(gl_store *s)
{
	(void)s;
	return 0;
}

/* st_compact - nothing to do */
static int st_compact(gl_store *s)
{
	(void)s;
	return 0;
}

/* st_close - close every pooled connection and free the store */
static void st_close(gl_store *s)
{
	for (int i = 0; i < s->n_idle; i++)
		redisFree(s->idle[i]);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* gl_redis_verdict - the script's three integers as a verdict of update(); -1 if not one it can give */
int gl_redis_verdict(const gl_upd *in, long long verdict, long long remaining, long long delayed,
		     gl_upd_res *res)
{
	/* the script answers {0, 1..delay, 0}, {1, 0, 0}, {2, 0, 0..retry_window} or {3, 0, 0};
	 * anything else (another script under our SHA, a proxy, a bug) must not pass mail */
	switch (verdict) {
	case GL_UPD_DEFER:
		if (remaining < 0 || remaining > in->delay || delayed != 0)
			return -1;
		break;
	case GL_UPD_PASSED_NOW:
		if (remaining != 0 || delayed < 0 || delayed > in->retry_window)
			return -1;
		break;
	case GL_UPD_PASS:
	case GL_UPD_CLIENT:
		if (remaining != 0 || delayed != 0)
			return -1;
		break;
	default:
		return -1;
	}
	res->verdict = (int)verdict;
	res->remaining = (long)remaining;
	res->delayed = (long)delayed;
	return 0;
}

/* st_update - one request's decision: EVALSHA of the script (EVAL after NOSCRIPT) */
static int st_update(gl_store *s, const gl_upd *in, gl_upd_res *res)
{
	char tk[RKEY_MAX], ck[RKEY_MAX], a[6][24], sha[48];
	size_t tl = rkey(s, in->tkey, in->tkl, tk), cl = in->ckl ? rkey(s, in->ckey, in->ckl, ck) : 0;
	const char *av[11];
	size_t al[11];
	int nk = in->ckl ? 2 : 1, ac = 0;
	redisReply *r;

	pthread_mutex_lock(&s->mu);
	memcpy(sha, s->sha, sizeof(sha));
	pthread_mutex_unlock(&s->mu);
	snprintf(a[0], sizeof(a[0]), "%lld", (long long)in->now);
	snprintf(a[1], sizeof(a[1]), "%ld", in->delay);
	snprintf(a[2], sizeof(a[2]), "%ld", in->retry_window);
	snprintf(a[3], sizeof(a[3]), "%ld", in->lifetime);
	snprintf(a[4], sizeof(a[4]), "%ld", in->ckl ? in->auto_whitelist : 0L);
	snprintf(a[5], sizeof(a[5]), "%d", in->fresh ? 1 : 0);
	av[ac] = "EVALSHA", al[ac++] = 7;
	av[ac] = sha, al[ac++] = strlen(sha);
	av[ac] = nk == 2 ? "2" : "1", al[ac++] = 1;
	av[ac] = tk, al[ac++] = tl;
	if (nk == 2)
		av[ac] = ck, al[ac++] = cl;
	for (int i = 0; i < 6; i++)
		av[ac] = a[i], al[ac++] = strlen(a[i]);
	r = call(s, ac, av, al);
	if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) {
		freeReplyObject(r);
		av[0] = "EVAL", al[0] = 4;
		av[1] = script, al[1] = sizeof(script) - 1;
		r = call(s, ac, av, al);
	}
	if (!r)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER ||
	    r->element[2]->type != REDIS_REPLY_INTEGER) {
		if (cmd_error_due(s))
			SLOG(s, LOG_ERR_, "redis: unexpected reply to the greylist script: %.300s",
			     r->type == REDIS_REPLY_ERROR ? r->str : "(not three integers)");
		freeReplyObject(r);
		return -1;
	}
	if (gl_redis_verdict(in, r->element[0]->integer, r->element[1]->integer,
			     r->element[2]->integer, res) != 0) {
		if (cmd_error_due(s))
			SLOG(s, LOG_ERR_, "redis: unexpected reply to the greylist script: {%lld, %lld, "
			     "%lld} is not a verdict (the request gets on_error)",
			     (long long)r->element[0]->integer, (long long)r->element[1]->integer,
			     (long long)r->element[2]->integer);
		freeReplyObject(r);
		return -1;
	}
	freeReplyObject(r);
	return 0;
}

const gl_store_ops gl_store_redis = {
	.name = "redis",
	.open = st_open,
	.begin = st_begin,
	.end = st_end,
	.get = st_get,
	.put = st_put,
	.del = st_del,
	.iterate = st_iterate,
	.sync = st_sync,
	.compact = st_compact,
	.close = st_close,
	.update = st_update,
	.self_expiring = 1,
};
