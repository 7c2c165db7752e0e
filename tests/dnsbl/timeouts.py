# timeouts.py - a silent dnsbl zone: every request answered within the section's timeout, the other zones count
# SPDX-License-Identifier: BSD-2-Clause
"""A zone whose server never answers: each request is answered no later than
the dnsbl section's timeout plus slack (2 s here, a correctness bound for a
loaded machine; PD_STRICT_TIMING=1 holds it to the issue's 0.5 s), the
answering zone still rejects, and after timeout_limit timeouts in a row the
silent zone is skipped (not asked) for timeout_skip. The dns { } deadline
is 10 s: a plugin that ignored its own timeout would take that long."""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsbltest  # noqa: E402

dnsbltest.in_netns(__file__)
import pdtest  # noqa: E402

TIMEOUT = 1
SLACK = 0.5 if os.environ.get('PD_STRICT_TIMING') == '1' else 2.0
Z = dnsbltest.zones()
Z.zone('bl.test', {'%d.2.0.192' % i: '127.0.0.2' for i in range(10, 40)})
Z.zone('silent.test', mode='silent')

CONF = ('plugins = { "dnsbl" }\ndnsbl {\n  skip_networks = {}\n  timeout = %d\n  reject_score = 1\n'
        '  timeout_limit = %%d\n  timeout_skip = 1h\n'
        '  zone "silent.test" { codes = { "127.0.0.2=1" } }\n'
        '  zone "bl.test" { codes = { "127.0.0.2=1" } }\n}\n' % TIMEOUT)


def test_silent_zone_bounded_and_the_other_zone_counts():
    d = dnsbltest.daemon(CONF % 1000)
    results = [None] * 8

    def one(i):
        results[i] = dnsbltest.timed_ask(d, client_address='192.0.2.%d' % (10 + i))

    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    slowest = max(r[0] for r in results)
    print('8 concurrent requests, slowest %.2f s (timeout %d s, bound %.1f s)' % (slowest, TIMEOUT, TIMEOUT + SLACK))
    for secs, action in results:
        assert action.startswith('554 ') and 'bl.test' in action, action
        assert secs <= TIMEOUT + SLACK, 'answered after %.2f s' % secs
    # one more, alone
    secs, action = dnsbltest.timed_ask(d, client_address='192.0.2.30')
    assert action.startswith('554 ') and secs <= TIMEOUT + SLACK, (secs, action)


def test_a_zone_that_keeps_timing_out_is_skipped():
    d = dnsbltest.daemon(CONF % 2, clock=True)
    for i in range(2):
        secs, action = dnsbltest.timed_ask(d, client_address='192.0.2.%d' % (31 + i))
        assert action.startswith('554 '), action
    d.wait_log('zone silent.test timed out 2 time(s) in a row: skipped for 3600 s')
    # (the resolver may still retry the earlier questions: count the new clients' names only)
    for i in range(3):
        secs, action = dnsbltest.timed_ask(d, client_address='192.0.2.%d' % (33 + i))
        assert action.startswith('554 '), action
    for i in range(3):
        assert Z.queries('%d.2.0.192.silent.test' % (33 + i)) == 0, 'a skipped zone was asked'
    # an hour later (the daemon's clock) it is asked again
    d.advance(3700)
    secs, action = dnsbltest.timed_ask(d, client_address='192.0.2.36')
    assert action.startswith('554 '), action
    assert Z.queries('36.2.0.192.silent.test') > 0


if __name__ == '__main__':
    pdtest.run(globals())
