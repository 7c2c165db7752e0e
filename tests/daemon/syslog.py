# syslog.py - policyd's own syslog writer: RFC 3164 lines on a datagram socket, never blocking, drops counted
# SPDX-License-Identifier: BSD-2-Clause
import os
import re
import socket
import time

import pdtest
from pdtest import req

LINE = re.compile(r"^<(\d+)>([A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d) policyd\[(\d+)\]: (.*)$", re.S)


def sink(path):
    """A datagram socket bound at PATH, as a syslog daemon would."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)
    return s


def lines(s, want, timeout=10):
    """Datagrams from S until WANT(line) is true for one of them (or TIMEOUT); all lines read."""
    got = []
    deadline = time.time() + timeout * pdtest.SLOW
    while time.time() < deadline:
        s.settimeout(max(0.05, deadline - time.time()))
        try:
            got.append(s.recv(65536).decode("utf-8", "replace"))
        except socket.timeout:
            break
        if want(got[-1]):
            return got
    raise AssertionError("no wanted syslog line within %ss; got %d lines, last: %r" % (timeout, len(got), got[-3:]))


def drain(s):
    """Everything queued on S now."""
    got = []
    s.setblocking(False)
    try:
        while True:
            got.append(s.recv(65536).decode("utf-8", "replace"))
    except BlockingIOError:
        pass
    s.setblocking(True)
    return got


def daemon_with_sink(extra="", rcvbuf=None):
    """A daemon (not started) logging to a fresh sink in its directory: (daemon, sink, path)."""
    d = pdtest.Daemon("")
    pdtest._daemons.append(d)  # run() cleans its directory up
    path = os.path.join(d.dir, "log.sock")
    s = sink(path)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    d.write_config('syslog_socket = "%s"\n%splugins = { "example" }\n' % (path, extra))
    return d, s, path


def test_decisions_reach_the_syslog_socket_in_rfc3164_form():
    d, s, path = daemon_with_sink('syslog_facility = "local3"\n')
    d.start()
    try:
        assert d.ask(req(recipient="policyblock@x.example")).startswith("REJECT")
        got = lines(s, lambda l: "decision:" in l)
        m = LINE.match(got[-1])
        assert m, "not an RFC 3164 line: %r" % got[-1]
        assert int(m.group(1)) == 19 * 8 + 6, m.group(1)  # local3.info
        assert int(m.group(3)) == d.worker_pid(), (m.group(3), d.worker_pid())
        assert 'recipient=<policyblock@x.example>' in m.group(4) and 'plugin=example' in m.group(4), m.group(4)
        # startup lines came the same way, with the same framing
        assert all(LINE.match(l) for l in got), [l for l in got if not LINE.match(l)][:2]
    finally:
        d.stop()
        s.close()


def test_a_syslog_that_stops_reading_never_stalls_requests_and_drops_are_reported():
    d, s, path = daemon_with_sink(rcvbuf=4096)
    d.start()
    try:
        c = d.client()
        n = 3000  # far more lines than a 4 kB receive buffer (or the datagram queue) can hold
        for i in range(n):
            assert c.ask(req(recipient="u%d@x.example" % i)) == "DUNNO"
        # the lines come after the replies (and a slow daemon may still be sending
        # some): read what is queued, then ask once more and read up to its line
        queued = drain(s)
        assert c.ask(req(recipient="after@x.example")) == "DUNNO"
        seen = queued + lines(s, lambda l: "recipient=<after@x.example>" in l)
        notes = [int(m.group(1)) for m in (re.search(r": (\d+) earlier log line\(s\) dropped", l) for l in seen) if m]
        assert notes and sum(notes) > 0, "no drop reported: %d lines seen, last %r" % (len(seen), seen[-2:])
        decisions = len(set(l.split("recipient=<")[1].split(">")[0] for l in seen
                            if "decision:" in l and "recipient=<u" in l))
        assert decisions < n, "all %d lines arrived: the test did not fill the queue" % n
        assert decisions + sum(notes) >= n, (decisions, notes, n)  # every line arrived or was counted
        c.close()
    finally:
        d.stop()
        s.close()


def test_a_restarted_syslog_daemon_is_found_again():
    d, s, path = daemon_with_sink()
    d.start()
    try:
        c = d.client()
        c.ask(req(recipient="before@x.example"))
        lines(s, lambda l: "recipient=<before@x.example>" in l)
        s.close()
        os.unlink(path)
        s = sink(path)  # the syslog daemon restarted: a new socket at the same path
        deadline = time.time() + 10 * pdtest.SLOW
        found = False
        i = 0
        while time.time() < deadline and not found:  # reconnection is tried at most once a second
            i += 1
            c.ask(req(recipient="again%d@x.example" % i))
            found = any("recipient=<again" in l for l in drain(s))
            time.sleep(0.1)
        assert found, "no line reached the new socket within 10 s"
    finally:
        d.stop()
        s.close()


def test_reload_moves_syslog_to_another_socket():
    d = pdtest.Daemon("")
    pdtest._daemons.append(d)  # run() cleans its directory up
    p1, p2 = os.path.join(d.dir, "log1.sock"), os.path.join(d.dir, "log2.sock")
    s1, s2 = sink(p1), sink(p2)
    d.write_config('syslog_socket = "%s"\nplugins = { "example" }\n' % p1)
    d.start()
    try:
        d.ask(req(recipient="one@x.example"))
        lines(s1, lambda l: "recipient=<one@x.example>" in l)
        d.write_config('syslog_socket = "%s"\nplugins = { "example" }\n' % p2)
        d.reload()
        d.ask(req(recipient="two@x.example"))
        lines(s2, lambda l: "recipient=<two@x.example>" in l)
        assert not any("two@x.example" in l for l in drain(s1))
    finally:
        d.stop()
        s1.close()
        s2.close()


pdtest.run(globals())
