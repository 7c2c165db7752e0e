# pdpostgrey.py - a private Debian postgrey for the tests: free loopback port, own database dir, empty whitelists, stopped by its PID
# SPDX-License-Identifier: BSD-2-Clause
"""Used by tests/proxy/postgrey.py (policyd's proxy in front of it) and
tests/greylist/postgrey.py (policyd's greylist beside it). A test that
finds no postgrey (Debian package postgrey, installed by
tools/install-deps) is skipped."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pdtest

POSTGREY = shutil.which("postgrey") or "/usr/sbin/postgrey"
_procs = []


class Postgrey:
    """A private postgrey on 127.0.0.1:PORT in the foreground with OPTIONS
    (e.g. ["--delay=3"]) after the common ones; its PID is ours to stop."""

    def __init__(self, options, port=None):
        if not os.path.exists(POSTGREY):
            pdtest.skip("postgrey is not installed (Debian package postgrey)")
        self.dir = tempfile.mkdtemp(prefix="postgrey.")
        self.port = port or pdtest.free_port()
        for f in ("whitelist_clients", "whitelist_recipients"):
            open(os.path.join(self.dir, f), "w").close()
        argv = [POSTGREY, "--inet=127.0.0.1:%d" % self.port, "--dbdir=" + self.dir, "--hostname=postgrey.test",
                "--whitelist-clients=" + os.path.join(self.dir, "whitelist_clients"),
                "--whitelist-recipients=" + os.path.join(self.dir, "whitelist_recipients")] + list(options)
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

    def client(self):
        return pdtest.Client(socket.create_connection(("127.0.0.1", self.port), timeout=20))

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.proc.wait(30)

    def stop(self):
        """SIGTERM (Net::Server finishes its open connections first: close ours before)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self.cleanup()

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(30)
        if not self.log.closed:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def cleanup_all():
    """Stop every postgrey still running (call at the end of a test file)."""
    for p in _procs:
        p.cleanup()
