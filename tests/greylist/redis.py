# redis.py - greylist with backend = "redis" in its section: two policyd daemons share a private redis-server; outage and recovery
# SPDX-License-Identifier: BSD-2-Clause
"""Daemon tests of the greylist plugin on a Redis store: the Redis settings
in the greylist section give the instance a store of its own on the core's
state service (prefix "pdgl:", the plugin's old default). Each test starts
its own redis-server on a free loopback port (no persistence, data in a temp
dir) and stops it by PID. Real time passes where the delay must (delay = 2);
the only timing check is a generous bound that catches a hang, not slowness.
A record is the core's value, "EXPIRY:" and the plugin's 32 bytes
(plugins/greylist/key.c, gl_rec_encode)."""
import os
import signal
import subprocess
import time

try:
    import pdtest
    from pdtest import req
except ImportError:
    print("SKIP: tests/lib/pdtest.py is not in this tree yet")
    raise SystemExit(77)

ONERR = "DEFER_IF_PERMIT 4.3.0 redis down"

from pdredis import REDIS_SERVER, Redis, built_with_hiredis, resp_encode, resp_read, stop_proc  # noqa: E402,F401 (sentinel.py uses them)


def gl(port, options="", extra=""):
    return ('plugins = { "greylist" }\n%sgreylist {\n  backend = "redis"\n'
            '  redis_server = "127.0.0.1:%d"\n%s\n}\n' % (extra, port, options))


def sleep_past(seconds):
    time.sleep(seconds + 0.05)


NS = b"pdgl:greylist:v:"  # prefix, the instance's namespace, the kind (a value)


def triplet_keys(r):
    """Keys of triplet records: "T:NET SENDER RECIPIENT" (see key.c)."""
    return [k for k in r.keys(b"pdgl:") if k.startswith(NS + b"T:")]


def client_keys(r):
    """Keys of auto-whitelist records: "C:ADDRESS/32"."""
    return [k for k in r.keys(b"pdgl:") if k.startswith(NS + b"C:")]


def record(r, key):
    """(expiry, type letter, count) of the record under KEY."""
    v = r.cmd("GET", key)
    exp, rec = v.split(b":", 1)
    assert len(rec) == 32 and rec[0] == 1, v
    return int(exp), rec[1:2], int.from_bytes(rec[4:8], "little")


# ---- tests ----

def test_two_daemons_share_greylist():
    r = Redis().start()
    try:
        d1 = pdtest.daemon(gl(r.port, "delay = 2"))
        d2 = pdtest.daemon(gl(r.port, "delay = 2"))
        d1.wait_log('store "default/greylist": Redis 127.0.0.1:%d' % r.port)
        a = dict(client_address="192.0.2.30", sender="s@sender.example", recipient="r@example.test")
        got = d1.ask(req(instance="m1", **a))
        assert got == "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 2 seconds", got
        # the other MX knows the triplet: an early retry there is deferred with the time left
        got = d2.ask(req(instance="m2", **a))
        assert got.startswith("DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in "), got
        assert 0 < int(got.split()[-2]) <= 2, got
        # a pending triplet expires after retry_window (its Redis TTL an hour later: garbage)
        keys = triplet_keys(r)
        assert keys == [NS + b"T:192.0.2.0/24 s@sender.example r@example.test"], r.keys(b"pdgl:")
        exp, t, n = record(r, keys[0])
        assert t == b"T" and 0 < exp - time.time() <= 2 * 86400 + 2, (exp, t)
        ttl = r.cmd("TTL", keys[0])
        assert 0 < ttl <= 2 * 86400 + 1 + 3600, ttl
        sleep_past(2)
        got = d2.ask(req(instance="m3", **a))
        assert got.startswith("PREPEND X-Greylist: delayed "), got
        assert d1.ask(req(instance="m4", **a)) == "DUNNO"
        # passed: kept for lifetime (default 35 days) after it was last seen
        exp, t, n = record(r, keys[0])
        assert t == b"P" and 35 * 86400 - 60 < exp - time.time() <= 35 * 86400 + 2, (exp, t)
        ttl = r.cmd("TTL", keys[0])
        assert 35 * 86400 - 60 < ttl <= 35 * 86400 + 1 + 3600, ttl
        # another triplet is still greylisted on both
        assert d2.ask(req(client_address="192.0.2.30", recipient="other@example.test")).startswith("DEFER_IF_PERMIT")
        d1.stop()
        d2.stop()
    finally:
        r.cleanup()


def test_auto_whitelist_seen_by_both():
    """A delivery counted on one MX counts on the other: two first passes of
    the address's triplets, one on each, an interval apart, whitelist it on both."""
    r = Redis().start()
    try:
        opts = "delay = 2\nauto_whitelist = 2\nauto_whitelist_interval = 1\nadd_header = false\nlifetime = 10d"
        d1 = pdtest.daemon(gl(r.port, opts))
        d2 = pdtest.daemon(gl(r.port, opts))
        ip = "203.0.113.7"
        assert d1.ask(req(client_address=ip, recipient="x@example.test", instance="m1")).startswith("DEFER")
        assert d2.ask(req(client_address=ip, recipient="y@example.test", instance="m2")).startswith("DEFER")
        sleep_past(2)
        # one delivery counted on each MX
        assert d1.ask(req(client_address=ip, recipient="x@example.test", instance="m3")) == "DUNNO"
        sleep_past(1)
        assert d2.ask(req(client_address=ip, recipient="y@example.test", instance="m4")) == "DUNNO"
        # two deliveries: the address passes everywhere, new triplets too; its /24 does not
        assert d1.ask(req(client_address=ip, recipient="new1@example.test", instance="m5")) == "DUNNO"
        assert d2.ask(req(client_address=ip, recipient="new2@example.test", instance="m6")) == "DUNNO"
        assert d1.ask(req(client_address="203.0.113.99", recipient="new1@example.test")).startswith("DEFER")
        clients = client_keys(r)
        assert clients == [NS + b"C:203.0.113.7/32"], r.keys(b"pdgl:")
        exp, t, n = record(r, clients[0])
        assert t == b"C" and n == 2, (t, n)
        ttl = r.cmd("TTL", clients[0])
        assert 0 < ttl <= 10 * 86400 + 1 + 3600, ttl
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
    """40 messages of one pending triplet at once through two daemons, just
    after the delay: the read-modify-write of its record is atomic, so
    exactly one of them is its first pass (one X-Greylist header, one
    delivery counted), the rest pass as known."""
    import threading
    r = Redis().start()
    try:
        opts = "delay = 2\nauto_whitelist = 1000"
        ds = [pdtest.daemon(gl(r.port, opts)), pdtest.daemon(gl(r.port, opts))]
        a = dict(client_address="192.0.2.70", sender="c@s.example", recipient="t@example.test")
        assert ds[0].ask(req(instance="first", **a)).startswith("DEFER")
        sleep_past(2)
        replies, errors = [], []
        go = threading.Event()

        def sender(d, base):
            try:
                c = d.client()
                go.wait(30)
                for i in range(10):
                    replies.append(c.ask(req(instance="m%d.%d" % (base, i), **a)))
                c.close()
            except Exception as e:  # reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=sender, args=(ds[k % 2], k)) for k in range(4)]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join(60 * pdtest.SLOW)
        assert not errors, errors
        assert len(replies) == 40, replies
        headers = [x for x in replies if x.startswith("PREPEND X-Greylist: delayed ")]
        assert len(headers) == 1 and replies.count("DUNNO") == 39, replies
        tk, ck = triplet_keys(r), client_keys(r)
        assert len(tk) == 1 and len(ck) == 1, r.keys(b"pdgl:")
        assert record(r, tk[0])[1:] == (b"P", 1), record(r, tk[0])
        assert record(r, ck[0])[1:] == (b"C", 1), record(r, ck[0])
        for d in ds:
            d.stop()
    finally:
        r.cleanup()


def test_a_foreign_record_is_never_a_pass():
    """What the plugin did not write under a triplet's key: a value it cannot
    read is a triplet never seen (deferred afresh, rewritten), never a pass;
    a key of another Redis type is an error (on_error, logged)."""
    r = Redis().start()
    try:
        d = pdtest.daemon(gl(r.port, "delay = 600\nauto_whitelist = 0", extra='on_error = "%s"\n' % ONERR))
        c = d.client()
        key = NS + b"T:192.0.2.0/24 s@sender.example r@example.test"
        a = dict(client_address="192.0.2.80", sender="s@sender.example", recipient="r@example.test")
        far = str(int(time.time()) + 86400).encode()
        for junk in (far + b":" + b"P" * 32, far + b":short", far + b":\x01P" + b"\0" * 30 + b"extra", b"garbage"):
            r.cmd("SET", key, junk)
            got = c.ask(req(**a))
            assert got == "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 600 seconds", (junk, got)
            assert record(r, key)[1] == b"T", r.cmd("GET", key)
        r.cmd("DEL", key)
        r.cmd("HSET", key, "t", "P")
        assert c.ask(req(**a)) == ONERR
        d.wait_log("WRONGTYPE")
        r.cmd("DEL", key)
        assert c.ask(req(**a)) == "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 600 seconds"
        c.close()
        d.stop()
    finally:
        r.cleanup()


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
    # the core checks the store settings of the section: file and the section's line
    assert p.returncode != 0 and "%s:" % d.conf in p.stderr and 'redis server "a:b:c"' in p.stderr, p
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
