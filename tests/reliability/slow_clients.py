#!/usr/bin/env python3
# slow_clients.py - hold N connections to a policy server, each trickling one request at one byte per second
# SPDX-License-Identifier: BSD-2-Clause
"""Slow clients for tests/reliability/run.

    slow_clients.py -t 127.0.0.1:10023 [-n 100] [--source 127.0.0.2] [--rate 1] [--max-seconds 300]

Opens N connections (from --source, so that /proc/net/tcp can tell them
from other clients), then sends each one a full Postfix RCPT request one
byte per second (the clients are staggered over the first second). Every
second it prints one JSON status line on stdout:
    {"t": 12.0, "open": 100, "closed": 0, "errors": 0, "sent_min": 11, "sent_max": 12, "max_gap": 1.02}
open: connections not closed by the server nor failed; sent_*: bytes sent
per open connection; max_gap: the longest pause between two bytes of one
client (seconds), which shows they really trickle.
On "finish" read on stdin (or after --max-seconds, or at stdin EOF) every
open client sends the rest of its request at once and waits (10 s) for the
reply; then a final line {"final": true, "answered": K, ...} is printed and
the program exits 0 if all N were connected, stayed open and were answered,
1 otherwise.
"""
import argparse
import json
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pdtest  # noqa: E402  (req() and encode(): the realistic request)

CONNECT_TIMEOUT = 10.0
REPLY_TIMEOUT = 10.0


class Slow:
    """One slow client."""

    def __init__(self, i, data, start):
        self.i = i
        self.data = data
        self.sent = 0
        self.next = start  # when the next byte is due
        self.last = None  # when the last byte went out
        self.max_gap = 0.0
        self.closed = False  # by the server (EOF or reset)
        self.error = None
        self.sock = None
        self.reply = b""


def parse_target(text):
    """HOST:PORT -> (host, port)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit("slow_clients: target must be HOST:PORT, not %r" % text)
    return host, int(port)


def connect_all(args, target):
    """Open N blocking-connected, then non-blocking sockets; returns the clients."""
    clients = []
    now = time.monotonic()
    for i in range(args.n):
        attrs = pdtest.req(client_address="198.18.%d.%d" % (i // 250, i % 250 + 1),
                           sender="slow%03d@slow.example" % i, recipient="rcpt%03d@example.test" % i,
                           queue_id="SLOW%05d" % i)
        c = Slow(i, pdtest.encode(attrs), now + 1.0 + i / args.n / args.rate)
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if args.source:
                s.bind((args.source, 0))
            s.settimeout(CONNECT_TIMEOUT)
            s.connect(target)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            c.sock = s
        except OSError as e:
            c.error = "connect: %s" % e
        clients.append(c)
    return clients


def poll_closed(clients):
    """Mark clients whose server side closed (EOF, reset) or sent something early."""
    socks = {c.sock.fileno(): c for c in clients if c.sock and not c.closed and not c.error}
    if not socks:
        return
    r, _, _ = select.select(list(socks), [], [], 0)
    for fd in r:
        c = socks[fd]
        try:
            chunk = c.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError as e:
            c.closed, c.error = True, "recv: %s" % e
            continue
        if not chunk:
            c.closed = True
        else:
            c.reply += chunk  # an answer before the request is complete would be a server bug


def status(clients, t0, final=False):
    """The status dict over all clients."""
    live = [c for c in clients if c.sock and not c.closed and not c.error]
    st = {
        "t": round(time.monotonic() - t0, 2),
        "clients": len(clients),
        "open": len(live),
        "closed": sum(1 for c in clients if c.closed),
        "errors": sum(1 for c in clients if c.error),
        "sent_min": min((c.sent for c in live), default=0),
        "sent_max": max((c.sent for c in live), default=0),
        "max_gap": round(max((c.max_gap for c in live), default=0.0), 3),
        "early_replies": sum(1 for c in clients if c.reply and not final),
    }
    errs = [c.error for c in clients if c.error][:3]
    if errs:
        st["error_examples"] = errs
    return st


def trickle(clients, args, t0):
    """Send one byte per client per 1/rate seconds until "finish", stdin EOF or the time bound."""
    deadline = t0 + args.max_seconds
    next_status = time.monotonic() + 1.0
    stdin_open = True
    while time.monotonic() < deadline:
        now = time.monotonic()
        for c in clients:
            if not c.sock or c.closed or c.error or now < c.next:
                continue
            if c.sent >= len(c.data) - 1:  # keep the last byte: the request stays incomplete
                continue
            try:
                n = c.sock.send(c.data[c.sent:c.sent + 1])
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as e:
                c.error = "send: %s" % e
                continue
            if n == 1:
                if c.last is not None:
                    c.max_gap = max(c.max_gap, now - c.last)
                c.last = now
                c.sent += 1
                c.next += 1.0 / args.rate
        poll_closed(clients)
        if now >= next_status:
            print(json.dumps(status(clients, t0)), flush=True)
            next_status += 1.0
        if stdin_open:
            r, _, _ = select.select([sys.stdin], [], [], 0.02)
            if r:
                line = sys.stdin.readline()
                if not line or line.strip() == "finish":
                    return
        else:
            time.sleep(0.02)


def finish(clients):
    """Send every open client's remainder at once and wait for the replies."""
    live = [c for c in clients if c.sock and not c.closed and not c.error]
    for c in live:
        try:
            c.sock.setblocking(True)
            c.sock.sendall(c.data[c.sent:])
            c.sock.setblocking(False)
        except OSError as e:
            c.error = "send rest: %s" % e
    deadline = time.monotonic() + REPLY_TIMEOUT
    waiting = [c for c in live if not c.error]
    while waiting and time.monotonic() < deadline:
        r, _, _ = select.select([c.sock for c in waiting], [], [], 0.2)
        for s in r:
            c = next(x for x in waiting if x.sock is s)
            try:
                chunk = s.recv(4096)
            except OSError as e:
                c.error = "recv reply: %s" % e
                chunk = b""
            if not chunk:
                c.closed = True
            c.reply += chunk
        waiting = [c for c in waiting if b"\n\n" not in c.reply and not c.closed and not c.error]
    answered = [c for c in live if c.reply.startswith(b"action=") and b"\n\n" in c.reply]
    return answered


def main():
    """Parse the options, connect, trickle, finish; exit 0 if every client held on and was answered."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-t", "--target", required=True)
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--source", default="", help="local address to bind (e.g. 127.0.0.2)")
    ap.add_argument("--rate", type=float, default=1.0, help="bytes per second per client")
    ap.add_argument("--max-seconds", type=float, default=300.0)
    args = ap.parse_args()
    if not 1 <= args.n <= 10000 or not 0 < args.rate <= 1000 or not 0 < args.max_seconds <= 3600:
        raise SystemExit("slow_clients: -n 1..10000, --rate 0..1000, --max-seconds 0..3600")
    target = parse_target(args.target)
    t0 = time.monotonic()
    clients = connect_all(args, target)
    print(json.dumps(dict(status(clients, t0), connected=sum(1 for c in clients if c.sock))), flush=True)
    trickle(clients, args, t0)
    before = status(clients, t0)
    answered = finish(clients)
    replies = sorted({c.reply.split(b"\n")[0].decode("utf-8", "replace")[:80] for c in answered})
    final = dict(before, final=True, answered=len(answered), reply_examples=replies[:3])
    print(json.dumps(final), flush=True)
    for c in clients:
        if c.sock:
            c.sock.close()
    ok = before["open"] == args.n and before["early_replies"] == 0 and len(answered) == args.n
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
