# routing.py - chains chosen by recipient, sender, client, SASL and protocol state; DATA/EOM per message; atomic reload
# SPDX-License-Identifier: BSD-2-Clause
import os
import subprocess
import threading

import pdtest
from pdtest import req

# each chain's only plugin answers with the chain's name
RULES = ('plugins = { "dflt" }\n'
         'chain "a" { plugins = { "ia" } recipients = { "@example.net" } }\n'
         'chain "b" { plugins = { "ib" } recipients = { "b@example.org", ".sub.example.com" } }\n'
         'fake "dflt" { action = "REJECT default" }\n'
         'fake "ia" { action = "REJECT a" }\n'
         'fake "ib" { action = "REJECT b" }\n')


def chain_of(d, **kw):
    return d.ask(req(**kw)).split(" ", 1)[1]


def test_two_domains_two_chains_and_the_forms():
    d = pdtest.daemon(RULES)
    assert chain_of(d, recipient="a@example.net") == "a"
    assert chain_of(d, recipient="<A@EXAMPLE.NET>") == "a"  # case and <> as Postfix may send them
    assert chain_of(d, recipient="a@sub.example.net") == "default"  # @domain: not its subdomains
    assert chain_of(d, recipient="b@example.org") == "b"
    assert chain_of(d, recipient="c@example.org") == "default"  # an address is that address only
    assert chain_of(d, recipient="x@y.sub.example.com") == "b"  # .domain: the subdomains ...
    assert chain_of(d, recipient="x@sub.example.com") == "default"  # ... not the domain itself
    assert chain_of(d, recipient="z@elsewhere.test") == "default"
    assert chain_of(d, recipient="") == "default"


def test_senders_clients_sasl_states_files_and_order():
    d = pdtest.Daemon("")
    with open(os.path.join(d.dir, "partners"), "w") as f:
        f.write("# partner domains\n@partner.test\nboss@corp.test\n")
    with open(os.path.join(d.dir, "nets"), "w") as f:
        f.write("198.51.100.0/24\n2001:db8:5::/48\n")
    d.write_config(
        'plugins = { "dflt" }\n'
        'chain "bounces" { plugins = { "i1" } senders = { "<>" } protocol_state = { "RCPT" } }\n'
        'chain "partners" { plugins = { "i2" } senders = { "./partners" } }\n'
        'chain "nets" { plugins = { "i3" } clients = { "192.0.2.128/25", "%s" } }\n'
        'chain "submission" { plugins = { "i4" } sasl = true }\n'
        'chain "both" { plugins = { "i5" } recipients = { "@both.test" } clients = { "203.0.113.0/24" } }\n'
        'chain "regex" { plugins = { "i6" } recipients = { "/^list-.*@/" } }\n'
        'fake "dflt" { action = "REJECT default" protocol_state = { "ALL" } }\n'
        'fake "i1" { action = "REJECT bounces" }\nfake "i2" { action = "REJECT partners" }\n'
        'fake "i3" { action = "REJECT nets" }\nfake "i4" { action = "REJECT submission" }\n'
        'fake "i5" { action = "REJECT both" }\nfake "i6" { action = "REJECT regex" }\n'
        % os.path.join(d.dir, "nets"))
    pdtest._daemons.append(d)
    d.start()
    assert chain_of(d, sender="") == "bounces"
    assert chain_of(d, sender="<>") == "bounces"
    assert chain_of(d, sender="", protocol_state="MAIL") == "default"  # its protocol_state is RCPT only
    assert chain_of(d, sender="x@partner.test") == "partners"  # from the relative file
    assert chain_of(d, sender="boss@corp.test") == "partners"
    assert chain_of(d, sender="other@corp.test") == "default"
    assert chain_of(d, client_address="192.0.2.200") == "nets"
    assert chain_of(d, client_address="192.0.2.9") == "default"  # the default client is outside
    assert chain_of(d, client_address="::ffff:192.0.2.200") == "nets"  # IPv4-mapped
    assert chain_of(d, client_address="198.51.100.1") == "nets"  # from the absolute file
    assert chain_of(d, client_address="2001:db8:5:1::1") == "nets"
    assert chain_of(d, client_address="2001:db8:6::1") == "default"
    assert chain_of(d, sasl_username="alice") == "submission"
    # every condition of a chain must hold
    assert chain_of(d, recipient="x@both.test") == "default"
    assert chain_of(d, recipient="x@both.test", client_address="203.0.113.5") == "both"
    # first match wins: a bounce from a listed network takes "bounces"
    assert chain_of(d, sender="", client_address="192.0.2.200") == "bounces"
    assert chain_of(d, recipient="list-users@example.test") == "regex"
    assert chain_of(d, recipient="users@example.test") == "default"


def test_rules_then_policy_context_then_listener():
    port2 = pdtest.free_port()
    d = pdtest.daemon('plugins = { "dflt" }\n'
                      'chain "ctx" { plugins = { "i1" } listen = { "inet:127.0.0.1:%d" } }\n'
                      'chain "rule" { plugins = { "i2" } recipients = { "@rule.test" } }\n'
                      'fake "dflt" { action = "REJECT default" }\n'
                      'fake "i1" { action = "REJECT ctx" }\nfake "i2" { action = "REJECT rule" }\n' % port2)
    assert chain_of(d, recipient="a@rule.test", policy_context="ctx") == "rule"
    assert chain_of(d, recipient="a@x.test", policy_context="ctx") == "ctx"
    import socket
    c = pdtest.Client(socket.create_connection(("127.0.0.1", port2), timeout=10))
    assert c.ask(req(recipient="a@x.test")).endswith("ctx")
    assert c.ask(req(recipient="a@rule.test")).endswith("rule")
    c.close()


def test_data_and_end_of_message_take_the_first_recipients_chain():
    d = pdtest.daemon(RULES.replace('fake "ia" { action = "REJECT a" }',
                                    'fake "ia" { action = "REJECT a" protocol_state = { "ALL" } }')
                      .replace('fake "dflt" { action = "REJECT default" }',
                               'fake "dflt" { action = "REJECT default" protocol_state = { "ALL" } }'))
    c = d.client()
    # message 1: first recipient in chain a, a second one in the default chain
    assert c.ask(req(instance="m1", recipient="x@example.net")) == "REJECT a"
    assert c.ask(req(instance="m1", recipient="y@other.test")) == "REJECT default"
    assert c.ask(req(instance="m1", recipient="", protocol_state="DATA", recipient_count="2")) == "REJECT a"
    assert c.ask(req(instance="m1", recipient="", protocol_state="END-OF-MESSAGE")) == "REJECT a"
    # message 2 on the same connection: its own first recipient
    assert c.ask(req(instance="m2", recipient="y@other.test")) == "REJECT default"
    assert c.ask(req(instance="m2", recipient="x@example.net")) == "REJECT a"
    assert c.ask(req(instance="m2", recipient="", protocol_state="END-OF-MESSAGE")) == "REJECT default"
    c.close()
    # another connection knows nothing of m1: its rules (no recipient) give the default
    assert d.ask(req(instance="m1", recipient="", protocol_state="END-OF-MESSAGE")) == "REJECT default"


def test_check_and_query_print_the_rules():
    d = pdtest.Daemon(RULES)
    p = subprocess.run([pdtest.POLICYD, "-t", "-v", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert '  chain "a" when the recipient matches one of 1 entry -> plugins ia\n' in p.stdout, p.stdout
    assert '  chain "b" when the recipient matches one of 2 entries -> plugins ib\n' in p.stdout, p.stdout
    assert "4. the default chain -> plugins dflt\n" in p.stdout, p.stdout
    path = os.path.join(d.dir, "r.txt")
    with open(path, "w") as f:
        f.write("".join("%s=%s\n" % kv for kv in req(recipient="q@example.net").items()))
    p = subprocess.run([pdtest.POLICYD, "-c", d.conf, "-q", path], capture_output=True, text=True, timeout=30)
    assert p.stdout.startswith("chain a (its rules)\n  ia: REJECT a  [decides]\n"), p.stdout
    d.cleanup()


def test_rule_errors_carry_file_and_line():
    d = pdtest.Daemon("")
    for body, needle, at in [
            ('chain "x" {\n  recipients = { "@bad..domain" }\n}\n', 'recipients "@bad..domain"', "recipients"),
            ('chain "x" {\n  clients = { "192.0.2.0/33" }\n}\n', 'clients "192.0.2.0/33"', "clients"),
            ('chain "x" {\n  senders = { "/(unclosed/" }\n}\n', "bad regex", "senders"),
            ('chain "x" {\n  protocol_state = { "LUNCH" }\n}\n', 'protocol_state "LUNCH"', "protocol_state")]:
        d.write_config('plugins = { "fake" }\n' + body)
        p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and needle in p.stderr, (body, p.stderr)
        assert "%s:%d:" % (d.conf, pdtest.line_of(d.conf, at)) in p.stderr, (body, p.stderr)
    with open(os.path.join(d.dir, "list"), "w") as f:
        f.write("@ok.test\nnot an entry\n")
    d.write_config('plugins = { "fake" }\nchain "x" { recipients = { "./list" } }\n')
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "%s:2: one key per line" % os.path.join(d.dir, "list") in p.stderr, p.stderr
    d.write_config('plugins = { "fake" }\nchain "x" { recipients = { "./missing" } }\n')
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "missing" in p.stderr, p.stderr
    d.cleanup()


def test_reload_swaps_rules_and_chains_at_once_under_load():
    # old: @a.test -> chain "x" (answers old-x); new: @a.test -> chain "y" (new-y), @b.test -> "x" (new-x).
    # A request routed by old rules onto new chains would answer new-x for @a.test: never allowed.
    old = ('plugins = { "d" }\nchain "x" { plugins = { "ix" } recipients = { "@a.test" } }\n'
           'fake "d" { action = "REJECT old-default" }\nfake "ix" { action = "REJECT old-x" }\n')
    new = ('plugins = { "d" }\nchain "y" { plugins = { "iy" } recipients = { "@a.test" } }\n'
           'chain "x" { plugins = { "ix" } recipients = { "@b.test" } }\n'
           'fake "d" { action = "REJECT new-default" }\nfake "ix" { action = "REJECT new-x" }\n'
           'fake "iy" { action = "REJECT new-y" }\n')
    d = pdtest.daemon(old)
    seen, bad, stop = set(), [], threading.Event()

    def load():
        c = d.client()
        n = 0
        while not stop.is_set() and n < 20000:
            a = c.ask(req(recipient="u@a.test"))
            seen.add(a)
            if a not in ("REJECT old-x", "REJECT new-y"):
                bad.append(a)
            n += 1
        c.close()

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(6):
            d.write_config(new if i % 2 == 0 else old)
            d.reload()
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not bad, bad[:5]
    assert seen == {"REJECT old-x", "REJECT new-y"}, seen


if __name__ == "__main__":
    pdtest.run(globals())
