# policystub.py - a minimal Postfix policy server, to test the pfharness wiring itself
# SPDX-License-Identifier: BSD-2-Clause
"""Threaded policy server: REJECT when the recipient contains MARKER, else DUNNO.

Not policyd: it exists so tests/e2e/harness_selftest.py can prove that the
private Postfix really consults a policy service (inet and unix) independently
of the daemon under test."""

import os
import socket
import sys
import threading


class PolicyStub:
    """Serve the policy protocol on inet 127.0.0.1:<free port> or a unix socket."""

    def __init__(self, marker="stubblock", unix_path=None):
        """Bind now; serve after start()."""
        self.marker = marker
        self.requests = []  # every request seen, as dicts
        self.lock = threading.Lock()
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix_path)
            os.chmod(unix_path, 0o666)
            self.path = unix_path
            self.port = None
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
            self.path = None
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        """Start the accept thread."""
        self.thread.start()
        return self

    def stop(self):
        """Stop accepting and close the listener."""
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def _accept(self):
        """Accept loop (polls the stop flag)."""
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def decide(self, req):
        """The stub's policy."""
        if self.marker in req.get("recipient", ""):
            return "REJECT stub policy refuses " + self.marker
        return "DUNNO"

    def _serve(self, conn):
        """Serve requests on one connection until EOF (bounded read size)."""
        conn.settimeout(60)
        buf = b""
        req = {}
        try:
            while len(buf) < 1 << 20:
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line:
                        k, _, v = line.decode("utf-8", "replace").partition("=")
                        req[k] = v
                        continue
                    with self.lock:
                        self.requests.append(req)
                    conn.sendall(("action=%s\n\n" % self.decide(req)).encode())
                    req = {}
        except OSError:
            return
        finally:
            conn.close()


def serve_stdio(marker="stubblock"):
    """Serve one connection on stdin/stdout (like policyd -s under spawn(8))."""
    stub = PolicyStub.__new__(PolicyStub)
    stub.marker = marker
    req = {}
    for raw in sys.stdin.buffer:
        line = raw.rstrip(b"\n").decode("utf-8", "replace")
        if line:
            k, _, v = line.partition("=")
            req[k] = v
            continue
        sys.stdout.write("action=%s\n\n" % stub.decide(req))
        sys.stdout.flush()
        req = {}


if __name__ == "__main__":
    serve_stdio(*sys.argv[1:2])
