# behaviour.py - the spf plugin's actions, headers, options and cache through the policy protocol
# SPDX-License-Identifier: BSD-2-Clause
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spftest  # noqa: E402

ZONE = {
    'pass.example': [{'TXT': 'v=spf1 ip4:192.0.2.0/24 -all'}],
    'fail.example': [{'TXT': 'v=spf1 -all exp=why.fail.example'}],
    'why.fail.example': [{'TXT': '%{i} may not send for %{d}'}],
    'soft.example': [{'TXT': 'v=spf1 ~all'}],
    'neutral.example': [{'TXT': 'v=spf1 ?all'}],
    'redir.example': [{'TXT': 'v=spf1 ip4:203.0.113.1 redirect=%{d2}.target.example'}],
    'redir.example.target.example': [{'TXT': 'v=spf1 ip4:192.0.2.0/28 a:nothing.example ~all'}],
    'falloff.example': [{'TXT': 'v=spf1 ip4:203.0.113.1'}],
    'broken.example': [{'TXT': 'v=spf1 ip4:192.0.2.300 -all'}],
    'timeout.example': [{'TXT': 'v=spf1 include:t.timeout.example -all'}],
    't.timeout.example': ['TIMEOUT'],
    'nospf.example': [{'TXT': 'just text'}],
    'mail.pass.example': [{'TXT': 'v=spf1 a -all'}, {'A': '192.0.2.1'}],
    'badhelo.example': [{'TXT': 'v=spf1 -all'}],
    'trusted.example': [{'TXT': 'v=spf1 ip4:198.51.100.0/24 -all'}],
    'v6.example': [{'TXT': 'v=spf1 ip6:2001:db8::/32 -all'}],
    # more than 4096 bytes of TXT: the UDP answer is truncated, the plugin retries over TCP
    'big.example': [{'TXT': 'filler %02d ' % i + 'x' * 240} for i in range(20)]
    + [{'TXT': 'v=spf1 ip4:192.0.2.1 -all'}],
}

BASE = 'receiver = "mx.receiver.example"\ndns_timeout = 3\n'
DNS = None


def dns():
    global DNS
    if DNS is None:
        import spfzone
        DNS = spfzone.ZoneServer(ttl=300)
        DNS.set_zone(ZONE)
    return DNS


def server(extra=''):
    dns()
    return spftest.Server(BASE + extra)


def ask(srv, **over):
    c = srv.client()
    try:
        return c.ask(spftest.req(**over))
    finally:
        c.close()


def test_fail_rejects_with_explanation():
    s = server()
    try:
        a = ask(s, sender='bob@fail.example', client_address='192.0.2.1')
        assert a == '550 5.7.23 192.0.2.1 may not send for fail.example', a
    finally:
        s.stop()


def test_pass_header_rfc7208_form():
    s = server()
    try:
        a = ask(s, sender='bob@pass.example', client_address='192.0.2.1', helo_name='mail.pass.example')
        m = re.match(r'PREPEND Received-SPF: pass \((.*?)\) (.*)$', a)
        assert m, a
        kv = dict(re.findall(r'([a-z-]+)=("[^"]*"|[^;]*);', m.group(2)))
        assert kv['receiver'] == 'mx.receiver.example', kv
        assert kv['client-ip'] == '192.0.2.1', kv
        assert kv['envelope-from'] == '"bob@pass.example"', kv
        assert kv['helo'] == '"mail.pass.example"', kv
        assert kv['identity'] == 'mailfrom', kv
        assert kv['mechanism'] == '"ip4:192.0.2.0/24"', kv
        assert 'designates 192.0.2.1' in m.group(1), m.group(1)
    finally:
        s.stop()


def test_ipv6_client():
    s = server()
    try:
        assert spftest.result_of(ask(s, sender='a@v6.example', client_address='2001:db8::25')) == 'pass'
        assert spftest.result_of(ask(s, sender='a@v6.example', client_address='2001:db9::25')) == 'fail'
    finally:
        s.stop()


def test_truncated_answer_tcp():
    s = server()
    try:
        a = ask(s, sender='x@big.example', client_address='192.0.2.1')
        assert a.startswith('PREPEND Received-SPF: pass'), a
    finally:
        s.stop()


def test_softfail_neutral_none_headers():
    s = server()
    try:
        for dom, want in (('soft.example', 'softfail'), ('neutral.example', 'neutral'),
                          ('nospf.example', 'none'), ('nxdomain.example', 'none')):
            a = ask(s, sender='x@' + dom, client_address='192.0.2.1')
            assert a.startswith('PREPEND Received-SPF: %s ' % want), (dom, a)
            mech = {'softfail': ' mechanism="~all";', 'neutral': ' mechanism="?all";'}.get(want)
            assert mech is None or mech in a, (dom, a)
    finally:
        s.stop()


def test_mechanism_through_redirect():
    """The matching term is named, also in a redirect target; "default" when none matched."""
    s = server('helo_check = false\n')
    try:
        a = ask(s, sender='x@redir.example', client_address='192.0.2.3')
        assert a.startswith('PREPEND Received-SPF: pass') and ' mechanism="ip4:192.0.2.0/28";' in a, a
        a = ask(s, sender='x@redir.example', client_address='192.0.2.200')
        assert a.startswith('PREPEND Received-SPF: softfail') and ' mechanism="~all";' in a, a
        a = ask(s, sender='x@falloff.example', client_address='192.0.2.200')
        assert a.startswith('PREPEND Received-SPF: neutral') and ' mechanism="default";' in a, a
    finally:
        s.stop()


def test_one_header_per_message():
    """Several recipients of one message (same instance): one check, one header."""
    s = server()
    try:
        before = dns().queries
        c = s.client()
        r = spftest.req(sender='bob@pass.example', client_address='192.0.2.9')
        first = c.ask(r)
        assert first.startswith('PREPEND Received-SPF: pass'), first
        after_first = dns().queries
        for rcpt in ('b@receiver.example', 'c@receiver.example'):
            r['recipient'] = rcpt
            assert c.ask(r) == 'DUNNO', 'header repeated for %s' % rcpt
        assert dns().queries == after_first, 'the message was checked again'
        assert after_first > before
        c.close()
    finally:
        s.stop()


def test_reject_repeats_for_each_recipient():
    s = server()
    try:
        c = s.client()
        r = spftest.req(sender='bob@fail.example', client_address='192.0.2.1')
        a1 = c.ask(r)
        r['recipient'] = 'other@receiver.example'
        assert c.ask(r) == a1 and a1.startswith('550 5.7.23'), a1
        c.close()
    finally:
        s.stop()


def test_null_sender_uses_helo():
    s = server()
    try:
        a = ask(s, sender='', helo_name='mail.pass.example', client_address='192.0.2.1')
        assert a.startswith('PREPEND Received-SPF: pass'), a
        assert 'postmaster@mail.pass.example' in a, a
        a = ask(s, sender='', helo_name='badhelo.example', client_address='192.0.2.1')
        assert a.startswith('550 5.7.23'), a
    finally:
        s.stop()


def test_helo_fail_rejects():
    s = server()
    try:
        a = ask(s, sender='bob@pass.example', helo_name='badhelo.example', client_address='192.0.2.1')
        assert a.startswith('550 5.7.23') and 'HELO' in a, a
        s2 = server('helo_check = false\n')
        try:
            a = ask(s2, sender='bob@pass.example', helo_name='badhelo.example',
                    client_address='192.0.2.1')
            assert a.startswith('PREPEND Received-SPF: pass'), a
        finally:
            s2.stop()
    finally:
        s.stop()


def test_permerror_default_and_reject_option():
    s = server()
    try:
        a = ask(s, sender='x@broken.example', client_address='192.0.2.1')
        assert a.startswith('PREPEND Received-SPF: permerror'), a
        assert 'problem=' in a, a
    finally:
        s.stop()
    s = server('mailfrom_permerror = "reject"\n')
    try:
        a = ask(s, sender='x@broken.example', client_address='192.0.2.1')
        assert a.startswith('550 5.7.24'), a
    finally:
        s.stop()


def test_temperror_default_and_header_option():
    s = server('dns_timeout = 1\n')
    try:
        a = ask(s, sender='x@timeout.example', client_address='192.0.2.1')
        assert a.startswith('DEFER_IF_PERMIT 4.7.24'), a
    finally:
        s.stop()
    s = server('dns_timeout = 1\nmailfrom_temperror = "header"\n')
    try:
        a = ask(s, sender='x@timeout.example', client_address='192.0.2.1')
        assert a.startswith('PREPEND Received-SPF: temperror'), a
    finally:
        s.stop()


def test_per_result_actions():
    s = server('mailfrom_softfail = "reject"\nmailfrom_fail = "defer"\nmailfrom_pass = "none"\n')
    try:
        assert ask(s, sender='x@soft.example', client_address='192.0.2.1').startswith('550 5.7.23')
        assert ask(s, sender='x@fail.example', client_address='192.0.2.1').startswith(
            'DEFER_IF_PERMIT 4.7.24')
        assert ask(s, sender='x@pass.example', client_address='192.0.2.1') == 'DUNNO'
    finally:
        s.stop()


def test_observe_mode():
    s = server('observe = true\n')
    try:
        a = ask(s, sender='bob@fail.example', client_address='192.0.2.1')
        assert a.startswith('PREPEND Received-SPF: fail'), a
        a = ask(s, sender='bob@pass.example', client_address='192.0.2.1')
        assert a.startswith('PREPEND Received-SPF: pass'), a
    finally:
        s.stop()


def test_skips():
    s = server('skip_helo = { "relay.partner.example", ".trusted.example" }\n'
               'whitelist = { "trusted.example" }\n')
    try:
        assert ask(s, sender='bob@fail.example', client_address='127.0.0.1') == 'DUNNO'
        assert ask(s, sender='bob@fail.example', client_address='::1') == 'DUNNO'
        assert ask(s, sender='bob@fail.example', client_address='192.0.2.1',
                   helo_name='relay.partner.example') == 'DUNNO'
        assert ask(s, sender='bob@fail.example', client_address='192.0.2.1',
                   helo_name='mx1.trusted.example') == 'DUNNO'
        # whitelist: trusted.example's SPF authorises 198.51.100.0/24
        assert ask(s, sender='bob@fail.example', client_address='198.51.100.5') == 'DUNNO'
        assert ask(s, sender='bob@fail.example', client_address='192.0.2.1').startswith('550 5.7.23')
    finally:
        s.stop()
    s = server('skip_localhost = false\n')
    try:
        # checked like any client (libspf2's own "localhost always passes" is not used)
        a = ask(s, sender='bob@fail.example', client_address='127.0.0.1')
        assert a.startswith('550 5.7.23'), a
    finally:
        s.stop()


def test_sasl_skipped_by_default():
    s = server()
    try:
        if s.kind != 'policyd':
            return  # skip_sasl is the core's filter: only the daemon has it
        assert ask(s, sender='bob@fail.example', client_address='192.0.2.1',
                   sasl_username='bob', sasl_method='PLAIN') == 'DUNNO'
    finally:
        s.stop()


def test_cache_saves_lookups():
    """Answers with TTL 300 are cached: a second message from the same domain costs no query."""
    s = server()
    try:
        ask(s, sender='a@soft.example', client_address='192.0.2.1')
        n = dns().queries
        a = ask(s, sender='b@soft.example', client_address='192.0.2.1')
        assert a.startswith('PREPEND Received-SPF: softfail'), a
        assert dns().queries == n, 'queries went from %d to %d' % (n, dns().queries)
        ask(s, sender='a@nxdomain.example', client_address='192.0.2.1')
        n = dns().queries
        ask(s, sender='b@nxdomain.example', client_address='192.0.2.1')
        assert dns().queries == n, 'negative answer not cached'
    finally:
        s.stop()
    s = server('cache_size = 0\n')
    try:
        ask(s, sender='a@soft.example', client_address='192.0.2.1')
        n = dns().queries
        ask(s, sender='b@soft.example', client_address='192.0.2.1')
        assert dns().queries > n, 'cache_size = 0 still cached'
    finally:
        s.stop()


def handoffs(s):
    """Requests the daemon's network threads handed to worker threads (SIGUSR1 stats)."""
    import signal
    n = s.pd.log_text().count('stats: policyd_requests_to_workers_total')
    s.pd.proc.send_signal(signal.SIGUSR1)
    text = s.pd.wait_log('stats: policyd_requests_to_workers_total', count=n + 1)
    return int(re.findall(r'stats: policyd_requests_to_workers_total (\d+)', text)[-1])


def test_spf_waits_for_dns_without_a_worker_thread():
    """An spf check never goes to a worker thread: an answer not in the cache is
    asked by the core's asynchronous DNS and the check runs again when it is in,
    on the network thread; a cached answer costs no query."""
    s = server('helo_check = false\n')
    try:
        a = ask(s, sender='a@soft.example', client_address='192.0.2.1')
        assert a.startswith('PREPEND Received-SPF: softfail'), a
        n = dns().queries
        a = ask(s, sender='b@soft.example', client_address='192.0.2.2', instance='other.1')
        assert a.startswith('PREPEND Received-SPF: softfail'), a
        assert dns().queries == n, (n, dns().queries)  # from the cache
        a = ask(s, sender='a@mail.pass.example', client_address='192.0.2.1', instance='other.2')
        assert spftest.result_of(a) == 'pass', a  # a new domain: asked, then evaluated
        a = ask(s, sender='z@mail.pass.example', client_address='192.0.2.9', instance='other.3')
        assert spftest.result_of(a) == 'fail', a  # a cached record can also say fail
        assert handoffs(s) == 0  # no worker thread, ever
        n = s.pd.log_text().count('spf: identity=mailfrom')
        assert n == 4, n  # one line per check, none for the passes that waited
    finally:
        s.stop()


def test_outcomes_remembered_while_their_answers_are_cached():
    """A check that the DNS cache answered whole is remembered (result_cache_size)
    until the first answer it used expires: the same client, HELO and sender then
    get it without evaluating again; a changed record is seen once the answer
    expires, as with the DNS cache alone; temperror is not remembered."""
    s = server('helo_check = false\ncache_max_ttl = 4\n')
    if s.pd is None:
        s.stop()
        print('SKIP part: needs the daemon (its log)')
        return
    mine = dict(sender='r@soft.example', client_address='192.0.2.7')
    lines = lambda: re.findall(r'spf: identity=mailfrom sender=<r@soft\.example>.*', s.pd.log_text())
    try:
        answers = [ask(s, **mine) for i in range(3)]
        assert answers[0].startswith('PREPEND Received-SPF: softfail'), answers[0]
        # a remembered outcome gives the same header, comment and mechanism included
        assert answers[1] == answers[0] and answers[2] == answers[0], answers
        s.pd.wait_log('sender=<r@soft.example>', count=3)
        # and a remembered fail the same explanation
        fails = [ask(s, sender='bob@fail.example', client_address='192.0.2.1') for i in range(2)]
        assert fails == ['550 5.7.23 192.0.2.1 may not send for fail.example'] * 2, fails
        s.pd.wait_log('sender=<bob@fail.example>', count=2)
        flines = re.findall(r'spf: identity=mailfrom sender=<bob@fail\.example>.*', s.pd.log_text())
        assert 'cached=yes' not in flines[0] and 'cached=yes' in flines[1], flines
        seen = lines()
        # 1: evaluated (its answers came from the network, and are cached now: kept), 2, 3: remembered
        assert len(seen) == 3 and 'cached=yes' not in seen[0] and 'cached=yes' in seen[1] + seen[2], seen
        zone = dict(ZONE)
        zone['soft.example'] = [{'TXT': 'v=spf1 ip4:192.0.2.7 -all'}]
        dns().set_zone(zone)
        n = dns().queries
        a = ask(s, **mine)
        assert a.startswith('PREPEND Received-SPF: softfail'), a  # the old answer is still cached
        assert dns().queries == n, (n, dns().queries)
        time.sleep(5.2)  # past cache_max_ttl: the answer and the outcome expire together
        a = ask(s, **mine)
        assert spftest.result_of(a) == 'pass', a
        s.pd.wait_log('sender=<r@soft.example>', count=5)
        assert 'cached=yes' not in lines()[-1], lines()[-1]
        # temperror (the DNS server answers SERVFAIL) is never remembered
        dns().mode = 'servfail'
        for i in range(2):
            a = ask(s, sender='t@neutral.example', client_address='192.0.2.7')
            assert spftest.result_of(a) == 'temperror', a
        s.pd.wait_log('sender=<t@neutral.example>', count=2)
        tlines = re.findall(r'sender=<t@neutral.*', s.pd.log_text())
        assert 'cached=yes' not in ''.join(tlines), tlines
    finally:
        dns().mode = 'normal'
        dns().set_zone(ZONE)
        s.stop()
    s = server('helo_check = false\nresult_cache_size = 0\n')
    try:
        for i in range(3):
            ask(s, **mine)
        s.pd.wait_log('sender=<r@soft.example>', count=3)
        assert len(lines()) == 3 and 'cached=yes' not in ''.join(lines()), lines()
    finally:
        s.stop()


def test_concurrent_checks():
    """8 connections x 25 messages at once: every answer right (thread safety)."""
    import threading
    cases = [('bob@pass.example', 'pass'), ('bob@fail.example', 'fail'),
             ('x@soft.example', 'softfail'), ('x@broken.example', 'permerror'),
             ('x@nospf.example', 'none'), ('x@big.example', 'pass')]
    s = server('helo_check = false\n')
    errors = []

    def worker(k):
        c = s.client()
        try:
            for i in range(25):
                sender, want = cases[(i + k) % len(cases)]
                got = spftest.result_of(c.ask(spftest.req(sender=sender, client_address='192.0.2.1')))
                if got != want:
                    errors.append((sender, want, got))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()
    try:
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert not errors, errors[:5]
    finally:
        s.stop()


def test_bad_options_refused():
    for bad in ('mailfrom_fail = "bounce"\n', 'dns_timeout = 0\n', 'timeout = 200\n', 'result_cache_size = -1\n'):
        try:
            s = server(bad)
        except (SystemExit, AssertionError):
            continue
        s.stop()
        raise AssertionError('accepted %r' % bad)


def test_client_data_is_escaped_in_the_log_line():
    """HELO and sender go into spf's log line escaped: no CR, TAB or ESC, no
    space that would start a forged field (issue 12.15)."""
    s = server()
    try:
        ask(s, sender='"a b\x1b[2J"@pass.example', client_address='192.0.2.1', helo_name='x\ry\tz.example')
        lines = [l for l in s.log_text().splitlines() if 'identity=mailfrom' in l]
        assert lines, s.log_text()[-2000:]
        line = lines[-1]
        assert 'helo=x\\x0dy\\x09z.example ' in line, line
        assert 'sender=<\\x22a\\x20b\\x1b[2J\\x22@pass.example>' in line, line
        assert '\x1b' not in line and '\r' not in line and '\t' not in line, line
    finally:
        s.stop()


if __name__ == '__main__':
    spftest.in_netns(__file__)
    spftest.run(globals())
