# pdtest.py - start the real policyd on real sockets and talk the policy protocol to it
# SPDX-License-Identifier: BSD-2-Clause
"""Helpers for daemon-level tests.

    d = Daemon(config='plugins = {"example"}\n')
    d.start()
    c = d.client()
    assert c.ask(req(recipient="policyblock@example.test")).startswith("REJECT")
    d.stop()
    run(globals())
"""
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

BUILDDIR = os.environ.get("PD_BUILDDIR", os.path.abspath("."))
SRCDIR = os.environ.get("PD_SRCDIR", os.path.abspath("."))
POLICYD = os.path.join(BUILDDIR, "policyd")
# PD_VALGRIND=1 runs every daemon under valgrind memcheck; errors fail the test
VALGRIND = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite"] if os.environ.get("PD_VALGRIND") == "1" else []
SLOW = 10 if VALGRIND else 1
FAKETIME = (glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1") + ["/usr/lib/faketime/libfaketimeMT.so.1"])[0]


class Skip(Exception):
    """Raised by skip(): the test cannot run here (exit status 77)."""


def skip(why):
    """Skip the current test with a reason."""
    raise Skip(why)


def plugin_path():
    """Colon-separated directories holding every built plugin .so."""
    dirs = sorted(glob.glob(os.path.join(BUILDDIR, "plugins", "*", ".libs")))
    dirs += sorted(glob.glob(os.path.join(BUILDDIR, "tests", "*", ".libs")))
    return ":".join(dirs)


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def req(**over):
    """A full, realistic Postfix 3.7 RCPT-stage request; keyword arguments override."""
    r = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": "192.0.2.10",
        "client_name": "mail.sender.example",
        "client_port": "45678",
        "reverse_client_name": "mail.sender.example",
        "server_address": "127.0.0.1",
        "server_port": "25",
        "helo_name": "mail.sender.example",
        "sender": "alice@sender.example",
        "recipient": "bob@example.test",
        "recipient_count": "0",
        "queue_id": "",
        "instance": "1a2b.5f2c3d4e.1e240.0",
        "size": "12345",
        "etrn_domain": "",
        "stress": "",
        "sasl_method": "",
        "sasl_username": "",
        "sasl_sender": "",
        "ccert_subject": "",
        "ccert_issuer": "",
        "ccert_fingerprint": "",
        "ccert_pubkey_fingerprint": "",
        "encryption_protocol": "TLSv1.3",
        "encryption_cipher": "TLS_AES_256_GCM_SHA384",
        "encryption_keysize": "256",
        "policy_context": "",
        "compatibility_level": "3.6",
        "mail_version": "3.7.11",
    }
    r.update({k: str(v) for k, v in over.items()})
    return r


def line_of(path, needle):
    """1-based number of the first line of PATH containing NEEDLE."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if needle in line:
                return n
    raise AssertionError("%r not in %s" % (needle, path))


def encode(attrs):
    """Bytes of one request."""
    return "".join("%s=%s\n" % kv for kv in attrs.items()).encode() + b"\n"


class Client:
    """A persistent connection, one request in flight, as Postfix does it."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def reply(self, timeout=20):
        """Read one reply; returns the action text. Raises on EOF or timeout."""
        self.sock.settimeout(timeout)
        while b"\n\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by policyd; had %r" % self.buf)
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\n\n", 1)
        lines = msg.decode("utf-8", "replace").split("\n")
        assert len(lines) == 1 and lines[0].startswith("action="), "bad reply %r" % msg
        return lines[0][len("action="):]

    def ask(self, attrs, timeout=20):
        """Send one request and return the action."""
        self.send(encode(attrs))
        return self.reply(timeout)

    def closed_by_peer(self, timeout=10):
        """True if policyd closes the connection (EOF or reset) within TIMEOUT."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class Daemon:
    """A policyd in the foreground with a generated config in a temp dir."""

    def __init__(self, config="", unix=False, verbose=1, listen=None, global_config=None, clock=False):
        self.dir = tempfile.mkdtemp(prefix="pdtest.")
        # CLOCK: the daemon's wall clock can be moved on (libfaketime, Debian
        # package libfaketime); its monotonic clock (timeouts) stays real
        self.clock = os.path.join(self.dir, "faketime") if clock else None
        if self.clock:
            if not os.path.exists(FAKETIME):
                skip("needs libfaketime (Debian package libfaketime) for a clock the test can move")
            self.advance(0)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.sock = os.path.join(self.dir, "policyd.sock") if unix else None
        self.state_dir = os.path.join(self.dir, "state")
        self.conf = os.path.join(self.dir, "policyd.conf")
        self.errfile = os.path.join(self.dir, "stderr.log")
        self.proc = None
        self.verbose = verbose
        self.listen = listen
        self.global_config = global_config
        self.write_config(config)

    def base_config(self):
        """The part of the config every test shares."""
        listen = ['"inet:127.0.0.1:%d"' % self.port]
        if self.sock:
            listen.append('"unix:%s"' % self.sock)
        if self.listen:
            listen = ['"%s"' % l for l in self.listen]
        text = "listen = { %s }\n" % ", ".join(listen)
        text += 'plugin_dir = "%s"\nstate_dir = "%s"\npidfile = ""\n' % (plugin_path(), self.state_dir)
        if os.geteuid() == 0:
            text += 'user = "root"\n'  # explicit, as policyd demands; tests that drop privileges set their own
        if self.global_config:
            text += self.global_config
        return text

    def write_config(self, config):
        """(Re)write the config file with CONFIG after the shared part."""
        with open(self.conf, "w") as f:
            f.write(self.base_config() + config)

    def advance(self, seconds):
        """Move the daemon's wall clock SECONDS past the real one (in total, from its start)."""
        self.offset = getattr(self, "offset", 0) + seconds
        with open(self.clock + ".new", "w") as f:
            f.write("%+ds\n" % self.offset)
        os.rename(self.clock + ".new", self.clock)

    def env(self):
        """The environment the daemon runs with."""
        env = dict(os.environ)
        if self.clock:
            env.update(LD_PRELOAD=FAKETIME, FAKETIME_TIMESTAMP_FILE=self.clock, FAKETIME_NO_CACHE="1",
                       FAKETIME_DONT_FAKE_MONOTONIC="1", ASAN_OPTIONS="verify_asan_link_order=0:"
                       + env.get("ASAN_OPTIONS", ""))
        return env

    def argv(self, *extra):
        return VALGRIND + [POLICYD, "-f", "-c", self.conf] + ["-v"] * self.verbose + list(extra)

    def start(self, wait=True):
        """Start policyd -f; wait until it says it is ready and accepts connections."""
        self.readies = self.log_text().count("ready (")  # a restart appends to the same log
        self.err = open(self.errfile, "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err,
                                     env=self.env())
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("policyd exited with %s:\n%s" % (self.proc.returncode, self.log_text()))
            if self.log_text().count("ready (") > getattr(self, "readies", 0):
                return
            time.sleep(0.02)
        raise AssertionError("policyd not ready after %ss:\n%s" % (timeout, self.log_text()))

    def connect(self):
        """A raw socket to the inet listener."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=20)

    def client(self, unix=False):
        """A persistent protocol client (inet, or the unix socket)."""
        if unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(20)
            s.connect(self.sock)
            return Client(s)
        return Client(self.connect())

    def ask(self, attrs):
        """One request on a fresh connection."""
        c = self.client()
        try:
            return c.ask(attrs)
        finally:
            c.close()

    def log_text(self):
        try:
            with open(self.errfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, needle, timeout=20, count=1):
        """Wait until NEEDLE appears COUNT times in the log; returns the log."""
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            text = self.log_text()
            if text.count(needle) >= count:
                return text
            time.sleep(0.02)
        raise AssertionError("%r not logged %d time(s) within %ss:\n%s" % (needle, count, timeout, self.log_text()[-4000:]))

    def reload(self, expect="reloaded "):
        """SIGHUP and wait for the outcome line EXPECT."""
        n = self.log_text().count(expect)
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log(expect, count=n + 1)

    def worker_pid(self, timeout=10):
        """The serving process: the master's child (supervise = true), else the daemon itself."""
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            try:
                with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                    kids = f.read().split()
            except FileNotFoundError:
                kids = []
            if kids:
                return int(kids[0])
            if "supervise = false" in open(self.conf).read():
                return self.proc.pid
            time.sleep(0.05)
        raise AssertionError("no worker process under %d" % self.proc.pid)

    def rss_kb(self):
        with open("/proc/%d/status" % self.worker_pid()) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, check=True):
        """SIGTERM; wait for a clean exit (status 0) unless CHECK is false."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("policyd did not stop on SIGTERM:\n" + self.log_text()[-4000:])
        if check and self.proc:
            log = self.log_text()
            assert self.proc.returncode == 0, "policyd exit status %s:\n%s" % (self.proc.returncode, log[-4000:])
            assert "stopped" in log
            for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "== Invalid"):
                assert bad not in log, "sanitizer/valgrind report in the daemon log:\n" + log[-6000:]

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if hasattr(self, "err"):
            self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)


_daemons = []


def daemon(config="", **kw):
    """A started Daemon that run() cleans up after the test."""
    d = Daemon(config, **kw)
    _daemons.append(d)
    return d.start()


def _stop_all():
    """Every daemon still running must stop cleanly: no crash, no leak or sanitizer report."""
    for d in _daemons:
        if d.alive():
            d.stop()


def run(namespace):
    """Run every test_* function of NAMESPACE; print 'N passed, N failed'; exit."""
    tests = [(n, f) for n, f in sorted(namespace.items()) if n.startswith("test_") and callable(f)]
    only = os.environ.get("PD_TEST_ONLY")
    passed = failed = skipped = 0
    for name, fn in tests:
        if only and only not in name:
            continue
        t0 = time.time()
        ok = True
        try:
            fn()
            _stop_all()
            print("PASS %s (%.1fs)" % (name, time.time() - t0), flush=True)
            passed += 1
        except Skip as e:
            print("SKIP %s: %s" % (name, e), flush=True)
            skipped += 1
        except Exception:
            ok = False
            print("FAIL %s" % name, flush=True)
            traceback.print_exc(file=sys.stdout)
            failed += 1
        while _daemons:
            d = _daemons.pop()
            if not ok and d.proc is not None:
                print("--- policyd log (%s) ---\n%s" % (d.dir, d.log_text()[-3000:]))
            d.cleanup()
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    if failed:
        sys.exit(1)
    if skipped and not passed:
        sys.exit(77)
    sys.exit(0)
