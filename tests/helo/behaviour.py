# behaviour.py - the helo plugin's own-name refusal and scored DNS checks through the policy protocol
# SPDX-License-Identifier: BSD-2-Clause
"""Our own names and the server address as HELO are refused; a bare IP, a
name that is not a FQDN, one that does not resolve, resolves elsewhere or
to the client, and a client name equal to the HELO score as configured; a
SERVFAIL or a timeout never counts against the sender. HRP is off here
(hrp_limit = 0): tests/helo/hrp.py covers it with the state service."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'dnsbl'))
import dnsbltest  # noqa: E402

dnsbltest.in_netns(__file__)
import pdtest  # noqa: E402
from pdtest import req  # noqa: E402

Z = dnsbltest.zones()
Z.host('good.example', a=['192.0.2.10'])
Z.host('v6.example', aaaa=['2001:db8::7'])
Z.host('other.example', a=['198.51.100.1'])
Z.host('broken.example', mode='servfail')
Z.host('slow.example', mode='silent')

# reject_score 1: every positive check alone rejects, and the reply names the score
SEC = ('plugins = { "helo" }\nhelo {\n  skip_networks = {}\n  hrp_limit = 0\n  timeout = 1\n  reject_score = 1\n'
       '  own_names = { "mx.example.test", "203.0.113.25" }\n'
       '  bare_ip_score = 2.5\n  not_fqdn_score = 2\n  unresolved_score = 1.5\n  mismatch_score = 1.25\n'
       '  match_score = -1\n  name_match_score = -0.5\n%s}\n')


def helo_ask(d, helo, **over):
    over.setdefault('client_name', 'unknown')
    return d.ask(req(helo_name=helo, **over))


def test_own_names_and_the_server_address_are_refused():
    d = dnsbltest.daemon(SEC % '')
    for helo in ('mx.example.test', 'MX.Example.Test.', '[203.0.113.25]', '203.0.113.25', '[127.0.0.1]'):
        a = helo_ask(d, helo, server_address='127.0.0.1')
        assert a.startswith('554 5.7.1 <') and 'you are not me' in a, (helo, a)
    d.wait_log('our own name or address')
    assert helo_ask(d, 'good.example', server_address='127.0.0.1') == 'DUNNO'


def test_scored_checks():
    d = dnsbltest.daemon(SEC % '')
    cases = [('192.0.2.99', '2.50'), ('localhost', '2.00'), ('nothing.example', '1.50'),
             ('other.example', '1.25'), ('[192.0.2.77]', '1.25')]
    for helo, score in cases:
        a = helo_ask(d, helo)
        assert a.startswith('554 5.7.1 <') and a.endswith('HELO score %s' % score), (helo, a)
    # resolves to the client (IPv4, IPv6), an address literal of the client: no positive score
    assert helo_ask(d, 'good.example') == 'DUNNO'
    assert helo_ask(d, 'v6.example', client_address='2001:db8::7') == 'DUNNO'
    assert helo_ask(d, '[192.0.2.10]') == 'DUNNO'
    log = d.wait_log('helo=<good.example>: score -1.00 (match=-1)')
    assert 'reject client [192.0.2.10] helo=<localhost>: score 2.00 >= reject_score 1.00 (not_fqdn=+2)' in log, log


def test_servfail_and_timeout_never_count():
    d = dnsbltest.daemon(SEC % '')
    assert helo_ask(d, 'broken.example') == 'DUNNO'
    assert helo_ask(d, 'slow.example') == 'DUNNO'
    log = d.log_text()
    assert 'helo=<broken.example>: score' not in log and 'helo=<slow.example>: score' not in log, log


def test_client_name_matching_the_helo_offsets():
    # other.example resolves elsewhere (+1.25), but it is the client's name (-0.5): 0.75 < 1
    d = dnsbltest.daemon(SEC % '')
    assert helo_ask(d, 'other.example', client_name='Other.Example') == 'DUNNO'
    d.wait_log('score 0.75 (mismatch=+1.25 name_match=-0.5)')


def test_reject_score_zero_only_adds():
    d = dnsbltest.daemon((SEC % '').replace('reject_score = 1', 'reject_score = 0'))
    assert helo_ask(d, '192.0.2.99') == 'DUNNO'
    d.wait_log('score 2.50 (bare_ip=+2.5)')


def test_bad_options_are_refused_with_file_and_line():
    import subprocess
    for bad, why in (('hrp_window = "7x"\n', 'not a duration'), ('own_names = { "a b" }\n', 'not a host name'),
                     ('own_text = "%q"\n', 'unknown placeholder'), ('hrp_limit = -1\n', 'hrp_limit')):
        d = pdtest.Daemon(SEC % bad)
        try:
            p = subprocess.run(d.argv('-t'), capture_output=True, text=True, timeout=30)
            out = p.stdout + p.stderr
            assert p.returncode != 0 and why in out and 'policyd.conf' in out, out
        finally:
            d.cleanup()


if __name__ == '__main__':
    pdtest.run(globals())
