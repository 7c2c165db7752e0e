# score.py - the score plugin after dnsbl and helo: thresholds highest first, one header per message
# SPDX-License-Identifier: BSD-2-Clause
"""dnsbl 3.25 + helo 2 reach 5: DEFER_IF_PERMIT; 15 and more: REJECT; below:
one X-Policyd-Score header for the first recipient of a message (Postfix's
instance), none for its later recipients, one again for the next message;
each recipient's request is scored afresh, never summed across them."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'dnsbl'))
import dnsbltest  # noqa: E402

dnsbltest.in_netns(__file__)
import pdtest  # noqa: E402
from pdtest import req  # noqa: E402

Z = dnsbltest.zones()
Z.zone('bl.test', {'10.2.0.192': '127.0.0.10', '11.2.0.192': '127.0.0.2'})
Z.host('mail.sender.example', a=['192.0.2.10', '192.0.2.11', '192.0.2.12'])

CONF = '''plugins = { "dnsbl", "helo", "score" }
dnsbl {
  skip_networks = {}
  reject_score = 0
  timeout = 2
  zone "bl.test" { codes = { "127.0.0.2-127.0.0.3=14", "127.0.0.10-127.0.0.11=3.25" } }
}
helo {
  skip_networks = {}
  hrp_limit = 0
  reject_score = 0
  not_fqdn_score = 2
  match_score = 0
  name_match_score = 0
}
score {
  skip_networks = {}
  thresholds = { "5=DEFER_IF_PERMIT 4.7.1 Score %s too high, try later", "15=REJECT 5.7.1 Score %s: spam" }
}
'''


def test_dnsbl_and_helo_reach_the_defer_threshold():
    d = dnsbltest.daemon(CONF)
    a = d.ask(req(client_address='192.0.2.10', helo_name='nodot'))
    assert a == 'DEFER_IF_PERMIT 4.7.1 Score 5.25 too high, try later', a
    log = d.wait_log('score 5.25 >= 5')
    assert 'dnsbl:bl.test=3.25 helo:not_fqdn=2.00' in log, log
    # either alone stays below: a header
    a = d.ask(req(client_address='192.0.2.10', helo_name='mail.sender.example', instance='m2'))
    assert a == 'PREPEND X-Policyd-Score: 3.25 (dnsbl:bl.test=3.25)', a
    a = d.ask(req(client_address='192.0.2.12', helo_name='nodot', instance='m3'))
    assert a == 'PREPEND X-Policyd-Score: 2.00 (helo:not_fqdn=2.00)', a
    # the highest threshold first: 14 + 2 = 16
    a = d.ask(req(client_address='192.0.2.11', helo_name='nodot', instance='m4'))
    assert a == 'REJECT 5.7.1 Score 16.00: spam', a


def test_one_header_for_a_three_recipient_message():
    d = dnsbltest.daemon(CONF)
    c = d.client()
    got = [c.ask(req(client_address='192.0.2.12', helo_name='mail.sender.example', instance='AB12.1',
                     recipient='r%d@example.test' % i, recipient_count=str(i))) for i in range(3)]
    assert got[0] == 'PREPEND X-Policyd-Score: 0.00', got
    assert got[1:] == ['DUNNO', 'DUNNO'], got
    # the next message on the same connection gets its own header
    assert c.ask(req(client_address='192.0.2.12', helo_name='mail.sender.example', instance='AB12.2')) \
        == 'PREPEND X-Policyd-Score: 0.00'
    # each recipient is scored afresh: a listed client defers at every recipient, never 3 x 3.25
    got = [c.ask(req(client_address='192.0.2.10', helo_name='nodot', instance='AB12.3', recipient='r%d@x.test' % i))
           for i in range(3)]
    assert got == ['DEFER_IF_PERMIT 4.7.1 Score 5.25 too high, try later'] * 3, got
    c.close()


def test_bad_thresholds_are_refused_with_file_and_line():
    import subprocess
    for bad, why in (('"x=REJECT"', 'not a number'), ('"5=DUNNO"', 'must decide'), ('"5"', 'needs SCORE=ACTION'),
                     ('"5=REJECT %q"', 'unknown placeholder')):
        d = pdtest.Daemon(CONF.replace('thresholds = {', 'thresholds = { %s,' % bad))
        try:
            p = subprocess.run(d.argv('-t'), capture_output=True, text=True, timeout=30)
            out = p.stdout + p.stderr
            assert p.returncode != 0 and why in out and 'policyd.conf:' in out, out
        finally:
            d.cleanup()


if __name__ == '__main__':
    pdtest.run(globals())
