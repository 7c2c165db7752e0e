# policyserver.py - a small Postfix policy server for the proxy tests: counts connections, records requests, misbehaves on demand
# SPDX-License-Identifier: BSD-2-Clause
"""PolicyServer(mode=...) listens on a loopback port (or a unix socket) in
threads of its own (PORT: that one, after an earlier server stopped)
and answers every request with `action`. Modes:
  "answer"       answer, keep the connection (as Postfix expects)
  "close_after"  answer, then close the connection (the proxy must reconnect)
  "garbage"      answer with a line that is not action=...
  "silent"       read the request and never answer
  "eof_second"   answer the first request of a connection; read the second
                 and close without answering (an idle timeout that fires
                 just as the request comes)
  "reset_second" the same, closing with a reset (RST: SO_LINGER 0)
Every request received is kept in .requests (dicts, in order)."""
import os
import socket
import struct
import threading


class PolicyServer:
    def __init__(self, action="DUNNO", mode="answer", unix_path=None, port=0):
        self.action = action
        self.mode = mode
        self.requests = []
        self.accepted = 0
        self.lock = threading.Lock()
        self.conns = []
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix_path)
            os.chmod(unix_path, 0o666)
            self.address = "unix:" + unix_path
        else:
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", port))
            self.port = self.sock.getsockname()[1]
            self.address = "inet:127.0.0.1:%d" % self.port
        self.sock.listen(64)
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        served = 0
        try:
            while True:
                while b"\n\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                msg, buf = buf.split(b"\n\n", 1)
                attrs = {}
                for line in msg.decode("utf-8", "replace").split("\n"):
                    k, _, v = line.partition("=")
                    attrs[k] = v
                with self.lock:
                    self.requests.append(attrs)
                if self.mode == "silent":
                    continue
                if self.mode in ("eof_second", "reset_second") and served:
                    if self.mode == "reset_second":
                        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    c.close()
                    return
                served += 1
                if self.mode == "garbage":
                    c.sendall(b"hello there\n\n")
                    continue
                c.sendall(("action=%s\n\n" % self.action).encode())
                if self.mode == "close_after":
                    c.close()
                    return
        except OSError:
            return
        finally:
            try:
                c.close()
            except OSError:
                pass

    def stop(self):
        """Stop listening and close every connection."""
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                    c.close()
                except OSError:
                    pass
