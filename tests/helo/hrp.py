# hrp.py - HELO randomisation prevention and blocks of the helo plugin, on the state service
# SPDX-License-Identifier: BSD-2-Clause
"""The 11th distinct HELO from one client within hrp_window blocks it for
hrp_block (other clients unaffected, the block outlasts a HELO it used
before, and ends on time: the daemon's clock moved with libfaketime); one
HELO repeated never blocks; our own name as HELO is refused and, with
own_block, blocks the client. Skipped while the daemon has no state service."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'dnsbl'))
import dnsbltest  # noqa: E402

dnsbltest.in_netns(__file__)
import pdtest  # noqa: E402
from pdtest import req  # noqa: E402

Z = dnsbltest.zones()
SEC = ('plugins = { "helo" }\nhelo {\n  skip_networks = {}\n  reject_score = 0\n  timeout = 1\n'
       '  hrp_limit = 10\n  hrp_window = 7d\n  hrp_block = 1h\n  own_names = { "mx.example.test" }\n%s}\n')
BLOCKED = '554 5.7.1 Client host [%s] blocked: too many different HELO names'


def started(extra='', **kw):
    d = dnsbltest.daemon(SEC % extra, **kw)
    a = d.ask(req(client_address='198.51.100.250', helo_name='probe.example'))
    if 'state service is not available' in d.log_text():
        pdtest.skip('the daemon has no state service in this build')
    assert a == 'DUNNO', a
    return d


def helo(d, client, name, c=None):
    r = req(client_address=client, helo_name=name)
    return c.ask(r) if c else d.ask(r)


def test_eleventh_distinct_helo_blocks_the_client():
    d = started(clock=True)
    c = d.client()
    for i in range(10):
        assert helo(d, '192.0.2.50', 'h%d.example' % i, c) == 'DUNNO', i
    assert helo(d, '192.0.2.50', 'h10.example', c) == BLOCKED % '192.0.2.50'
    d.wait_log('reject client [192.0.2.50] helo=<h10.example>: 11 distinct HELO names within 604800 s (limit 10)')
    assert helo(d, '192.0.2.50', 'h0.example', c) == BLOCKED % '192.0.2.50'  # blocked, whatever the HELO
    assert helo(d, '192.0.2.51', 'h0.example', c) == 'DUNNO'  # another client
    c.close()
    d.advance(3700)  # past hrp_block: the client starts afresh
    assert helo(d, '192.0.2.50', 'h11.example') == 'DUNNO'


def test_one_helo_repeated_never_blocks():
    d = started()
    c = d.client()
    for i in range(40):
        assert helo(d, '192.0.2.60', 'same.example', c) == 'DUNNO', i
    c.close()


def test_own_name_refused_and_blocked_with_own_block():
    d = started('own_block = 2h\n', clock=True)
    a = helo(d, '192.0.2.70', 'mx.example.test')
    assert a == '554 5.7.1 <mx.example.test>: Helo command rejected: you are not me', a
    a = helo(d, '192.0.2.70', 'honest.example')
    assert a.endswith('you are not me'), a  # blocked for 2 h, with the text of its cause
    d.advance(2 * 3600 + 60)
    assert helo(d, '192.0.2.70', 'honest.example') == 'DUNNO'


if __name__ == '__main__':
    pdtest.run(globals())
