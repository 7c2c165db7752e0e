# postgrey.py - the proxy plugin in front of a real, private Debian postgrey: its answers come through, its death is on_error within timeout
# SPDX-License-Identifier: BSD-2-Clause
"""postgrey (Debian package postgrey) is started by the test on a free
loopback port with its own database directory and empty whitelists, and
stopped by its PID. Skipped when postgrey is not installed."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pdtest
from pdtest import req

POSTGREY = shutil.which("postgrey") or "/usr/sbin/postgrey"
ONERR = "DEFER_IF_PERMIT 4.3.0 greylisting unavailable"
_procs = []


class Postgrey:
    """A private postgrey on 127.0.0.1:PORT, in the foreground (its PID is ours to stop)."""

    def __init__(self, delay=2, port=None):
        if not os.path.exists(POSTGREY):
            pdtest.skip("postgrey is not installed (Debian package postgrey)")
        self.dir = tempfile.mkdtemp(prefix="postgrey.")
        self.port = port or pdtest.free_port()
        for f in ("whitelist_clients", "whitelist_recipients"):
            open(os.path.join(self.dir, f), "w").close()
        argv = [POSTGREY, "--inet=127.0.0.1:%d" % self.port, "--dbdir=" + self.dir, "--delay=%d" % delay,
                "--auto-whitelist-clients=0", "--hostname=postgrey.test",
                "--whitelist-clients=" + os.path.join(self.dir, "whitelist_clients"),
                "--whitelist-recipients=" + os.path.join(self.dir, "whitelist_recipients")]
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgrey")
            argv += ["--user=postgrey", "--group=postgrey"]
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        _procs.append(self)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("postgrey exited: %s" % open(os.path.join(self.dir, "log")).read())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("postgrey did not listen on %d" % self.port)

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.proc.wait(30)

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def proxied(pg, timeout=2):
    return pdtest.daemon('on_error = "%s"\nplugins = { "proxy" }\nproxy {\n  server = "inet:127.0.0.1:%d"\n'
                         '  timeout = %d\n}\n' % (ONERR, pg.port, timeout))


def test_greylisting_comes_through():
    pg = Postgrey(delay=2)
    d = proxied(pg)
    c = d.client()
    r = req(client_address="192.0.2.55", sender="alice@sender.example", recipient="bob@example.test")
    first = c.ask(r)
    assert first.startswith("DEFER_IF_PERMIT 4.2.0 Greylisted"), first
    assert c.ask(r).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")  # an early retry
    time.sleep(3)  # postgrey's delay passes (it counts whole seconds)
    passed = c.ask(r)
    assert passed.startswith("PREPEND X-Greylist: delayed"), passed
    assert "proxy: server inet:127.0.0.1:%d answered: DEFER_IF_PERMIT 4.2.0 Greylisted" % pg.port in d.log_text()
    c.close()
    d.stop()


def test_postgrey_killed_is_on_error():
    pg = Postgrey(delay=300)
    d = proxied(pg)
    c = d.client()
    assert c.ask(req()).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")
    pg.kill()
    for i in range(3):
        assert c.ask(req(instance="after-kill-%d" % i)) == ONERR
    log = d.log_text()
    assert log.count("on_error applies until it answers again") == 1, log[-3000:]
    assert "no answer within its time budget" not in log  # answered by the proxy, not cut by the core
    # postgrey back on its port: answers come through again, on the same policyd connection
    pg2 = Postgrey(delay=300, port=pg.port)
    assert c.ask(req(client_address="192.0.2.77")).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")
    assert "answers again, after 3 failed request(s)" in d.log_text()
    # policyd first: postgrey (Net::Server) finishes its open connections before a SIGTERM ends it
    c.close()
    d.stop()
    pg2.kill(signal.SIGTERM)


def test_postgrey_hung_is_on_error_within_timeout():
    pg = Postgrey(delay=300)
    d = proxied(pg, timeout=2)
    c = d.client()
    assert c.ask(req()).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")
    pg.kill(signal.SIGSTOP)  # alive, connected, silent
    assert c.ask(req(instance="hung"), timeout=30) == ONERR
    log = d.wait_log("no answer within 1800 ms")
    # the proxy's own bound, below the core's cut at timeout (which closes the client's connection)
    assert "no answer within its time budget" not in log, log[-3000:]
    assert not c.closed_by_peer(timeout=0.5)
    pg.kill(signal.SIGCONT)
    # the connection that timed out was dropped; a new one works
    assert c.ask(req(client_address="192.0.2.88")).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")
    c.close()
    d.stop()


try:
    pdtest.run(globals())
finally:
    for p in _procs:
        p.cleanup()
