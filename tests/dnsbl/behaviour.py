# behaviour.py - the dnsbl plugin through the policy protocol, DNS from a zone server in a private netns
# SPDX-License-Identifier: BSD-2-Clause
"""Listings and codes, error codes, IPv6 nibbles, the sender-domain zone, a
DNSWL offsetting a listing, RFC 5782 canaries disabling a wildcard or dead
zone, SASL clients skipped, bad options refused with file:line."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsbltest  # noqa: E402

dnsbltest.in_netns(__file__)
import pdtest  # noqa: E402
from pdtest import req  # noqa: E402

Z = dnsbltest.zones()
Z.zone('bl.test', {'10.2.0.192': '127.0.0.2', '11.2.0.192': '127.255.255.254', '12.2.0.192': '127.0.0.99',
                   '13.2.0.192': '127.0.0.10',
                   # 2001:db8::5 in nibbles
                   '5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2': '127.0.0.4'})
Z.zone('wl.test', {'13.2.0.192': '127.0.0.3'})
Z.zone('rhs.test', {'spammer.example': '127.0.1.2'})
Z.zone('wild.test', mode='wildcard', answer='127.0.0.2')
Z.zone('dead.test', {'10.2.0.192': '127.0.0.2'}, canary=False)

BL = ('zone "bl.test" { type = "client"\n'
      '  codes = { "127.0.0.2-127.0.0.3=4.35", "127.0.0.4-127.0.0.7=5.5", "127.0.0.10-127.0.0.11=3.25" } }\n')
TEXT = 'reject_text = "554 5.7.1 Service unavailable; client [%a] blocked using %z"\n'


def conf(zones, extra=''):
    # the deadline for all zones: 2 s, longer under valgrind (its first
    # lookups, libunbound's start, took longer than 2 s there)
    return 'plugins = { "dnsbl" }\ndnsbl {\n  skip_networks = {}\n  timeout = %d\n  reject_score = 4\n%s%s%s}\n' % (
        2 * pdtest.SLOW, TEXT, zones, extra)


def test_listed_rejects_naming_the_zone():
    d = dnsbltest.daemon(conf(BL))
    a = d.ask(req(client_address='192.0.2.10'))
    assert a == '554 5.7.1 Service unavailable; client [192.0.2.10] blocked using bl.test', a
    log = d.wait_log('reject client [192.0.2.10]')
    assert 'bl.test=127.0.0.2(+4.35)' in log, log
    # an address that is not listed: DUNNO
    assert d.ask(req(client_address='192.0.2.20')) == 'DUNNO'


def test_error_code_and_unknown_code_never_hit_and_are_logged():
    # even under a codes range that covers all of 127/8 an error code is no listing
    d0 = dnsbltest.daemon(conf('zone "bl.test" { codes = { "127.0.0.0/8=5" } }\n'))
    assert d0.ask(req(client_address='192.0.2.11')) == 'DUNNO'
    log = d0.wait_log('answered 127.255.255.254')
    assert 'an error code' in log, log
    d = dnsbltest.daemon(conf(BL))
    assert d.ask(req(client_address='192.0.2.12')) == 'DUNNO'  # 127.0.0.99: in no range
    log = d.wait_log('answered 127.0.0.99')
    assert "in none of the zone's codes" in log, log
    assert 'reject client' not in log


def test_ipv6_client_asks_the_nibble_name():
    d = dnsbltest.daemon(conf(BL))
    a = d.ask(req(client_address='2001:db8::5'))
    assert a.startswith('554 5.7.1 ') and '[2001:db8::5]' in a and 'bl.test' in a, a
    assert Z.queries('5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test') >= 1


def test_sender_domain_zone():
    d = dnsbltest.daemon(conf('zone "rhs.test" { type = "sender_domain" codes = { "127.0.1.2-127.0.1.99=6" } }\n'))
    a = d.ask(req(sender='x@Spammer.Example'))
    assert a.startswith('554 ') and 'rhs.test' in a, a
    assert d.ask(req(sender='x@fine.example')) == 'DUNNO'
    assert d.ask(req(sender='')) == 'DUNNO'  # the null sender has no domain: nothing asked


def test_dnswl_offsets_a_listing():
    wl = 'zone "wl.test" { type = "client" codes = { "127.0.0.0/24=-5" } }\n'
    d = dnsbltest.daemon(conf(BL + wl))
    # 192.0.2.13: bl.test 127.0.0.10 (+3.25) and wl.test (-5): -1.75, passes
    assert d.ask(req(client_address='192.0.2.13')) == 'DUNNO'
    log = d.wait_log('listed: ')
    assert 'wl.test=127.0.0.3(-5)' in log and 'score -1.75' in log, log
    # without the allow list, 3.25 stays under 4, and with reject_score 3 it rejects
    d2 = dnsbltest.daemon(conf(BL, 'reject_score = 3\n'))
    assert d2.ask(req(client_address='192.0.2.13')).startswith('554 ')


def test_canary_disables_a_wildcard_zone():
    d = dnsbltest.daemon(conf('zone "wild.test" { codes = { "127.0.0.2=10" } }\n'))
    assert d.ask(req(client_address='192.0.2.30')) == 'DUNNO'
    log = d.wait_log('zone wild.test disabled')
    assert 'must never be listed' in log, log
    assert d.ask(req(client_address='192.0.2.31')) == 'DUNNO'


def test_canary_disables_a_zone_without_its_test_entry():
    d = dnsbltest.daemon(conf('zone "dead.test" { codes = { "127.0.0.2=10" } }\n'))
    assert d.ask(req(client_address='192.0.2.10')) == 'DUNNO'
    d.wait_log('zone dead.test disabled: its RFC 5782 test entry that must be listed is missing')
    # canary = false: the admin knows better; the listing counts
    d2 = dnsbltest.daemon(conf('zone "dead.test" { canary = false codes = { "127.0.0.2=10" } }\n'))
    assert d2.ask(req(client_address='192.0.2.10')).startswith('554 ')


def test_sasl_clients_are_skipped_by_default():
    d = dnsbltest.daemon(conf(BL))
    assert d.ask(req(client_address='192.0.2.10', sasl_username='alice')) == 'DUNNO'
    d2 = dnsbltest.daemon(conf(BL, 'skip_sasl = false\n'))
    assert d2.ask(req(client_address='192.0.2.10', sasl_username='alice')).startswith('554 ')


def test_bad_options_are_refused_with_file_and_line():
    for bad, why in (('zone "bl.test" { codes = { "127.0.0.2=x" } }\n', 'weight is not a number'),
                     ('zone "bl.test" { codes = { "127.0.0.9-127.0.0.2=1" } }\n', 'ends before it starts'),
                     ('zone "bl.test" { type = "sender" codes = { "127.0.0.2=1" } }\n', 'must be client'),
                     ('zone "bl.test" { }\n', 'codes missing'),
                     (BL + 'reject_text = "blocked %q"\n', 'unknown placeholder')):
        d = pdtest.Daemon(conf(bad))
        try:
            p = subprocess.run(d.argv('-t'), capture_output=True, text=True, timeout=30)
            out = p.stdout + p.stderr
            assert p.returncode != 0, out
            assert why in out, out
            assert 'policyd.conf:' in out, out
        finally:
            d.cleanup()


if __name__ == '__main__':
    pdtest.run(globals())
