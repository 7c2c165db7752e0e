# test-dns.py - make check: bench/spf-dns answers as documented (records, DNSBL zone, delay, silent mode); counts, not timings
# SPDX-License-Identifier: BSD-2-Clause
"""usage: test-dns.py SPF-DNS-BINARY  (prints 'N passed, N failed')"""

import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time

BIN = sys.argv[1]
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s %s" % (name, detail))


def query(qid, name, qtype):
    q = struct.pack(">HHHHHH", qid, 0x100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)


def parse(p):
    """(id, rcode, answer count, authority count, first answer's rdata)"""
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", p[:12])
    i = 12
    while p[i]:
        i += p[i] + 1
    i += 5
    rdata = b""
    if an:
        i += 2 + 8  # name pointer, type, class, ttl
        rdlen = struct.unpack(">H", p[i:i + 2])[0]
        rdata = p[i + 2:i + 2 + rdlen]
    return qid, flags & 15, an, ns, rdata


def start(*args):
    """spf-dns on a free loopback port; returns (process, port)"""
    for _ in range(20):
        port = random.randint(20000, 60000)
        pr = subprocess.Popen([BIN, "-q", "-t", "60"] + list(args) + ["127.0.0.1", str(port)],
                              stderr=subprocess.PIPE)
        time.sleep(0.2)
        if pr.poll() is None:
            return pr, port
    raise SystemExit("spf-dns does not start")


def room_for_answers(s):
    """a receive buffer for thousands of answers (beyond rmem_max as root)"""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
    except OSError:
        pass


def many():
    """how many queries can be in flight at once here: thousands as root,
    what a default receive buffer holds otherwise"""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    room_for_answers(s)
    n = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    s.close()
    return 3000 if n >= 4 << 20 else 100


def ask(port, qs, timeout=3.0):
    """send the queries at once; the answers by id"""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    room_for_answers(s)
    for i, (name, qtype) in enumerate(qs):
        s.sendto(query(i, name, qtype), ("127.0.0.1", port))
    got = {}
    s.settimeout(timeout)
    try:
        while len(got) < len(qs):
            p, _ = s.recvfrom(1024)
            a = parse(p)
            got[a[0]] = a
    except socket.timeout:
        pass
    s.close()
    return got


def stop(pr):
    pr.send_signal(signal.SIGTERM)
    err = pr.communicate(timeout=10)[1].decode()
    return err


pr, port = start("-z", "zen.test=127.0.0.2:30")
qs = [("2.0.0.127.zen.test", 1), ("1.0.0.127.zen.test", 1), ("example.org", 16),
      ("mx1.example.com", 1), ("mx1.example.com", 15), ("mx1.example.com", 28),
      ("2.0.0.127.ZEN.TEST", 16), ("25.2.0.192.in-addr.arpa", 12)]
a = ask(port, qs)
check("answered", len(a) == len(qs), str(a))
if len(a) == len(qs):
    check("listed test entry", a[0][1] == 0 and a[0][4] == bytes([127, 0, 0, 2]), str(a[0]))
    check("unlisted test entry", a[1][1] == 3 and a[1][2] == 0 and a[1][3] == 1, str(a[1]))
    check("spf txt", a[2][4][1:].startswith(b"v=spf1 "), str(a[2]))
    check("helo a", a[3][4] == bytes([192, 0, 2, 25]), str(a[3]))
    check("mx", a[4][1] == 0 and a[4][2] == 1, str(a[4]))
    check("aaaa", len(a[5][4]) == 16, str(a[5]))
    check("listed txt, any case", a[6][1] == 0 and a[6][2] == 1, str(a[6]))
    check("other type: empty", a[7][1] == 0 and a[7][2] == 0, str(a[7]))
# the listing is decided by the name: the same twice, about 30% in all
N = min(1000, many())
names = [("%d.%d.18.198.zen.test" % (i % 256, i // 256), 1) for i in range(N)]
a1, a2 = ask(port, names), ask(port, names)
check("%d answered twice" % N, len(a1) == len(a2) == N, "%d %d" % (len(a1), len(a2)))
check("repeated queries agree", all(a1[i][1] == a2[i][1] for i in a1 if i in a2))
listed = sum(1 for v in a1.values() if v[1] == 0)
check("about 30% listed", 0.2 * N < listed < 0.4 * N, str(listed))
err = stop(pr)
check("counters on exit", "queries=%d answered=%d dropped=0" % (2 * N + 8, 2 * N + 8) in err, err)

# with a delay: thousands in flight at once, all answered
pr, port = start("-D", "20", "-z", "zen.test=127.0.0.2:30")
M = many()
a = ask(port, [("n%d.example.org" % i, 16) for i in range(M)], timeout=5)
check("delayed: %d in flight answered" % M, len(a) == M, str(len(a)))
err = stop(pr)
check("delayed: counters", "answered=%d" % M in err and "max_in_flight=" in err, err)

# silent: nothing answered, everything counted as dropped
pr, port = start("-s")
a = ask(port, [("example.org", 16)] * 5, timeout=0.5)
check("silent: no answer", len(a) == 0, str(a))
err = stop(pr)
check("silent: counted dropped", "queries=5 answered=0 dropped=5" in err, err)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
