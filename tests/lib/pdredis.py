# pdredis.py - a private redis-server for daemon tests, and a raw RESP client
# SPDX-License-Identifier: BSD-2-Clause
"""Each test starts its own redis-server on a free loopback port (no
persistence, data in a temp dir) and stops it by PID."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pdtest

REDIS_SERVER = shutil.which("redis-server")


def built_with_hiredis():
    try:
        with open(os.path.join(pdtest.BUILDDIR, "config.h")) as f:
            return "#define HAVE_HIREDIS 1" in f.read()
    except OSError:
        return False


# ---- a private redis-server and a raw RESP client ----

def resp_encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def resp_read(f):
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [resp_read(f) for _ in range(n)]
    raise RuntimeError("bad RESP reply %r" % line)


def stop_proc(proc):
    """SIGTERM, wait up to 20 s, then SIGKILL (a server started by a test, stopped by its PID)."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Redis:
    """redis-server --port P on 127.0.0.1, without persistence, in a temp dir."""

    def __init__(self, port=None, extra=()):
        self.port = port or pdtest.free_port()
        self.dir = tempfile.mkdtemp(prefix="pdtest.redis.")
        self.proc = None
        self.extra = list(extra)  # more redis-server arguments (sentinel.py: --replicaof)

    def start(self):
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", self.dir,
                                      "--daemonize", "no"] + self.extra,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            assert self.proc.poll() is None, "redis-server exited: %s" % open(
                os.path.join(self.dir, "redis.log")).read()
            try:
                if self.cmd("PING") == "PONG":
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("redis-server not answering on port %d" % self.port)

    def cmd(self, *args):
        """One command on a fresh connection; the decoded reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(resp_encode(args))
            return resp_read(s.makefile("rb"))

    def keys(self, prefix=b"policyd:"):
        found, cur = [], b"0"
        while True:
            cur, batch = self.cmd("SCAN", cur, "MATCH", prefix + b"*", "COUNT", "1000")
            found += batch
            if cur == b"0":
                return found

    def kill(self):
        """SIGKILL: an outage without goodbye."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        stop_proc(self.proc)
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
