# chains.py - chain semantics over the wire: PREPEND, on_error, filters, named chains
# SPDX-License-Identifier: BSD-2-Clause
import pdtest
from pdtest import req


def test_prepend_pending_then_decided():
    d = pdtest.daemon('plugins = { "fake", "fake2" }\n'
                      'fake { action = "PREPEND X-Test: yes" }\n'
                      'fake2 {\n  trigger = "block"\n  action = "REJECT 5.7.1 blocked"\n}\n')
    assert d.ask(req(recipient="a@x")) == "PREPEND X-Test: yes"
    assert d.ask(req(recipient="block@x")) == "REJECT 5.7.1 blocked"


def test_on_error_fail_open_and_fail_closed():
    d = pdtest.daemon('plugins = { "fake", "fake2" }\nfake { fail = true }\nfake2 { action = "PREPEND X-After: 1" }\n')
    assert d.ask(req()) == "PREPEND X-After: 1"  # fail-open DUNNO: the chain goes on
    d.wait_log('fake: check failed, on_error action "DUNNO" applies')
    d2 = pdtest.daemon('on_error = "DEFER_IF_PERMIT 4.3.0 policy service problem"\n'
                       'plugins = { "fake", "fake2" }\nfake { fail = true }\nfake2 { action = "REJECT no" }\n')
    assert d2.ask(req()) == "DEFER_IF_PERMIT 4.3.0 policy service problem"
    assert "plugin=fake " in d2.wait_log("decision:")


def test_default_action():
    d = pdtest.daemon('default_action = "PREPEND X-Checked: policyd"\nplugins = { "fake" }\n')
    assert d.ask(req()) == "PREPEND X-Checked: policyd"


def test_filters_state_sasl_networks():
    d = pdtest.daemon('plugins = { "fake" }\n'
                      'fake {\n  action = "REJECT filtered"\n  protocol_state = { "RCPT", "END-OF-MESSAGE" }\n'
                      '  skip_sasl = true\n  skip_networks = { "127.0.0.0/8", "2001:db8::/32", "::ffff:198.51.100.0/120" }\n}\n')
    assert d.ask(req()) == "REJECT filtered"
    assert d.ask(req(protocol_state="END-OF-MESSAGE")) == "REJECT filtered"
    assert d.ask(req(protocol_state="MAIL")) == "DUNNO"
    assert d.ask(req(sasl_username="alice")) == "DUNNO"
    assert d.ask(req(client_address="127.0.0.5")) == "DUNNO"
    assert d.ask(req(client_address="2001:db8:5::1")) == "DUNNO"
    assert d.ask(req(client_address="2001:db9::1")) == "REJECT filtered"
    # an IPv4-mapped network in IPv6 form is accepted and matches both forms (issue 12.10)
    assert d.ask(req(client_address="198.51.100.9")) == "DUNNO"
    assert d.ask(req(client_address="::ffff:198.51.100.9")) == "DUNNO"
    assert d.ask(req(client_address="198.51.101.9")) == "REJECT filtered"


def test_request_attribute_passthrough():
    # attributes this core does not know reach plugins by name
    d = pdtest.daemon('plugins = { "fake" }\nfake { echo = "tls_sni" }\n')
    assert d.ask(req(tls_sni="mx.example.test")) == "DEFER_IF_PERMIT tls_sni=mx.example.test"
    assert d.ask(req(future_attribute_x="1")) == "DEFER_IF_PERMIT tls_sni=(none)"


def test_named_chains_by_listener_and_policy_context():
    port2 = pdtest.free_port()
    d = pdtest.Daemon('plugins = { "example" }\n'
                      'chain "submission" {\n  plugins = { "fake" }\n  listen = { "inet:127.0.0.1:%d" }\n}\n'
                      'fake { action = "REJECT from submission chain" }\n' % port2)
    pdtest._daemons.append(d)
    d.start()
    assert d.ask(req(recipient="x@x")) == "DUNNO"
    assert d.ask(req(recipient="policyblock@x")).startswith("REJECT 5.7.1")
    # the second listener selects its chain
    import socket
    c = pdtest.Client(socket.create_connection(("127.0.0.1", port2), timeout=10))
    assert c.ask(req(recipient="x@x")) == "REJECT from submission chain"
    # policy_context selects a chain on any listener
    assert d.ask(req(recipient="x@x", policy_context="submission")) == "REJECT from submission chain"
    # an unknown context falls back to the listener's chain
    assert d.ask(req(recipient="x@x", policy_context="nope")) == "DUNNO"
    assert "chain=submission" in d.wait_log("chain=submission")


def test_observe_logs_and_counts_and_goes_on():
    import urllib.request
    mport = pdtest.free_port()
    d = pdtest.daemon('metrics_listen = "127.0.0.1:%d"\n' % mport +
                      'on_error = "DEFER_IF_PERMIT 4.3.0 fail closed"\n'
                      'plugins = { "would", "broken", "head", "last" }\n'
                      'fake "would" { action = "REJECT 5.7.1 would \\"block\\"" observe = true }\n'
                      'fake "broken" { fail = true observe = true }\n'
                      'fake "head" { action = "PREPEND X-Observed: yes" observe = true }\n'
                      'fake "last" { trigger = "stop" action = "REJECT 5.7.1 enforced" }\n')
    # the observed REJECT and the observed error let the request through; a PREPEND still counts
    assert d.ask(req(recipient="a@x")) == "PREPEND X-Observed: yes"
    d.wait_log('would: observe: would have answered "REJECT 5.7.1 would \\x22block\\x22"')
    d.wait_log('broken: observe: would have answered "DEFER_IF_PERMIT 4.3.0 fail closed" (its check failed: on_error)')
    # a later plugin that is not observed still decides
    assert d.ask(req(recipient="stop@x")) == "REJECT 5.7.1 enforced"
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10) as r:
        text = r.read().decode()
    assert 'policyd_plugin_observed_total{plugin="would"} 2' in text, text
    assert 'policyd_plugin_observed_total{plugin="broken"} 2' in text, text
    assert 'policyd_plugin_decisions_total{plugin="would"} 0' in text, text
    assert 'policyd_plugin_decisions_total{plugin="last"} 1' in text, text


if __name__ == "__main__":
    pdtest.run(globals())
