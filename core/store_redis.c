/* store_redis.c - the state service on Redis (hiredis): one store shared by many MX hosts */
/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * (The connection machinery is the greylist plugin's store_redis.c,
 * generalised: the plugin moves onto this library.)
 *
 * Keys are PREFIX + "NS:K:KEY" (prefix "policyd:" by default):
 *   counter  a hash: w (the window), h (the latest bucket), and one field per
 *            bucket, named by its number (floor(T * 16 / window)), holding
 *            its count; the Lua script below keeps the same ring as the GDBM
 *            backend (buckets h-16 .. h)
 *   value    a string: the expiry time in decimal, ':', then the bytes
 *   members  a sorted set: member -> expiry time
 * Every decision is taken against the caller's NOW: expiry times are in
 * the data. Each key also has a Redis TTL, PD_STORE_GC_SLACK (an hour)
 * past the end its data gives: garbage collection only, never an answer.
 *
 * Atomicity: count and members are one EVALSHA each (a script runs
 * atomically; NOSCRIPT after a restart falls back to EVAL); set, get and
 * del are one command each; update is WATCH, GET, the caller's function,
 * then MULTI/SET EX/EXEC (one round trip), tried again (up to UPDATE_TRIES
 * times, with a short random pause) when EXEC reports that another client
 * changed the key.
 *
 * Connections: a small pool, one connection per concurrently working
 * thread, reused. Every command is bounded by the command timeout. Any I/O
 * error or timeout drops the connection and marks the server down: logged
 * once ("redis down: ..."); while down, operations fail at once and one
 * thread at a time tries to reconnect, with a backoff from 100 ms doubling
 * to 2 s. The first successful reconnection logs "redis up again".
 *
 * Sentinel discovery (sentinels, master_name): the master's address is
 * asked from the sentinels, in order (from the one that answered last),
 * each within the connect timeout (SENTINEL get-master-addr-by-name), when
 * the first connection is made and again after any error. A new connection
 * to the master must answer ROLE with "master": a demoted old master
 * answers "slave" and counts as a failure (down, backoff, ask again). A
 * reply READONLY on a pooled connection (the master was demoted under it)
 * drops that connection and retries the command once on the master the
 * sentinels name now. Each change of the master is logged once; pooled
 * connections to a previous master are closed (a generation number).
 */
#include "store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#define LOG_ERR_ PD_STORE_LOG_ERR
#define LOG_WARN_ PD_STORE_LOG_WARNING
#define LOG_NOTICE_ PD_STORE_LOG_NOTICE

#define POOL_MAX 64
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define UPDATE_TRIES 5
#define RKEY_MAX (PD_STORE_PREFIX_MAX + PD_STORE_FKEY_MAX + 1)

/* count: KEYS[1]; ARGV window, bucket now, amount, now, slack. The rules of u_count() in
 * store_gdbm.c: the ring of buckets h-16 .. h; another window starts over; a read writes nothing. */
static const char count_lua[] =
	"local k=KEYS[1] local W=ARGV[1] local cur=tonumber(ARGV[2]) local amt=tonumber(ARGV[3])\n"
	"local now=tonumber(ARGV[4]) local slack=tonumber(ARGV[5])\n"
	"local v=redis.call('HGETALL',k)\n"
	"local w,h=nil,nil local b={}\n"
	"for i=1,#v,2 do\n"
	"  local f=v[i]\n"
	"  if f=='w' then w=v[i+1] elseif f=='h' then h=tonumber(v[i+1])\n"
	"  else b[#b+1]={tonumber(f),tonumber(v[i+1]) or 0,f} end\n"
	"end\n"
	"if w~=W then h=nil end\n"
	"local t=0\n"
	"if amt==0 then\n"
	"  if h==nil then return 0 end\n"
	"  local lo=math.max(cur,h)-16\n"
	"  for _,e in ipairs(b) do if e[1] and e[1]>=lo then t=t+e[2] end end\n"
	"  return t\n"
	"end\n"
	"if h==nil then\n"
	"  if #v>0 then redis.call('DEL',k) end\n"
	"  b={} h=cur\n"
	"end\n"
	"if cur>h then\n"
	"  for _,e in ipairs(b) do\n"
	"    if e[1]==nil or e[1]<cur-16 then redis.call('HDEL',k,e[3]) e[2]=0 end\n"
	"  end\n"
	"  h=cur\n"
	"end\n"
	"local slot=cur if slot<h-16 then slot=h-16 end\n"
	"local f=string.format('%d',slot)\n"
	"local nb=redis.call('HINCRBY',k,f,ARGV[3])\n"
	"for _,e in ipairs(b) do if e[3]~=f then t=t+e[2] end end\n"
	"t=t+nb\n"
	"redis.call('HSET',k,'w',W,'h',string.format('%d',h))\n"
	"redis.call('EXPIRE',k,math.ceil((h+17)*tonumber(W)/16)-now+slack)\n"
	"return t\n";

/* members: KEYS[1]; ARGV now, ttl, most members, slack[, member]. Without a member: count the
 * live ones (expiry > now), writing nothing. With one: drop the dead, add or refresh it, drop
 * the lowest (the first to expire) beyond the bound. */
static const char members_lua[] =
	"local k=KEYS[1] local now=tonumber(ARGV[1])\n"
	"if #ARGV<5 then return redis.call('ZCOUNT',k,'('..ARGV[1],'+inf') end\n"
	"redis.call('ZREMRANGEBYSCORE',k,'-inf',ARGV[1])\n"
	"redis.call('ZADD',k,string.format('%d',now+tonumber(ARGV[2])),ARGV[5])\n"
	"local n=redis.call('ZCARD',k) local max=tonumber(ARGV[3])\n"
	"if n>max then redis.call('ZREMRANGEBYRANK',k,0,n-max-1) n=max end\n"
	"local top=redis.call('ZRANGE',k,-1,-1,'WITHSCORES')\n"
	"redis.call('EXPIRE',k,math.floor(tonumber(top[2])-now)+tonumber(ARGV[4]))\n"
	"return n\n";

enum { S_COUNT, S_MEMBERS, NSCRIPTS };
static const char *const scripts[NSCRIPTS] = {count_lua, members_lua};
static const size_t script_len[NSCRIPTS] = {sizeof(count_lua) - 1, sizeof(members_lua) - 1};

/* The pool and the server's state. */
typedef struct rd {
	pd_store *st;
	pd_store_redis_conf rc;
	pthread_mutex_t mu;
	redisContext *idle[POOL_MAX];
	unsigned idle_gen[POOL_MAX];
	int n_idle;
	int down;          /* the server is considered unreachable */
	int probing;       /* a thread is reconnecting */
	long failed;       /* operations failed during this outage */
	long backoff_ms;
	int64_t next_try;  /* monotonic ms: next reconnection attempt */
	char sha[NSCRIPTS][48]; /* the scripts' SHA1s ("" until loaded once) */
	time_t err_at;     /* last logged command error (once a minute) */
	/* sentinel mode (rc.n_sentinels > 0) */
	int master_known;  /* master_host/port are current: connect there without asking */
	char master_host[256];
	int master_port;
	unsigned gen;      /* bumped when the master's address changes */
	int role_warned;   /* ROLE refused (ACL): logged once, then not checked */
	int sentinel_first; /* the sentinel that answered last: asked first next time */
	unsigned seed;     /* rand_r: pauses between update tries */
} rd;

/* One connection taken from the pool for a sequence of commands. */
typedef struct sess {
	redisContext *c;
	unsigned gen;
	int reused;
} sess;

#define SLOG(r, lvl, ...) pd_store_logf((r)->st, (lvl), __VA_ARGS__)

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

/* server_name - "host:port" or the socket path, for messages (mu held in sentinel mode) */
static void server_name(const rd *r, char *out, size_t outsz)
{
	if (r->rc.n_sentinels && r->master_port)
		snprintf(out, outsz, "master %s at %s:%d", r->rc.master_name, r->master_host,
			 r->master_port);
	else if (r->rc.n_sentinels)
		snprintf(out, outsz, "master %s", r->rc.master_name);
	else if (r->rc.server.path[0])
		snprintf(out, outsz, "unix:%s", r->rc.server.path);
	else
		snprintf(out, outsz, "%s:%d", r->rc.server.host, r->rc.server.port);
}

/* take_idle - empty the pool into DROP; the count (mu held) */
static int take_idle(rd *r, redisContext **drop)
{
	int n = r->n_idle;

	memcpy(drop, r->idle, (size_t)n * sizeof(*drop));
	r->n_idle = 0;
	return n;
}

/* mark_down - record a failure: log the first of an outage, drop idle connections, back off */
static void mark_down(rd *r, const char *why)
{
	redisContext *drop[POOL_MAX];
	int n;
	char name[400];

	pthread_mutex_lock(&r->mu);
	r->failed++;
	r->master_known = 0; /* sentinel mode: the next connection asks the sentinels again */
	if (!r->down) {
		r->down = 1;
		r->backoff_ms = BACKOFF_MIN_MS;
		server_name(r, name, sizeof(name));
		SLOG(r, LOG_ERR_, "store: redis down: %s: %.300s (operations fail until it is back)", name,
		     why);
	} else if (r->backoff_ms < BACKOFF_MAX_MS) {
		r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
	}
	r->next_try = mono_ms() + r->backoff_ms;
	n = take_idle(r, drop);
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < n; i++)
		redisFree(drop[i]);
}

/* flush_idle - close every idle connection (they went stale together: a restarted server) */
static void flush_idle(rd *r)
{
	redisContext *drop[POOL_MAX];
	int n;

	pthread_mutex_lock(&r->mu);
	n = take_idle(r, drop);
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < n; i++)
		redisFree(drop[i]);
}

/* cmd_error_due - may a (non-I/O) error reply be logged now? once a minute */
static int cmd_error_due(rd *r)
{
	time_t now = time(NULL);
	int due;

	pthread_mutex_lock(&r->mu);
	due = !r->err_at || now - r->err_at >= 60 || now < r->err_at;
	if (due)
		r->err_at = now;
	pthread_mutex_unlock(&r->mu);
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
static int ask_sentinel(rd *r, const pd_store_addr *sn, char *host, size_t hostsz, int *port,
			char *why, size_t whysz)
{
	struct timeval ct = tv_ms(r->rc.connect_timeout_ms);
	redisContext *c = redisConnectWithTimeout(sn->host, sn->port, ct);
	redisReply *rep = NULL;
	const char *av[3] = {"SENTINEL", "get-master-addr-by-name", r->rc.master_name};
	size_t al[3] = {8, 23, strlen(r->rc.master_name)};
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
	if (auth(c, r->rc.sentinel_username, r->rc.sentinel_password, why, whysz) != 0)
		goto out;
	rep = redisCommandArgv(c, 3, av, al);
	if (!rep) {
		snprintf(why, whysz, "%s", c->errstr[0] ? c->errstr : "no reply");
		goto out;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(why, whysz, "SENTINEL: %.200s", rep->str);
		goto out;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
		snprintf(why, whysz, "does not know a master named \"%.127s\"", r->rc.master_name);
		goto out;
	}
	if (rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_STRING ||
	    !rep->element[0]->len || rep->element[0]->len >= hostsz) {
		snprintf(why, whysz, "unexpected reply to SENTINEL get-master-addr-by-name");
		goto out;
	}
	p = strtol(rep->element[1]->str, NULL, 10);
	if (p < 1 || p > 65535) {
		snprintf(why, whysz, "unexpected port \"%.20s\" for the master", rep->element[1]->str);
		goto out;
	}
	memcpy(host, rep->element[0]->str, rep->element[0]->len);
	host[rep->element[0]->len] = 0;
	*port = (int)p;
	ret = 0;
out:
	if (rep)
		freeReplyObject(rep);
	redisFree(c);
	return ret;
}

/* discover - ask the sentinels in order (from the one that answered last) for the master;
 * record it (new generation and a log line when it changed); 0 with HOST/PORT/GEN, or -1 */
static int discover(rd *r, char *host, size_t hostsz, int *port, unsigned *gen, char *why,
		    size_t whysz)
{
	char one[300] = "";
	int i, k = 0, first, changed;
	const pd_store_addr *sn = NULL;

	pthread_mutex_lock(&r->mu);
	first = r->sentinel_first;
	pthread_mutex_unlock(&r->mu);
	for (i = 0; i < r->rc.n_sentinels; i++) {
		k = (first + i) % r->rc.n_sentinels;
		sn = &r->rc.sentinels[k];
		if (ask_sentinel(r, sn, host, hostsz, port, one, sizeof(one)) == 0)
			break;
	}
	if (i == r->rc.n_sentinels) {
		snprintf(why, whysz, "no sentinel named the master (last, %s:%d: %s)", sn->host, sn->port,
			 one);
		return -1;
	}
	pthread_mutex_lock(&r->mu);
	changed = strcmp(r->master_host, host) != 0 || r->master_port != *port;
	if (changed) {
		snprintf(r->master_host, sizeof(r->master_host), "%s", host);
		r->master_port = *port;
		r->gen++;
	}
	r->master_known = 1;
	r->sentinel_first = k;
	*gen = r->gen;
	pthread_mutex_unlock(&r->mu);
	if (changed) {
		SLOG(r, LOG_NOTICE_, "store: redis master %s at %s:%d (from sentinel %s:%d)",
		     r->rc.master_name, host, *port, sn->host, sn->port);
		flush_idle(r);
	}
	return 0;
}

/* check_role - sentinel mode: C must be connected to a master (ROLE); 0, or -1 with WHY */
static int check_role(rd *r, redisContext *c, char *why, size_t whysz)
{
	redisReply *rep = redisCommand(c, "ROLE");
	int ok;

	if (!rep) {
		snprintf(why, whysz, "%s", c->errstr[0] ? c->errstr : "no reply");
		return -1;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		/* an ACL without ROLE: READONLY replies still reveal a replica */
		pthread_mutex_lock(&r->mu);
		ok = !r->role_warned;
		r->role_warned = 1;
		pthread_mutex_unlock(&r->mu);
		if (ok)
			SLOG(r, LOG_WARN_, "store: redis ROLE refused (%.200s): the master's role is not "
			     "checked on connect", rep->str);
		freeReplyObject(rep);
		return 0;
	}
	ok = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
	     rep->element[0]->type == REDIS_REPLY_STRING && !strcmp(rep->element[0]->str, "master");
	if (!ok)
		snprintf(why, whysz, "ROLE: a %.20s, not the master (a failover in progress?)",
			 rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
				 rep->element[0]->type == REDIS_REPLY_STRING
			     ? rep->element[0]->str
			     : "server of unknown role");
	freeReplyObject(rep);
	return ok ? 0 : -1;
}

/* connect_new - a new connection (to the master the sentinels name, in sentinel mode): timeouts,
 * AUTH, SELECT, ROLE, SCRIPT LOAD; NULL with WHY; *GEN is the master's generation */
static redisContext *connect_new(rd *r, unsigned *gen, char *why, size_t whysz)
{
	struct timeval ct = tv_ms(r->rc.connect_timeout_ms), ot = tv_ms(r->rc.timeout_ms);
	redisContext *c;
	char db[24], sha[NSCRIPTS][48], host[256];
	int port = 0, known;

	*gen = 0;
	if (r->rc.n_sentinels) {
		pthread_mutex_lock(&r->mu);
		known = r->master_known;
		snprintf(host, sizeof(host), "%s", r->master_host);
		port = r->master_port;
		*gen = r->gen;
		pthread_mutex_unlock(&r->mu);
		if (!known && discover(r, host, sizeof(host), &port, gen, why, whysz) != 0)
			return NULL;
		c = redisConnectWithTimeout(host, port, ct);
	} else if (r->rc.server.path[0])
		c = redisConnectUnixWithTimeout(r->rc.server.path, ct);
	else
		c = redisConnectWithTimeout(r->rc.server.host, r->rc.server.port, ct);
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
	if (auth(c, r->rc.username, r->rc.password, why, whysz) != 0)
		goto fail;
	if (r->rc.db) {
		snprintf(db, sizeof(db), "%ld", r->rc.db);
		if (simple(c, why, whysz, 2, (const char *[]){"SELECT", db}, (size_t[]){6, strlen(db)},
			   NULL, 0))
			goto fail;
	}
	if (r->rc.n_sentinels && check_role(r, c, why, whysz) != 0)
		goto fail;
	for (int i = 0; i < NSCRIPTS; i++)
		if (simple(c, why, whysz, 3, (const char *[]){"SCRIPT", "LOAD", scripts[i]},
			   (size_t[]){6, 4, script_len[i]}, sha[i], sizeof(sha[i])))
			goto fail;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < NSCRIPTS; i++)
		if (!r->sha[i][0])
			memcpy(r->sha[i], sha[i], sizeof(sha[i]));
	pthread_mutex_unlock(&r->mu);
	return c;
fail:
	redisFree(c);
	return NULL;
}

/* conn_get - an idle connection (*REUSED = 1), or a new one; NULL at once while down and backing
 * off; *GEN is the connection's master generation (for conn_put) */
static redisContext *conn_get(rd *r, int *reused, unsigned *gen)
{
	redisContext *c = NULL;
	char why[600], name[400];
	long failed;
	int was_down;

	pthread_mutex_lock(&r->mu);
	*reused = r->n_idle > 0;
	if (r->n_idle) {
		c = r->idle[--r->n_idle];
		*gen = r->idle_gen[r->n_idle];
		pthread_mutex_unlock(&r->mu);
		return c;
	}
	if (r->down && (r->probing || mono_ms() < r->next_try)) {
		r->failed++;
		pthread_mutex_unlock(&r->mu);
		return NULL;
	}
	was_down = r->down;
	if (was_down)
		r->probing = 1;
	pthread_mutex_unlock(&r->mu);

	c = connect_new(r, gen, why, sizeof(why));
	if (!c) {
		if (was_down) {
			pthread_mutex_lock(&r->mu);
			r->probing = 0;
			pthread_mutex_unlock(&r->mu);
		}
		mark_down(r, why);
		return NULL;
	}
	pthread_mutex_lock(&r->mu);
	was_down = r->down;
	failed = r->failed;
	r->down = 0;
	r->probing = 0;
	r->failed = 0;
	server_name(r, name, sizeof(name));
	pthread_mutex_unlock(&r->mu);
	if (was_down)
		SLOG(r, LOG_NOTICE_, "store: redis up again: %s (%ld operations failed during the outage)",
		     name, failed);
	return c;
}

/* conn_put - give back a healthy connection (closed when the pool is full or the master changed) */
static void conn_put(rd *r, redisContext *c, unsigned gen)
{
	pthread_mutex_lock(&r->mu);
	if (r->n_idle < POOL_MAX && !r->down && gen == r->gen) {
		r->idle_gen[r->n_idle] = gen;
		r->idle[r->n_idle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&r->mu);
	if (c)
		redisFree(c);
}

/* conn_fail - drop a connection after an I/O error and mark the server down */
static void conn_fail(rd *r, redisContext *c)
{
	char why[300];

	snprintf(why, sizeof(why), "%s", c->errstr[0] ? c->errstr : "connection lost");
	redisFree(c);
	mark_down(r, why);
}

/* demoted - sentinel mode: REP says the server is no longer the master (READONLY, from a command
 * or from inside a script) */
static int demoted(const rd *r, const redisReply *rep)
{
	return r->rc.n_sentinels && rep->type == REDIS_REPLY_ERROR &&
	       (!strncmp(rep->str, "READONLY", 8) || strstr(rep->str, "-READONLY") ||
		strstr(rep->str, "READONLY You can't write"));
}

/* forget_master - sentinel mode: the next connection asks the sentinels; drop the idle ones */
static void forget_master(rd *r)
{
	pthread_mutex_lock(&r->mu);
	r->master_known = 0;
	pthread_mutex_unlock(&r->mu);
	flush_idle(r);
}

/* sess_open - a connection for a sequence of commands; 0 or -1 (down) */
static int sess_open(rd *r, sess *ss)
{
	ss->c = conn_get(r, &ss->reused, &ss->gen);
	return ss->c ? 0 : -1;
}

/* sess_close - give the session's connection back (if it still has one) */
static void sess_close(rd *r, sess *ss)
{
	if (ss->c)
		conn_put(r, ss->c, ss->gen);
	ss->c = NULL;
}

/* sess_cmd - one command in the session. FIRST: the session's first command, sent again on a
 * new connection when a reused one found the server gone (closed or reset: a restart) or, with
 * sentinels, demoted. The reply (maybe an error reply), or NULL with the connection dropped and
 * the server marked down. */
static redisReply *sess_cmd(rd *r, sess *ss, int first, int argc, const char **argv,
			    const size_t *lens)
{
	redisReply *rep = redisCommandArgv(ss->c, argc, argv, lens);
	int err = errno;

	if (first && ((!rep && ss->reused &&
		       (ss->c->err == REDIS_ERR_EOF ||
			(ss->c->err == REDIS_ERR_IO && (err == ECONNRESET || err == EPIPE)))) ||
		      (rep && demoted(r, rep)))) {
		if (rep)
			freeReplyObject(rep);
		redisFree(ss->c);
		ss->c = NULL;
		if (r->rc.n_sentinels)
			forget_master(r);
		else
			flush_idle(r);
		if (sess_open(r, ss) != 0)
			return NULL;
		rep = redisCommandArgv(ss->c, argc, argv, lens);
	}
	if (!rep) {
		conn_fail(r, ss->c);
		ss->c = NULL;
		return NULL;
	}
	if (demoted(r, rep)) {
		freeReplyObject(rep);
		redisFree(ss->c);
		ss->c = NULL;
		mark_down(r, "the master the sentinels named answers READONLY (a replica)");
		return NULL;
	}
	return rep;
}

/* call - one command on a pooled connection: the reply (maybe an error reply) or NULL */
static redisReply *call(rd *r, int argc, const char **argv, const size_t *lens)
{
	sess ss;
	redisReply *rep;

	if (sess_open(r, &ss) != 0)
		return NULL;
	rep = sess_cmd(r, &ss, 1, argc, argv, lens);
	sess_close(r, &ss);
	return rep;
}

/* cmd_error - log an unexpected reply to WHAT (once a minute) */
static void cmd_error(rd *r, const char *what, const redisReply *rep)
{
	if (cmd_error_due(r))
		SLOG(r, LOG_ERR_, "store: redis %s: %.300s", what,
		     rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
}

/* run - one command; the reply (not an error reply) or NULL after logging */
static redisReply *run(rd *r, int argc, const char **argv, const size_t *lens)
{
	redisReply *rep = call(r, argc, argv, lens);

	if (!rep)
		return NULL;
	if (rep->type == REDIS_REPLY_ERROR) {
		cmd_error(r, argv[0], rep);
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
}

/* script - EVALSHA of script I (EVAL after NOSCRIPT) with key K and ARGC arguments; an integer
 * reply into *OUT: 0, or -1 after logging */
static int script(rd *r, int i, const char *k, size_t kl, int argc, const char **args,
		  long long *out)
{
	const char *av[12];
	size_t al[12];
	char sha[48];
	redisReply *rep;
	int ac = 0;

	pthread_mutex_lock(&r->mu);
	memcpy(sha, r->sha[i], sizeof(sha));
	pthread_mutex_unlock(&r->mu);
	av[ac] = "EVALSHA", al[ac++] = 7;
	av[ac] = sha, al[ac++] = strlen(sha);
	av[ac] = "1", al[ac++] = 1;
	av[ac] = k, al[ac++] = kl;
	for (int j = 0; j < argc; j++)
		av[ac] = args[j], al[ac++] = strlen(args[j]);
	rep = call(r, ac, av, al);
	if (rep && rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "NOSCRIPT", 8)) {
		freeReplyObject(rep);
		av[0] = "EVAL", al[0] = 4;
		av[1] = scripts[i], al[1] = script_len[i];
		rep = call(r, ac, av, al);
	}
	if (!rep)
		return -1;
	if (rep->type != REDIS_REPLY_INTEGER) {
		cmd_error(r, i == S_COUNT ? "counter script" : "members script", rep);
		freeReplyObject(rep);
		return -1;
	}
	*out = rep->integer;
	freeReplyObject(rep);
	return 0;
}

/* rkey - prefix + FK into OUT (RKEY_MAX); its length */
static size_t rkey(const rd *r, const char *fk, size_t fkl, char *out)
{
	size_t pl = strlen(r->rc.prefix);

	memcpy(out, r->rc.prefix, pl);
	memcpy(out + pl, fk, fkl);
	out[pl + fkl] = 0;
	return pl + fkl;
}

/* r_count - the counter script */
static int r_count(pd_store *s, const char *fk, size_t fkl, unsigned window, long long amount,
		   int64_t now, long long *total)
{
	rd *r = s->b;
	char k[RKEY_MAX], a[5][24];
	const char *av[5] = {a[0], a[1], a[2], a[3], a[4]};
	size_t kl = rkey(r, fk, fkl, k);

	snprintf(a[0], sizeof(a[0]), "%u", window);
	snprintf(a[1], sizeof(a[1]), "%lld", (long long)pd_store_bucket(now, window));
	snprintf(a[2], sizeof(a[2]), "%lld", amount);
	snprintf(a[3], sizeof(a[3]), "%lld", (long long)now);
	snprintf(a[4], sizeof(a[4]), "%d", PD_STORE_GC_SLACK);
	return script(r, S_COUNT, k, kl, 5, av, total);
}

/* r_set - SET the value "EXPIRY:bytes" with a Redis TTL past its expiry */
static int r_set(pd_store *s, const char *fk, size_t fkl, const void *v, size_t len, unsigned ttl,
		 int64_t now)
{
	rd *r = s->b;
	char k[RKEY_MAX], val[24 + PD_STORE_VALUE_MAX], ex[24];
	size_t kl = rkey(r, fk, fkl, k);
	int n = snprintf(val, sizeof(val), "%lld:", (long long)(now + ttl));
	redisReply *rep;

	memcpy(val + n, v, len);
	snprintf(ex, sizeof(ex), "%lld", (long long)ttl + PD_STORE_GC_SLACK);
	rep = run(r, 5, (const char *[]){"SET", k, val, "EX", ex},
		  (size_t[]){3, kl, (size_t)n + len, 2, strlen(ex)});
	if (!rep)
		return -1;
	freeReplyObject(rep);
	return 0;
}

/* parse_value - "EXPIRY:bytes": 0 with *EXP, *DATA, *DLEN, or -1 */
static int parse_value(const char *v, size_t len, int64_t *exp, const char **data, size_t *dlen)
{
	const char *colon = memchr(v, ':', len < 24 ? len : 24);
	int64_t e = 0;

	if (!colon || colon == v)
		return -1;
	for (const char *p = v; p < colon; p++) {
		if (*p < '0' || *p > '9' || e > (INT64_MAX - 9) / 10)
			return -1;
		e = e * 10 + (*p - '0');
	}
	*exp = e;
	*data = colon + 1;
	*dlen = len - (size_t)(colon + 1 - v);
	return 0;
}

/* r_get - GET, live at NOW? */
static int r_get(pd_store *s, const char *fk, size_t fkl, int64_t now, pd_store_val *val)
{
	rd *r = s->b;
	char k[RKEY_MAX];
	size_t kl = rkey(r, fk, fkl, k), dlen;
	redisReply *rep = run(r, 2, (const char *[]){"GET", k}, (size_t[]){3, kl});
	const char *data;
	int64_t exp;

	if (!rep)
		return -1;
	if (rep->type != REDIS_REPLY_STRING ||
	    parse_value(rep->str, rep->len, &exp, &data, &dlen) != 0 || exp <= now) {
		if (rep->type != REDIS_REPLY_NIL && rep->type != REDIS_REPLY_STRING) {
			cmd_error(r, "GET", rep);
			freeReplyObject(rep);
			return -1;
		}
		freeReplyObject(rep);
		return 0;
	}
	val->data = malloc(dlen + 1);
	if (!val->data) {
		freeReplyObject(rep);
		SLOG(r, LOG_ERR_, "store: out of memory");
		return -1;
	}
	memcpy(val->data, data, dlen);
	((char *)val->data)[dlen] = 0;
	val->len = dlen;
	val->ttl = (unsigned)(exp - now);
	freeReplyObject(rep);
	return 1;
}

/* r_del - DEL: 1 deleted, 0 absent */
static int r_del(pd_store *s, const char *fk, size_t fkl)
{
	rd *r = s->b;
	char k[RKEY_MAX];
	size_t kl = rkey(r, fk, fkl, k);
	redisReply *rep = run(r, 2, (const char *[]){"DEL", k}, (size_t[]){3, kl});
	int n;

	if (!rep)
		return -1;
	n = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
	freeReplyObject(rep);
	return n;
}

/* r_members - the members script */
static int r_members(pd_store *s, const char *fk, size_t fkl, const char *m, size_t ml, unsigned ttl,
		     int64_t now, long long *count)
{
	rd *r = s->b;
	char k[RKEY_MAX], a[4][24];
	const char *av[5] = {a[0], a[1], a[2], a[3], m};
	size_t kl = rkey(r, fk, fkl, k);

	(void)ml;
	snprintf(a[0], sizeof(a[0]), "%lld", (long long)now);
	snprintf(a[1], sizeof(a[1]), "%u", ttl);
	snprintf(a[2], sizeof(a[2]), "%d", PD_STORE_MEMBERS_MAX);
	snprintf(a[3], sizeof(a[3]), "%d", PD_STORE_GC_SLACK);
	return script(r, S_MEMBERS, k, kl, m ? 5 : 4, av, count);
}

/* pause_retry - a random pause before try ATTEMPT + 1, below 1, 2, 4, 8 ms (spreads the racers) */
static void pause_retry(rd *r, int attempt)
{
	unsigned seed;
	struct timespec ts;

	pthread_mutex_lock(&r->mu);
	seed = r->seed = r->seed * 1103515245u + 12345u;
	pthread_mutex_unlock(&r->mu);
	ts.tv_sec = 0;
	ts.tv_nsec = (long)((seed >> 8) % (1000u << (attempt - 1))) * 1000L;
	nanosleep(&ts, NULL);
}

/* try_update - one optimistic try: 1 done, 0 another client changed the key (try again), 2 the
 * master was demoted (READONLY: the sentinels are asked again), -1 */
static int try_update(rd *r, const char *k, size_t kl, const char *fk, size_t fkl,
		      pd_store_update_fn *fn, void *arg, int64_t now, int *result)
{
	char val[24 + PD_STORE_UPDATE_MAX], ex[24];
	const char *data = NULL;
	size_t dlen = 0, newlen;
	int64_t exp = 0;
	unsigned ttl;
	redisReply *rep, *reps[3];
	int exists, n, ret = -1;
	sess ss;

	if (sess_open(r, &ss) != 0)
		return -1;
	rep = sess_cmd(r, &ss, 1, 2, (const char *[]){"WATCH", k}, (size_t[]){5, kl});
	if (!rep)
		return -1;
	if (rep->type == REDIS_REPLY_ERROR) {
		cmd_error(r, "WATCH", rep);
		freeReplyObject(rep);
		sess_close(r, &ss);
		return -1;
	}
	freeReplyObject(rep);
	rep = sess_cmd(r, &ss, 0, 2, (const char *[]){"GET", k}, (size_t[]){3, kl});
	if (!rep)
		return -1;
	if (rep->type != REDIS_REPLY_NIL && rep->type != REDIS_REPLY_STRING) {
		cmd_error(r, "GET", rep);
		freeReplyObject(rep);
		redisFree(ss.c); /* still watching: not for the pool */
		return -1;
	}
	exists = rep->type == REDIS_REPLY_STRING;
	if (exists && (parse_value(rep->str, rep->len, &exp, &data, &dlen) != 0 || exp <= now)) {
		data = NULL;
		dlen = 0;
	}
	/* the function writes into VAL after the expiry that goes before it */
	if (pd_store_run_update(r->st, fk, fkl, fn, arg, data, dlen, data ? (unsigned)(exp - now) : 0,
				val + 23, &newlen, &ttl, result) != 0) {
		freeReplyObject(rep);
		redisFree(ss.c);
		return -1;
	}
	freeReplyObject(rep); /* DATA pointed into it */
	if (*result == PD_STORE_UPD_KEEP || (*result == PD_STORE_UPD_DELETE && !exists)) {
		rep = sess_cmd(r, &ss, 0, 1, (const char *[]){"UNWATCH"}, (size_t[]){7});
		if (!rep)
			return -1;
		freeReplyObject(rep);
		sess_close(r, &ss);
		return 1;
	}
	redisAppendCommand(ss.c, "MULTI");
	if (*result == PD_STORE_UPD_DELETE) {
		redisAppendCommandArgv(ss.c, 2, (const char *[]){"DEL", k}, (size_t[]){3, kl});
	} else {
		char head[24];
		int hl = snprintf(head, sizeof(head), "%lld:", (long long)(now + ttl));

		/* "EXPIRY:" right before the new record, which starts at val + 23 */
		memcpy(val + 23 - hl, head, (size_t)hl);
		snprintf(ex, sizeof(ex), "%lld", (long long)ttl + PD_STORE_GC_SLACK);
		redisAppendCommandArgv(ss.c, 5, (const char *[]){"SET", k, val + 23 - hl, "EX", ex},
				       (size_t[]){3, kl, (size_t)hl + newlen, 2, strlen(ex)});
	}
	redisAppendCommand(ss.c, "EXEC");
	for (n = 0; n < 3; n++)
		if (redisGetReply(ss.c, (void **)&reps[n]) != REDIS_OK)
			break;
	if (n < 3) {
		for (int i = 0; i < n; i++)
			freeReplyObject(reps[i]);
		conn_fail(r, ss.c);
		return -1;
	}
	if (reps[2]->type == REDIS_REPLY_NIL)
		ret = 0; /* EXEC: the watched key changed, nothing was done */
	else if (reps[2]->type == REDIS_REPLY_ARRAY && reps[2]->elements == 1 &&
		 reps[2]->element[0]->type != REDIS_REPLY_ERROR)
		ret = 1;
	else {
		const redisReply *bad = reps[1]->type == REDIS_REPLY_ERROR ? reps[1]
					: reps[2]->type == REDIS_REPLY_ARRAY && reps[2]->elements
					    ? reps[2]->element[0] : reps[2];

		if (demoted(r, bad) || (reps[2]->type == REDIS_REPLY_ERROR && demoted(r, reps[1]))) {
			/* the master was demoted under the pooled connection: as for any command
			 * (sess_cmd), the sentinels are asked again and the update is tried once
			 * more on the master they name now (r_update) */
			for (int i = 0; i < 3; i++)
				freeReplyObject(reps[i]);
			redisFree(ss.c);
			forget_master(r);
			return 2;
		}
		cmd_error(r, "EXEC", bad);
	}
	for (int i = 0; i < 3; i++)
		freeReplyObject(reps[i]);
	sess_close(r, &ss);
	return ret;
}

/* r_update - optimistic read-modify-write, tried again when another client won the race */
static int r_update(pd_store *s, const char *fk, size_t fkl, pd_store_update_fn *fn, void *arg,
		    int64_t now, int *result)
{
	rd *r = s->b;
	char k[RKEY_MAX], e[140];
	size_t kl = rkey(r, fk, fkl, k);

	int demoted_once = 0;

	for (int attempt = 1; attempt <= UPDATE_TRIES; attempt++) {
		int t = try_update(r, k, kl, fk, fkl, fn, arg, now, result);

		if (t == 2) { /* READONLY: once on the master the sentinels name now, at once */
			if (demoted_once++) {
				mark_down(r, "the master the sentinels named answers READONLY (a replica)");
				return -1;
			}
			attempt--;
			continue;
		}
		if (t != 0)
			return t > 0 ? 0 : -1;
		if (attempt < UPDATE_TRIES)
			pause_retry(r, attempt);
	}
	if (cmd_error_due(r))
		SLOG(r, LOG_ERR_, "store: update of %s: other clients changed it during each of %d tries",
		     pd_store_esc_key(fk, fkl, e, sizeof(e)), UPDATE_TRIES);
	return -1;
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

/* counter_text - a counter hash (HGETALL reply REP) rendered at NOW; 1, or 0 when not live */
static int counter_text(const redisReply *rep, int64_t now, long long *ttl, char *text)
{
	long long w = 0, h = 0, t = 0, lo;
	int have_h = 0;

	for (size_t i = 0; i + 1 < rep->elements; i += 2) {
		const char *f = rep->element[i]->str, *v = rep->element[i + 1]->str;

		if (!f || !v)
			return 0;
		if (!strcmp(f, "w"))
			w = strtoll(v, NULL, 10);
		else if (!strcmp(f, "h"))
			h = strtoll(v, NULL, 10), have_h = 1;
	}
	if (w < 1 || w > PD_STORE_TTL_MAX || !have_h)
		return 0;
	*ttl = pd_store_counter_end(h, (unsigned)w) - now;
	if (*ttl <= 0)
		return 0;
	lo = pd_store_bucket(now, (unsigned)w);
	lo = (lo > h ? lo : h) - PD_STORE_BUCKETS;
	for (size_t i = 0; i + 1 < rep->elements; i += 2) {
		const char *f = rep->element[i]->str;

		if (strcmp(f, "w") && strcmp(f, "h") && strtoll(f, NULL, 10) >= lo)
			t += strtoll(rep->element[i + 1]->str, NULL, 10);
	}
	pd_store_render_counter(text, t, (unsigned)w);
	return 1;
}

/* members_text - a sorted set (ZRANGE WITHSCORES reply REP) rendered at NOW; 1, or 0 */
static int members_text(const redisReply *rep, int64_t now, long long *ttl, char *text)
{
	long long live = 0, top = 0;

	for (size_t i = 0; i + 1 < rep->elements; i += 2) {
		long long e = strtoll(rep->element[i + 1]->str, NULL, 10);

		live += e > now;
		if (e > top)
			top = e;
	}
	if (!live)
		return 0;
	*ttl = top - now;
	pd_store_render_members(text, live);
	for (size_t i = 0; i + 1 < rep->elements; i += 2)
		if (strtoll(rep->element[i + 1]->str, NULL, 10) > now)
			pd_store_render_member(text, rep->element[i]->str, rep->element[i]->len);
	return 1;
}

/* scan_one - fetch and render the key RK of a SCAN (the full key after PL bytes of prefix); 1
 * listed (E filled), 0 skipped (expired, or not one of ours), -1 error */
static int scan_one(rd *r, const char *rk, size_t rkl, size_t pl, int64_t now, pd_store_entry *e,
		    char *ns, char *key, char *text)
{
	redisReply *rep;
	int kind, ok = 0;

	if (pd_store_split_key(rk + pl, rkl - pl, ns, &kind, key) != 0)
		return 0; /* not one of ours */
	if (kind == PD_STORE_COUNTER)
		rep = call(r, 2, (const char *[]){"HGETALL", rk}, (size_t[]){7, rkl});
	else if (kind == PD_STORE_VALUE)
		rep = call(r, 2, (const char *[]){"GET", rk}, (size_t[]){3, rkl});
	else
		rep = call(r, 5, (const char *[]){"ZRANGE", rk, "0", "-1", "WITHSCORES"},
			  (size_t[]){6, rkl, 1, 2, 10});
	if (!rep)
		return -1;
	if (rep->type == REDIS_REPLY_ERROR) { /* WRONGTYPE: someone else's key under our prefix */
		freeReplyObject(rep);
		return 0;
	}
	e->ns = ns;
	e->key = key;
	e->kind = kind;
	e->text = text;
	if (kind == PD_STORE_VALUE && rep->type == REDIS_REPLY_STRING) {
		const char *d;
		size_t dl;
		int64_t exp;

		if (parse_value(rep->str, rep->len, &exp, &d, &dl) == 0 && exp > now) {
			e->ttl = exp - now;
			pd_store_render_value(text, d, dl);
			ok = 1;
		}
	} else if (kind == PD_STORE_COUNTER && rep->type == REDIS_REPLY_ARRAY) {
		ok = counter_text(rep, now, &e->ttl, text);
	} else if (kind == PD_STORE_MEMBERS && rep->type == REDIS_REPLY_ARRAY) {
		ok = members_text(rep, now, &e->ttl, text);
	}
	freeReplyObject(rep);
	return ok;
}

/* r_scan - SCAN the prefix (of NS) in batches, fetch and render each entry */
static long r_scan(pd_store *s, const char *ns, int64_t now, pd_store_scan_fn *fn, void *arg)
{
	rd *r = s->b;
	char pat[2 * PD_STORE_PREFIX_MAX + PD_STORE_NS_MAX + 8], base[PD_STORE_PREFIX_MAX + PD_STORE_NS_MAX + 2];
	char cur[32] = "0", nsb[PD_STORE_NS_MAX + 1], key[PD_STORE_KEY_MAX + 1], text[PD_STORE_TEXT_MAX];
	size_t pl = strlen(r->rc.prefix);
	long listed = 0;
	int stop = 0;

	snprintf(base, sizeof(base), "%s%s%s", r->rc.prefix, ns ? ns : "", ns ? ":" : "");
	glob_escape(base, pat, sizeof(pat)); /* a namespace has no glob characters */
	do {
		const char *av[6] = {"SCAN", cur, "MATCH", pat, "COUNT", "100"};
		size_t al[6] = {4, strlen(cur), 5, strlen(pat), 5, 3};
		redisReply *rep = run(r, 6, av, al), *keys;

		if (!rep)
			return -1;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    rep->element[0]->type != REDIS_REPLY_STRING ||
		    rep->element[1]->type != REDIS_REPLY_ARRAY) {
			cmd_error(r, "SCAN", rep);
			freeReplyObject(rep);
			return -1;
		}
		snprintf(cur, sizeof(cur), "%s", rep->element[0]->str);
		keys = rep->element[1];
		for (size_t i = 0; i < keys->elements && !stop; i++) {
			redisReply *k = keys->element[i];
			pd_store_entry e;
			int got;

			if (k->type != REDIS_REPLY_STRING || k->len <= pl || k->len >= RKEY_MAX)
				continue;
			got = scan_one(r, k->str, k->len, pl, now, &e, nsb, key, text);
			if (got < 0) {
				freeReplyObject(rep);
				return -1;
			}
			if (got == 0)
				continue;
			listed++;
			if (fn(arg, &e) != 0)
				stop = 1;
		}
		freeReplyObject(rep);
	} while (!stop && strcmp(cur, "0") != 0);
	return listed;
}

/* r_expire - nothing to do: Redis collects garbage by the keys' TTLs */
static long r_expire(pd_store *s, int64_t now, size_t batch, int *done)
{
	*done = 1;
	return 0;
}

/* r_sync - nothing to do: Redis persists by its own configuration */
static int r_sync(pd_store *s)
{
	return 0;
}

/* r_compact - nothing to do */
static int r_compact(pd_store *s)
{
	return 0;
}

/* pd_store_redis_open - a pool for the server in RC; tries one connection now */
int pd_store_redis_open(pd_store *s, const pd_store_redis_conf *rc, char *err, size_t errlen)
{
	rd *r = calloc(1, sizeof(*r));
	redisContext *c;
	int reused;
	unsigned gen;

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->st = s;
	r->rc = *rc;
	r->seed = (unsigned)mono_ms() ^ (unsigned)(uintptr_t)r;
	pthread_mutex_init(&r->mu, NULL);
	s->b = r;
	c = conn_get(r, &reused, &gen); /* a failure is logged as "redis down" and is not fatal */
	if (c)
		conn_put(r, c, gen);
	return 0;
}

/* r_close - close every pooled connection and free the pool */
static void r_close(pd_store *s)
{
	rd *r = s->b;

	for (int i = 0; i < r->n_idle; i++)
		redisFree(r->idle[i]);
	pthread_mutex_destroy(&r->mu);
	memset(&r->rc, 0, sizeof(r->rc)); /* the passwords */
	free(r);
}

const pd_store_ops pd_store_redis_ops = {
	.name = "redis",
	.remote = 1,
	.count = r_count,
	.set = r_set,
	.get = r_get,
	.del = r_del,
	.members = r_members,
	.update = r_update,
	.scan = r_scan,
	.expire = r_expire,
	.sync = r_sync,
	.compact = r_compact,
	.close = r_close,
};
