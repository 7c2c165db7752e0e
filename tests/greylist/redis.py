# redis.py - greylist backend = "redis": two policyd daemons share a private redis-server; outage and recovery
# SPDX-License-Identifier: BSD-2-Clause
"""Daemon tests of the Redis backend of the greylist plugin. Each test starts
its own redis-server on a free loopback port (no persistence, data in a temp
dir) and stops it by PID. Real time passes where the delay must (delay = 2);
the only timing check is a generous bound that catches a hang, not slowness.
FakeRedis, a few lines of RESP, stands in where a real server cannot give
the reply under test."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

try:
    import pdtest
    from pdtest import req
except ImportError:
    print("SKIP: tests/lib/pdtest.py is not in this tree yet")
    raise SystemExit(77)

ONERR = "DEFER_IF_PERMIT 4.3.0 redis down"

from pdredis import REDIS_SERVER, Redis, built_with_hiredis, resp_encode, resp_read, stop_proc  # noqa: E402


def gl(port, options="", extra=""):
    return ('plugins = { "greylist" }\n%sgreylist {\n  backend = "redis"\n'
            '  redis_server = "127.0.0.1:%d"\n%s\n}\n' % (extra, port, options))


def sleep_past(seconds):
    time.sleep(seconds + 0.05)


def triplet_keys(r):
    """Keys of triplet records: prefix, then 'T' (see key.c)."""
    return [k for k in r.keys(b"pdgl:") if k[5:6] != b"C"]


# ---- tests ----

def test_two_daemons_share_greylist():
    r = Redis().start()
    try:
        d1 = pdtest.daemon(gl(r.port, "delay = 2"))
        d2 = pdtest.daemon(gl(r.port, "delay = 2"))
        d1.wait_log('database redis 127.0.0.1:%d db 0 prefix "pdgl:"' % r.port)
        a = dict(client_address="192.0.2.30", sender="s@sender.example", recipient="r@example.test")
        got = d1.ask(req(instance="m1", **a))
        assert got == "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 2 seconds", got
        # the other MX knows the triplet: an early retry there is deferred with the time left
        got = d2.ask(req(instance="m2", **a))
        assert got.startswith("DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in "), got
        assert 0 < int(got.split()[-2]) <= 2, got
        # a pending triplet expires by TTL after retry_window (+60 s)
        keys = triplet_keys(r)
        assert len(keys) == 1, keys
        ttl = r.cmd("TTL", keys[0])
        assert 0 < ttl <= 2 * 86400 + 60, ttl
        assert r.cmd("HGET", keys[0], "t") == b"T"
        sleep_past(2)
        got = d2.ask(req(instance="m3", **a))
        assert got.startswith("PREPEND X-Greylist: delayed "), got
        assert d1.ask(req(instance="m4", **a)) == "DUNNO"
        # passed: kept for lifetime (default 35 days) after the last update
        assert r.cmd("HGET", keys[0], "t") == b"P"
        ttl = r.cmd("TTL", keys[0])
        assert 35 * 86400 - 60 < ttl <= 35 * 86400, ttl
        # another triplet is still greylisted on both
        assert d2.ask(req(client_address="192.0.2.30", recipient="other@example.test")).startswith("DEFER_IF_PERMIT")
        d1.stop()
        d2.stop()
    finally:
        r.cleanup()


def test_auto_whitelist_seen_by_both():
    r = Redis().start()
    try:
        opts = "delay = 2\nauto_whitelist = 2\nadd_header = false\nlifetime = 10d"
        d1 = pdtest.daemon(gl(r.port, opts))
        d2 = pdtest.daemon(gl(r.port, opts))
        ip = "203.0.113.7"
        assert d1.ask(req(client_address=ip, recipient="x@example.test", instance="m1")).startswith("DEFER")
        assert d2.ask(req(client_address=ip, recipient="y@example.test", instance="m2")).startswith("DEFER")
        sleep_past(2)
        # one delivery counted on each MX
        assert d1.ask(req(client_address=ip, recipient="x@example.test", instance="m3")) == "DUNNO"
        assert d2.ask(req(client_address=ip, recipient="y@example.test", instance="m4")) == "DUNNO"
        # two deliveries: the client network (203.0.113.0/24) passes everywhere, new triplets too
        assert d1.ask(req(client_address="203.0.113.99", recipient="new1@example.test", instance="m5")) == "DUNNO"
        assert d2.ask(req(client_address=ip, recipient="new2@example.test", instance="m6")) == "DUNNO"
        clients = [k for k in r.keys(b"pdgl:") if k[5:6] == b"C"]
        assert len(clients) == 1, r.keys(b"pdgl:")
        assert int(r.cmd("HGET", clients[0], "c")) >= 2
        ttl = r.cmd("TTL", clients[0])
        assert 0 < ttl <= 10 * 86400, ttl
        # another network is still greylisted
        assert d2.ask(req(client_address="198.51.100.1", recipient="x@example.test")).startswith("DEFER")
        d1.stop()
        d2.stop()
    finally:
        r.cleanup()


def test_redis_down_then_back():
    r = Redis().start()
    port = r.port
    try:
        d = pdtest.daemon(gl(port, "delay = 2\nredis_timeout = 300\nredis_connect_timeout = 300",
                             extra='on_error = "%s"\n' % ONERR))
        d2 = pdtest.daemon(gl(port, "delay = 2"))
        c = d.client()
        assert c.ask(req(client_address="192.0.2.40")).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")
        r.kill()
        # every request during the outage gets on_error, none hangs (the bound only catches a
        # hang: the reply budget is redis_timeout = 300 ms)
        worst = 0
        for i in range(40):
            t0 = time.time()
            got = c.ask(req(client_address="192.0.2.41", recipient="r%d@example.test" % i))
            worst = max(worst, time.time() - t0)
            assert got == ONERR, got
            if i % 10 == 9:
                time.sleep(0.3)  # let reconnection attempts happen between requests
        print("slowest reply while redis was down: %.3f s" % worst)
        assert worst < 5 * pdtest.SLOW, worst
        assert d.alive()
        log = d.log_text()
        assert log.count("redis down: 127.0.0.1:%d" % port) == 1, log[-3000:]
        # back on the same port (empty: no persistence): greylisting resumes without a restart
        r.cleanup()
        r = Redis(port).start()
        deadline = time.time() + 20 * pdtest.SLOW
        while True:
            got = c.ask(req(client_address="192.0.2.42", instance="back"))
            if got != ONERR:
                break
            assert time.time() < deadline, "still failing after redis came back"
            time.sleep(0.1)
        assert got == "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 2 seconds", got
        d.wait_log("redis up again: 127.0.0.1:%d" % port)
        assert d.log_text().count("redis down:") == 1
        # the other daemon shares the new state too
        got = d2.ask(req(client_address="192.0.2.42", instance="back2"))
        assert got.startswith("DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in "), got
        assert len(triplet_keys(r)) == 1, r.keys(b"pdgl:")
        c.close()
        d.stop()
        d2.stop()
    finally:
        r.cleanup()


def test_redis_stalled():
    """A Redis that accepts but does not answer (SIGSTOP): on_error after redis_timeout."""
    r = Redis().start()
    try:
        d = pdtest.daemon(gl(r.port, "delay = 2\nredis_timeout = 200\nredis_connect_timeout = 200",
                             extra='on_error = "%s"\n' % ONERR))
        c = d.client()
        assert c.ask(req(client_address="192.0.2.60")).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")
        r.proc.send_signal(signal.SIGSTOP)
        try:
            worst = 0
            for i in range(15):
                t0 = time.time()
                got = c.ask(req(client_address="192.0.2.61", recipient="s%d@example.test" % i))
                worst = max(worst, time.time() - t0)
                assert got == ONERR, got
                time.sleep(0.05)
            print("slowest reply while redis was stopped: %.3f s (redis_timeout 0.2 s)" % worst)
            assert worst < 5 * pdtest.SLOW, worst  # catches a hang, not slowness
            log = d.log_text()
            assert log.count("redis down: 127.0.0.1:%d" % r.port) == 1, log[-3000:]
        finally:
            r.proc.send_signal(signal.SIGCONT)
        deadline = time.time() + 20 * pdtest.SLOW
        while c.ask(req(client_address="192.0.2.62", instance="x")) == ONERR:
            assert time.time() < deadline, "still failing after redis continued"
            time.sleep(0.1)
        d.wait_log("redis up again: 127.0.0.1:%d" % r.port)
        c.close()
        d.stop()
    finally:
        r.cleanup()


def test_a_waiting_redis_never_holds_a_network_thread():
    """Redis checks run on worker threads: with one network thread and Redis
    stopped, a request of another chain is answered while the greylist one
    still waits for redis_timeout (ordering, not timing, is asserted)."""
    import threading
    r = Redis().start()
    try:
        d = pdtest.daemon(gl(r.port, "delay = 2\nredis_timeout = 3000\nredis_connect_timeout = 3000",
                             extra='io_threads = 1\non_error = "%s"\nchain "fast" { plugins = { "example" } }\n'
                             % ONERR))
        c = d.client()
        assert c.ask(req(client_address="192.0.2.63")).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")
        r.proc.send_signal(signal.SIGSTOP)
        slow = []
        try:
            t = threading.Thread(target=lambda: slow.append(c.ask(req(client_address="192.0.2.64"), timeout=30)))
            t.start()
            time.sleep(0.3)  # the greylist request is now waiting on Redis
            fast = d.client()
            assert fast.ask(req(policy_context="fast", recipient="policyblock@x")).startswith("REJECT")
            assert t.is_alive() and not slow, "the greylist request did not wait: the test proves nothing"
            fast.close()
            t.join(30)
            assert slow == [ONERR], slow
        finally:
            r.proc.send_signal(signal.SIGCONT)
        c.close()
        d.stop()
    finally:
        r.cleanup()


def test_redis_down_at_start():
    """A daemon starts while Redis is down: on_error until it is there."""
    port = pdtest.free_port()
    d = pdtest.daemon(gl(port, "delay = 2\nredis_prefix = \"mx:\"", extra='on_error = "%s"\n' % ONERR))
    assert d.ask(req()) == ONERR
    d.wait_log("redis down: 127.0.0.1:%d" % port)
    r = Redis(port).start()
    try:
        deadline = time.time() + 20 * pdtest.SLOW
        while d.ask(req()) == ONERR:
            assert time.time() < deadline
            time.sleep(0.1)
        assert r.keys(b"mx:") and not r.keys(b"pdgl:")
        d.stop()
    finally:
        r.cleanup()


def test_concurrent_updates_not_lost():
    """40 messages of one triplet at once through two daemons: every delivery is counted once."""
    import threading
    r = Redis().start()
    try:
        opts = "delay = 2\nauto_whitelist = 1000\nadd_header = false"
        ds = [pdtest.daemon(gl(r.port, opts)), pdtest.daemon(gl(r.port, opts))]
        a = dict(client_address="192.0.2.70", sender="c@s.example", recipient="t@example.test")
        assert ds[0].ask(req(instance="first", **a)).startswith("DEFER")
        sleep_past(2)
        replies, errors = [], []

        def sender(d, base):
            try:
                c = d.client()
                for i in range(10):
                    replies.append(c.ask(req(instance="m%d.%d" % (base, i), **a)))
                c.close()
            except Exception as e:  # reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=sender, args=(ds[k % 2], k)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * pdtest.SLOW)
        assert not errors, errors
        assert len(replies) == 40 and all(x == "DUNNO" for x in replies), replies
        keys = r.keys(b"pdgl:")
        tk = [k for k in keys if k[5:6] == b"T"]
        ck = [k for k in keys if k[5:6] == b"C"]
        assert len(tk) == 1 and len(ck) == 1, keys
        assert int(r.cmd("HGET", tk[0], "c")) == 40, r.cmd("HGETALL", tk[0])
        assert int(r.cmd("HGET", ck[0], "c")) == 40, r.cmd("HGETALL", ck[0])
        for d in ds:
            d.stop()
    finally:
        r.cleanup()


class FakeRedis:
    """A tiny RESP server on a free loopback port that answers the plugin's
    connection set-up (SCRIPT LOAD) like Redis and every EVALSHA/EVAL with
    SELF.verdict, a raw RESP reply the test sets: a server (or a script) that
    answers something the plugin did not ask for."""

    SHA = b"0123456789abcdef0123456789abcdef01234567"

    def __init__(self):
        import threading
        self.verdict = b"*3\r\n:0\r\n:600\r\n:0\r\n"
        self.evals = 0
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        """Serve each connection in a thread of its own until close()."""
        import threading
        while not self.stopping:
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        """Answer the commands of one connection until it closes."""
        f = conn.makefile("rb")
        try:
            while True:
                args = resp_read(f)  # a command is an array of bulk strings
                if not isinstance(args, list) or not args:
                    return
                name = args[0].upper()
                if name == b"SCRIPT":
                    out = b"$40\r\n" + self.SHA + b"\r\n"
                elif name in (b"EVALSHA", b"EVAL"):
                    self.evals += 1
                    out = self.verdict
                elif name == b"PING":
                    out = b"+PONG\r\n"
                else:
                    out = b"+OK\r\n"
                conn.sendall(out)
        except (OSError, ConnectionError, RuntimeError, ValueError):
            pass
        finally:
            conn.close()

    def close(self):
        """Stop accepting (the threads are daemons: they end with the test)."""
        self.stopping = True
        self.lsock.close()


def test_unexpected_verdict_is_an_error():
    """A script reply outside the verdicts the plugin knows (0..3), or with
    numbers that make no sense (negative seconds), is an error: on_error
    applies and it is logged, never a pass (a fake Redis answers EVALSHA)."""
    fake = FakeRedis()
    try:
        d = pdtest.daemon(gl(fake.port, "delay = 600\nauto_whitelist = 0",
                             extra='on_error = "%s"\n' % ONERR))
        c = d.client()
        # the fake's default reply is a well-formed "defer, 600 s left": the set-up works
        got = c.ask(req(client_address="192.0.2.80"))
        assert got == "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 600 seconds", got
        bad = [b"*3\r\n:7\r\n:0\r\n:0\r\n",      # verdict 7: unknown
               b"*3\r\n:-1\r\n:0\r\n:0\r\n",     # verdict -1
               b"*3\r\n:4294967297\r\n:0\r\n:0\r\n",  # 1 once cut to 32 bits
               b"*3\r\n:0\r\n:-5\r\n:0\r\n",     # defer for -5 seconds
               b"*3\r\n:0\r\n:99999999\r\n:0\r\n",  # defer for longer than the delay
               b"*3\r\n:2\r\n:0\r\n:-3\r\n"]     # passed after -3 seconds
        for i, v in enumerate(bad):
            fake.verdict = v
            n = fake.evals
            got = c.ask(req(client_address="192.0.2.%d" % (81 + i)))
            assert fake.evals > n, "the plugin did not ask the fake"
            assert got == ONERR, (v, got)
        log = d.wait_log("unexpected reply to the greylist script")
        # logged, but not once per request (once a minute)
        assert log.count("unexpected reply to the greylist script") == 1, log[-3000:]
        # a good reply again: greylisting works, no restart needed
        fake.verdict = b"*3\r\n:1\r\n:0\r\n:0\r\n"
        assert c.ask(req(client_address="192.0.2.90")) == "DUNNO"
        c.close()
        d.stop()
    finally:
        fake.close()


def admin(d, *args):
    p = subprocess.run([os.path.join(pdtest.BUILDDIR, "policyd-greylist"), "-c", d.conf] + list(args),
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_admin_command():
    r = Redis().start()
    try:
        d = pdtest.daemon(gl(r.port, "delay = 2\nauto_whitelist = 1\nadd_header = false"))
        assert d.ask(req(client_address="192.0.2.50", sender="a@s.example", recipient="x@example.test")).startswith("DEFER")
        assert d.ask(req(client_address="198.51.100.50", sender="b@s.example", recipient="y@example.test")).startswith("DEFER")
        rc, out, err = admin(d, "stats")
        assert rc == 0 and "greylisted: 2\npassed: 0\nclients: 0\n" in out, (rc, out, err)
        rc, out, err = admin(d, "list")
        assert rc == 0 and "a@s.example" in out and "y@example.test" in out and len(out.splitlines()) == 2, (out, err)
        sleep_past(2)
        assert d.ask(req(client_address="192.0.2.50", sender="a@s.example", recipient="x@example.test", instance="m")) == "DUNNO"
        rc, out, err = admin(d, "stats")
        assert rc == 0 and "greylisted: 1\npassed: 1\nclients: 1\nauto-whitelisted: 1\n" in out, (rc, out, err)
        # delete one triplet: greylisted again
        rc, out, err = admin(d, "delete", "198.51.100.50", "b@s.example", "y@example.test")
        assert rc == 0 and out.startswith("deleted: "), (rc, out, err)
        rc, out, err = admin(d, "delete", "198.51.100.50", "b@s.example", "y@example.test")
        assert rc == 1 and out.startswith("not found: "), (rc, out, err)
        # forget a client network: its triplets and its auto-whitelist record
        rc, out, err = admin(d, "delete-client", "192.0.2.50")
        assert rc == 0 and out.startswith("deleted: 2 records"), (rc, out, err)
        assert r.keys(b"pdgl:") == [], r.keys(b"pdgl:")
        assert d.ask(req(client_address="192.0.2.50", sender="a@s.example", recipient="x@example.test")).startswith("DEFER")
        rc, out, err = admin(d, "purge")
        assert rc == 0 and "TTL" in out, (rc, out, err)
        d.stop()
        r.kill()
        rc, out, err = admin(d, "stats")
        assert rc == 3 and "redis down" in err, (rc, out, err)
    finally:
        r.cleanup()


def test_config_errors():
    d = pdtest.Daemon(gl(6379, 'redis_server = "a:b:c"'))
    pdtest._daemons.append(d)
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "%s:" % d.conf in p.stderr and "redis_server" in p.stderr, p
    d.write_config('plugins = { "greylist" }\ngreylist {\n  backend = "mysql"\n}\n')
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and '%s:' % d.conf in p.stderr and '"mysql" must be "gdbm" or "redis"' in p.stderr, p
    d.write_config(gl(6379, 'redis_prefix = ""'))
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "redis_prefix: must not be empty" in p.stderr, p
    d.write_config(gl(6379, "redis_timeout = 0"))
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "redis_timeout" in p.stderr, p
    # privacy needs a shared hash_key with Redis (a key file is per host)
    # (checked when the plugin starts, not by -t)
    d.write_config(gl(6379, "privacy = true"))
    p = subprocess.run([pdtest.POLICYD, "-f", "-c", d.conf], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "needs hash_key" in p.stdout + p.stderr, p


if __name__ == "__main__":
    if not REDIS_SERVER:
        print("SKIP: redis-server is not installed")
        raise SystemExit(77)
    if not built_with_hiredis():
        print("SKIP: built without hiredis")
        raise SystemExit(77)
    pdtest.run(globals())
