# sentinel.py - greylist backend = "redis" found through Redis Sentinel: discovery, ROLE check, failover without restart
# SPDX-License-Identifier: BSD-2-Clause
"""Daemon tests of redis_sentinels / redis_master_name. A private master and
replica (redis-server --replicaof) and one sentinel (redis-server --sentinel)
on free loopback ports, each in its own temp dir, stopped by PID. A fake
sentinel (a thread answering SENTINEL get-master-addr-by-name with what the
test says) makes the ROLE check and the re-query after an error
deterministic. Every wait is bounded; no assertion on speed."""
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

try:
    import pdtest
    from pdtest import req
except ImportError:
    print("SKIP: tests/lib/pdtest.py is not in this tree yet")
    raise SystemExit(77)

_spec = importlib.util.spec_from_file_location(
    "pd_redis_test", os.path.join(os.path.dirname(os.path.abspath(__file__)), "redis.py"))
rt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rt)
Redis, resp_encode, resp_read = rt.Redis, rt.resp_encode, rt.resp_read

ONERR = "DEFER_IF_PERMIT 4.3.0 redis down"
NAME = "pdmaster"
FAST_SYNC = ["--repl-diskless-sync-delay", "0"]  # a replica syncs at once (default: 5 s later)


class Sentinel:
    """redis-server sentinel.conf --sentinel on 127.0.0.1, monitoring MASTER_PORT as NAME (quorum 1)."""

    def __init__(self, master_port, password=None):
        self.port = pdtest.free_port()
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="pdtest.sentinel.")
        self.conf = os.path.join(self.dir, "sentinel.conf")
        with open(self.conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\ndaemonize no\n"
                    "sentinel monitor %s 127.0.0.1 %d 1\n"
                    "sentinel down-after-milliseconds %s 1000\n"
                    "sentinel failover-timeout %s 2000\n"
                    "sentinel parallel-syncs %s 1\n"
                    % (self.port, self.dir, NAME, master_port, NAME, NAME, NAME))
            if password:
                f.write("requirepass %s\n" % password)
        self.log = open(os.path.join(self.dir, "sentinel.log"), "ab")
        self.proc = subprocess.Popen([rt.REDIS_SERVER, self.conf, "--sentinel"], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while True:
            assert self.proc.poll() is None, "sentinel exited: %s" % self.logtext()
            try:
                if self.cmd("PING") == "PONG":
                    break
            except OSError:
                pass
            assert time.time() < deadline, "sentinel not answering on port %d" % self.port
            time.sleep(0.05)

    def logtext(self):
        with open(os.path.join(self.dir, "sentinel.log"), errors="replace") as f:
            return f.read()

    def cmd(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            f = s.makefile("rb")
            if self.password:
                s.sendall(resp_encode(["AUTH", self.password]))
                resp_read(f)
            s.sendall(resp_encode(args))
            return resp_read(f)

    def master_port(self):
        return int(self.cmd("SENTINEL", "get-master-addr-by-name", NAME)[1])

    def cleanup(self):
        rt.stop_proc(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class FakeSentinel:
    """Answers SENTINEL get-master-addr-by-name with self.answer ((host, port) or None), PING with PONG."""

    def __init__(self):
        self.answer = None
        self.asked = 0
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    f = conn.makefile("rb")
                    while True:
                        args = resp_read(f)
                        if not isinstance(args, list):
                            break
                        word = [a.decode().lower() for a in args[:2]]
                        if word == ["sentinel", "get-master-addr-by-name"]:
                            self.asked += 1
                            a = self.answer
                            conn.sendall(b"*-1\r\n" if a is None else resp_encode([a[0], str(a[1])]))
                        else:
                            conn.sendall(b"+PONG\r\n")
                except (OSError, ConnectionError, RuntimeError):
                    pass

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.srv.close()


def gl(sentinels, options="", extra=""):
    return ('plugins = { "greylist" }\n%sgreylist {\n  backend = "redis"\n'
            '  redis_master_name = "%s"\n  redis_sentinels = { %s }\n'
            '  redis_connect_timeout = 300\n  redis_timeout = 300\n%s\n}\n'
            % (extra, NAME, ", ".join('"127.0.0.1:%d"' % p for p in sentinels), options))


def until(what, fn, timeout=20):
    """Poll FN until it returns a true value (bounded); that value."""
    t0 = time.time()
    deadline = t0 + timeout * pdtest.SLOW
    while True:
        try:
            v = fn()
        except (OSError, RuntimeError, ConnectionError, TypeError, IndexError):
            v = None
        if v:
            print("%.1f s until %s" % (time.time() - t0, what), flush=True)
            return v
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(0.1)


def role(r):
    return r.cmd("ROLE")[0].decode()


def ask_until_served(c, attrs, timeout=20):
    """Ask on client C until the answer is not on_error (bounded); the answer."""
    deadline = time.time() + timeout * pdtest.SLOW
    while True:
        got = c.ask(req(**attrs))
        if got != ONERR:
            return got
        assert time.time() < deadline, "still on_error after %ss" % timeout
        time.sleep(0.1)


# ---- tests ----

def test_failover_followed_without_restart():
    m = Redis(extra=FAST_SYNC).start()
    rep = Redis(extra=FAST_SYNC + ["--replicaof", "127.0.0.1", str(m.port)]).start()
    sn = None
    try:
        until("the replica to sync", lambda: rep.cmd("ROLE")[3] == b"connected")
        sn = Sentinel(m.port, password="sentinel-secret")
        until("the sentinel to know the replica",
              lambda: any(b"slave" == dict(zip(x[::2], x[1::2]))[b"flags"]
                          for x in sn.cmd("SENTINEL", "replicas", NAME)))
        # a wrong password for the sentinels: no master, on_error
        bad = pdtest.daemon(gl([sn.port], 'redis_sentinel_password = "wrong"', extra='on_error = "%s"\n' % ONERR))
        assert bad.ask(req()) == ONERR
        bad.wait_log("redis down: master %s: no sentinel named the master (last, 127.0.0.1:%d: AUTH: WRONGPASS"
                     % (NAME, sn.port))
        bad.stop()
        dead = pdtest.free_port()  # no sentinel there: asked first, skipped
        d = pdtest.daemon(gl([dead, sn.port], 'delay = 2\nadd_header = true\nredis_sentinel_password = "sentinel-secret"',
                             extra='on_error = "%s"\n' % ONERR))
        d.wait_log('store "default/greylist": Redis through Sentinel')  # the instance's own store
        c = d.client()
        a = dict(client_address="192.0.2.80", sender="s@sender.example", recipient="a@example.test")
        b = dict(client_address="192.0.2.81", sender="s@sender.example", recipient="b@example.test")
        assert c.ask(req(instance="a1", **a)) == "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in 2 seconds"
        d.wait_log("redis master %s at 127.0.0.1:%d (from sentinel 127.0.0.1:%d)" % (NAME, m.port, sn.port))
        rt.sleep_past(2)
        got = c.ask(req(instance="a2", **a))
        assert got.startswith("PREPEND X-Greylist: delayed "), got
        assert c.ask(req(instance="b1", **b)).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")
        b_asked = time.time()
        assert len(rt.triplet_keys(m)) == 2, m.keys(b"pdgl:")
        # every write acknowledged by the replica before the failover
        assert m.cmd("WAIT", "1", "5000") == 1
        # a forced failover: the replica becomes the master, the old master a replica (READONLY
        # on the daemon's pooled connections to it)
        until("the sentinel to start a failover", lambda: sn.cmd("SENTINEL", "failover", NAME) == "OK")
        until("the sentinel to name the new master", lambda: sn.master_port() == rep.port, 30)
        until("the replica to be promoted", lambda: role(rep) == "master")
        # the sentinel demotes the old master when it next looks at it (up to 10 s later):
        # do it now as the sentinel would, so that the test does not wait
        assert m.cmd("REPLICAOF", "127.0.0.1", str(rep.port)) == "OK"
        until("the old master to be demoted", lambda: role(m) == "slave", 30)
        # the same daemon, no restart: the passed triplet still passes, the pending one is
        # known (its delay is over: it passes now), a new one is greylisted on the new master
        # the pooled connection to the old master gets READONLY: closed, the sentinels asked,
        # the command retried at once on the new master (no request fails)
        got = c.ask(req(instance="a3", **a))
        assert got == "DUNNO", got
        time.sleep(max(0, b_asked + 2.05 - time.time()))
        got = c.ask(req(instance="b2", **b))
        assert got.startswith("PREPEND X-Greylist: delayed "), got
        n = dict(client_address="192.0.2.82", sender="s@sender.example", recipient="n@example.test")
        assert c.ask(req(instance="n1", **n)).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")
        n_asked = time.time()
        assert len(rt.triplet_keys(rep)) == 3, rep.keys(b"pdgl:")
        log = d.wait_log("redis master %s at 127.0.0.1:%d (from sentinel 127.0.0.1:%d)"
                         % (NAME, rep.port, sn.port))
        assert log.count("redis master %s at " % NAME) == 2, log[-3000:]
        assert "redis down:" not in log, log[-3000:]
        # a second failover, the hard way: the new master is killed; the sentinel promotes the
        # old one (a replica again) after down-after-milliseconds; requests get on_error meanwhile
        until("the old master to sync from the new one", lambda: m.cmd("ROLE")[3] == b"connected")
        assert rep.cmd("WAIT", "1", "5000") == 1
        rep.kill()
        time.sleep(max(0, n_asked + 2.05 - time.time()))
        got = ask_until_served(c, dict(instance="n2", **n), 40)
        assert got.startswith("PREPEND X-Greylist: delayed "), got  # n's pending record survived
        assert role(m) == "master" and sn.master_port() == m.port
        d.wait_log("redis down: master %s at 127.0.0.1:%d" % (NAME, rep.port))
        log = d.wait_log("redis up again: master %s at 127.0.0.1:%d" % (NAME, m.port))
        assert log.count("redis master %s at " % NAME) == 3, log[-3000:]
        assert log.count("redis down:") == 1, log[-3000:]
        assert d.alive()
        # the administration command finds the master through the sentinels too
        p = subprocess.run([os.path.join(pdtest.BUILDDIR, "policyd-greylist"), "-c", d.conf, "stats"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and "greylisted: 0\npassed: 3\n" in p.stdout, p
        c.close()
        d.stop()
    finally:
        if sn:
            sn.cleanup()
        rep.cleanup()
        m.cleanup()


def test_role_checked_and_sentinels_asked_again():
    """A sentinel naming a replica: ROLE says "slave", on_error; once it names the master, served."""
    m = Redis(extra=FAST_SYNC).start()
    rep = Redis(extra=FAST_SYNC + ["--replicaof", "127.0.0.1", str(m.port)]).start()
    fake = FakeSentinel()
    try:
        until("the replica to sync", lambda: rep.cmd("ROLE")[3] == b"connected")
        fake.answer = ("127.0.0.1", rep.port)
        d = pdtest.daemon(gl([fake.port], "delay = 2", extra='on_error = "%s"\n' % ONERR))
        c = d.client()
        assert c.ask(req(client_address="192.0.2.90")) == ONERR
        d.wait_log("redis down: master %s at 127.0.0.1:%d: ROLE: a slave, not the master"
                   % (NAME, rep.port))
        # a sentinel that does not know the name (another daemon: one "down" line per outage)
        fake.answer = None
        d2 = pdtest.daemon(gl([fake.port], "delay = 2", extra='on_error = "%s"\n' % ONERR))
        assert d2.ask(req(client_address="192.0.2.90")) == ONERR
        d2.wait_log('redis down: master %s: no sentinel named the master (last, 127.0.0.1:%d: does not '
                    'know a master named "%s")' % (NAME, fake.port, NAME))
        d2.stop()
        # each reconnection (after the backoff) asks the sentinels again
        asked = fake.asked
        until("the daemon to ask the sentinel again",
              lambda: c.ask(req(client_address="192.0.2.91")) == ONERR and fake.asked > asked)
        assert not rep.keys(b"pdgl:"), rep.keys(b"pdgl:")
        fake.answer = ("127.0.0.1", m.port)
        got = ask_until_served(c, dict(client_address="192.0.2.92"))
        assert got.startswith("DEFER_IF_PERMIT 4.2.0 Greylisted"), got
        d.wait_log("redis master %s at 127.0.0.1:%d (from sentinel 127.0.0.1:%d)" % (NAME, m.port, fake.port))
        d.wait_log("redis up again: master %s at 127.0.0.1:%d" % (NAME, m.port))
        log = d.log_text()
        assert log.count("redis down:") == 1, log[-3000:]
        assert len(rt.triplet_keys(m)) == 1, m.keys(b"pdgl:")
        c.close()
        d.stop()
    finally:
        fake.stop()
        rep.cleanup()
        m.cleanup()


def policyd_t(d, config):
    d.write_config(config)
    return subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)


def test_config_errors():
    d = pdtest.Daemon(gl([26379]))
    pdtest._daemons.append(d)
    p = policyd_t(d, gl([26379]))
    assert p.returncode == 0, p
    base = 'plugins = { "greylist" }\ngreylist {\n  backend = "redis"\n%s\n}\n'
    # sentinels without a master name: file:line of the section (the core checks the store
    # settings of the section once it is parsed, and names the section's line)
    p = policyd_t(d, base % '  redis_sentinels = { "127.0.0.1:26379" }')
    line = d.base_config().count("\n") + 4
    m = re.search(re.escape(d.conf) + r":(\d+): .*redis sentinels need the master's name", p.stderr)
    assert p.returncode != 0 and m and line - 2 <= int(m.group(1)) <= line + 2, p
    # in any order: the name after the list is fine
    p = policyd_t(d, base % '  redis_sentinels = { "127.0.0.1:26379" }\n  redis_master_name = "x"')
    assert p.returncode == 0, p
    p = policyd_t(d, base % '  redis_master_name = ""')
    assert p.returncode != 0 and "redis_master_name: must not be empty (1 to 127 characters" in p.stderr, p
    p = policyd_t(d, base % '  redis_master_name = "a b"\n')
    assert p.returncode != 0 and "redis_master_name" in p.stderr, p
    for bad in ("a:b:c", "unix:/tmp/s", "127.0.0.1:0", "[::1"):
        p = policyd_t(d, base % ('  redis_master_name = "m"\n  redis_sentinels = { "127.0.0.1:1", "%s" }' % bad))
        assert p.returncode != 0 and "%s:%d:" % (d.conf, line - 2) in p.stderr and 'redis sentinel "' in p.stderr, (bad, p)
    p = policyd_t(d, base % ('  redis_master_name = "m"\n  redis_sentinels = { %s }'
                             % ", ".join('"127.0.0.1:%d"' % (1 + i) for i in range(9))))
    assert p.returncode != 0 and "at most 8 redis sentinels" in p.stderr, p
    p = policyd_t(d, base % '  redis_master_name = "m"\n  redis_sentinels = { "[::1]:26380", "sentinel-1.example" }\n'
                  '  redis_sentinel_password = "secret"')
    assert p.returncode == 0, p


if __name__ == "__main__":
    if not rt.REDIS_SERVER:
        print("SKIP: redis-server is not installed")
        raise SystemExit(77)
    if not rt.built_with_hiredis():
        print("SKIP: built without hiredis")
        raise SystemExit(77)
    pdtest.run(globals())
