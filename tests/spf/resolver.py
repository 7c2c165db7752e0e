# resolver.py - spf checks against a dead, silent or failing resolver stay within their deadline
# SPDX-License-Identifier: BSD-2-Clause
"""Each request must be answered (temperror: DEFER_IF_PERMIT 4.7.24) no later
than the configured per-check dns_timeout plus 2 s of slack: a correctness bound
(the plugin promises the deadline), generous enough for a loaded machine."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spftest  # noqa: E402

TIMEOUT = 2          # the plugin's per-check deadline in these tests (s)
BOUND = TIMEOUT + 2  # the longest any answer may take (s)
SECTION = 'dns_timeout = %d\nskip_localhost = false\nreceiver = "receiver.example"\n' % TIMEOUT


def ask_timed(srv, sender, results, i):
    c = srv.client()
    try:
        t = time.time()
        a = c.ask(spftest.req(sender=sender, client_address='192.0.2.%d' % (10 + i),
                              helo_name='mail%d.example.org' % i))
        results[i] = (time.time() - t, a)
    finally:
        c.close()


def concurrent(srv, n, sender):
    """N requests at once on N connections; returns [(seconds, action)]."""
    results = [None] * n
    ts = [threading.Thread(target=ask_timed, args=(srv, '%s%d@%s' % ('u', i, sender), results, i))
          for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert all(r is not None for r in results), 'a request got no answer: %r' % results
    return results


def check_bounded(results, what):
    print('%s: %d answers, slowest %.2f s (bound %d s)' % (what, len(results), max(r[0] for r in results), BOUND))
    for secs, action in results:
        assert action.startswith('DEFER_IF_PERMIT 4.7.24'), '%s: %r' % (what, action)
        assert secs <= BOUND, '%s: answered after %.2f s > %d s' % (what, secs, BOUND)


def test_dead_resolver():
    """Nothing listens on 127.0.0.1:53: ICMP refusals, temperror at once or by the deadline."""
    srv = spftest.Server(SECTION)
    try:
        check_bounded(concurrent(srv, 4, 'dead.example'), 'dead')
    finally:
        srv.stop()


def test_silent_resolver():
    """The server swallows every query: each of 6 concurrent checks ends by its deadline."""
    import spfzone
    dns = spfzone.ZoneServer()
    dns.mode = 'silent'
    srv = spftest.Server(SECTION)
    try:
        res = concurrent(srv, 6, 'silent.example')
        check_bounded(res, 'silent')
        assert dns.queries > 0, 'no query reached the silent server'
    finally:
        srv.stop()
        dns.close()


def test_servfail_resolver():
    """SERVFAIL answers: temperror, well within the deadline."""
    import spfzone
    dns = spfzone.ZoneServer()
    dns.mode = 'servfail'
    srv = spftest.Server(SECTION)
    try:
        check_bounded(concurrent(srv, 2, 'servfail.example'), 'servfail')
    finally:
        srv.stop()
        dns.close()


def test_slow_include_chain():
    """A record whose include times out: temperror within the bound, not a stall."""
    import spfzone
    dns = spfzone.ZoneServer()
    dns.set_zone({
        'slow.example': [{'TXT': 'v=spf1 include:a.slow.example include:b.slow.example -all'}],
        'a.slow.example': ['TIMEOUT'],
        'b.slow.example': ['TIMEOUT'],
    })
    srv = spftest.Server(SECTION)
    try:
        check_bounded(concurrent(srv, 3, 'slow.example'), 'slow include')
    finally:
        srv.stop()
        dns.close()


def test_other_clients_not_stalled():
    """While checks wait on a silent resolver, a skipped client is answered at once."""
    import spfzone
    dns = spfzone.ZoneServer()
    dns.mode = 'silent'
    srv = spftest.Server('dns_timeout = %d\nreceiver = "receiver.example"\n' % TIMEOUT)
    try:
        results = [None] * 4
        ts = [threading.Thread(target=ask_timed, args=(srv, 'x%d@silent.example' % i, results, i))
              for i in range(4)]
        for t in ts:
            t.start()
        time.sleep(0.3)
        c = srv.client()
        t0 = time.time()
        a = c.ask(spftest.req(client_address='127.0.0.1'))  # skip_localhost: no DNS at all
        quick = time.time() - t0
        c.close()
        for t in ts:
            t.join(60)
        assert a == 'DUNNO', a
        # the waiting checks hold at most 4 of the daemon's 8 threads
        assert quick < BOUND, 'localhost answered after %.2f s' % quick
        check_bounded(results, 'silent')
    finally:
        srv.stop()
        dns.close()


if __name__ == '__main__':
    spftest.in_netns(__file__)
    spftest.run(globals())
