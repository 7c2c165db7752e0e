# daemon.py - the proxy plugin in the real policyd against a policy server of the test: answers, pool, reconnects, failures
# SPDX-License-Identifier: BSD-2-Clause
"""The server behind the proxy is tests/proxy/policyserver.py on a real
socket; postgrey.py does the same against Debian's postgrey. Nothing here
asserts how fast something happens."""
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pdtest  # noqa: E402
from pdtest import req  # noqa: E402
from policyserver import PolicyServer  # noqa: E402

ONERR = "DEFER_IF_PERMIT 4.3.0 proxy test: server down"
_servers = []


def server(**kw):
    s = PolicyServer(**kw)
    _servers.append(s)
    return s


def proxied(srv, options="", extra="", **kw):
    """A daemon whose chain is the proxy to SRV, then the example plugin."""
    return pdtest.daemon('on_error = "%s"\nplugins = { "proxy", "example" }\n%sproxy {\n  server = "%s"\n%s\n}\n'
                         % (ONERR, extra, srv.address, options), **kw)


def test_answer_passed_on_and_attributes_forwarded():
    srv = server(action="REJECT 5.7.1 said the other server")
    d = proxied(srv)
    r = req(sender="a@example.org", recipient="b@example.test", client_address="192.0.2.7", ccert_subject="x y")
    assert d.ask(r) == "REJECT 5.7.1 said the other server"
    # the server got every attribute, as sent
    assert srv.requests[-1] == r, (srv.requests[-1], r)
    log = d.wait_log("plugin=proxy")
    assert "proxy: server %s answered: REJECT 5.7.1 said the other server" % srv.address in log
    # DUNNO from the server lets the chain go on
    srv.action = "DUNNO"
    assert d.ask(req(recipient="policyblock@example.test")).startswith("REJECT 5.7.1 Recipient address rejected")
    assert d.ask(req()) == "DUNNO"
    srv.action = "PREPEND X-Test: proxied"
    assert d.ask(req()) == "PREPEND X-Test: proxied"
    d.stop()


def test_connections_kept_open():
    srv = server(action="DUNNO")
    d = proxied(srv, "connections = 2")
    c = d.client()
    for i in range(50):
        assert c.ask(req(instance="m%d" % i)) == "DUNNO"
    c2 = d.client()  # another Postfix connection: the same pool
    for i in range(20):
        assert c2.ask(req(instance="n%d" % i)) == "DUNNO"
    assert len(srv.requests) == 70
    assert srv.accepted == 1, srv.accepted
    # many at once: never more than `connections`
    errors = []

    def load(n):
        try:
            cl = d.client()
            for i in range(30):
                if cl.ask(req(instance="p%d-%d" % (n, i))) != "DUNNO":
                    errors.append("bad answer")
            cl.close()
        except Exception as e:
            errors.append(repr(e))
    ts = [threading.Thread(target=load, args=(n,)) for n in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors[:3]
    assert srv.accepted <= 2, srv.accepted
    c.close()
    c2.close()
    d.stop()
    assert "asked %s 250 time(s) over %d connection(s)" % (srv.address, srv.accepted) in d.log_text()


def test_server_closing_connections_is_not_an_error():
    srv = server(action="DEFER_IF_PERMIT 4.7.1 closing", mode="close_after")
    d = proxied(srv)
    c = d.client()
    for i in range(10):
        assert c.ask(req(instance="m%d" % i)) == "DEFER_IF_PERMIT 4.7.1 closing"
    assert srv.accepted == 10
    assert "on_error applies" not in d.log_text()
    c.close()
    d.stop()


def test_request_resent_once_when_the_server_drops_it():
    # the server closes a kept connection just as a request arrives (EOF, then RST): the
    # request goes once more on a new connection, as Postfix itself does
    for mode in ("eof_second", "reset_second"):
        srv = server(action="HOLD resent", mode=mode)
        d = proxied(srv)
        c = d.client()
        for i in range(5):
            assert c.ask(req(instance="m%d" % i)) == "HOLD resent", mode
        assert srv.accepted == 5 and len(srv.requests) == 9, (mode, srv.accepted, len(srv.requests))
        assert "on_error applies" not in d.log_text()
        c.close()
        d.stop()


def test_unix_socket():
    d0 = pdtest.Daemon()  # only for a private directory
    pdtest._daemons.append(d0)
    srv = server(action="HOLD via unix", unix_path=os.path.join(d0.dir, "policy.sock"))
    d = proxied(srv)
    assert d.ask(req()) == "HOLD via unix"
    d.stop()


def test_server_down_on_error_logged_once_per_outage():
    srv = server(action="DUNNO")
    d = proxied(srv)
    c = d.client()
    assert c.ask(req()) == "DUNNO"
    address = srv.address
    srv.stop()
    # refused: on_error, the connection to policyd stays open, one line for the outage
    for i in range(5):
        assert c.ask(req(instance="x%d" % i)) == ONERR
    log = d.log_text()
    assert log.count("on_error applies until it answers again") == 1, log[-3000:]
    assert "proxy: server %s: connect: Connection refused" % address in log, log[-3000:]
    # back on the same port: answers again, logged once
    srv2 = server(action="REJECT back")
    d.write_config('on_error = "%s"\nplugins = { "proxy" }\nproxy { server = "%s" }\n' % (ONERR, srv2.address))
    d.reload()
    assert c.ask(req()) == "REJECT back"
    c.close()
    d.stop()


def test_back_after_outage_is_logged():
    srv = server(action="DUNNO")
    port = srv.port
    d = proxied(srv)
    assert d.ask(req()) == "DUNNO"
    srv.stop()
    assert d.ask(req()) == ONERR
    assert d.ask(req()) == ONERR
    server(action="DUNNO", port=port)  # a new server on the same port
    assert d.ask(req()) == "DUNNO"
    assert "proxy: server inet:127.0.0.1:%d answers again, after 2 failed request(s)" % port in d.log_text()
    d.stop()


def test_bad_answer_is_an_error():
    srv = server(mode="garbage")
    d = proxied(srv)
    assert d.ask(req()) == ONERR
    assert "the server's answer has no action= line" in d.wait_log("no action= line")
    d.stop()


def test_silent_server_bounded_by_timeout():
    srv = server(mode="silent")
    d = proxied(srv, "timeout = 1")
    c = d.client()
    assert c.ask(req()) == ONERR
    # the proxy answered on_error itself, before the core's cut (which would close the connection)
    log = d.wait_log("no answer within 800 ms")
    assert "no answer within its time budget" not in log, log[-3000:]
    assert not c.closed_by_peer(timeout=0.5)
    c.close()
    d.stop()


def test_config_errors_carry_file_and_line():
    d = pdtest.Daemon()
    pdtest._daemons.append(d)
    for bad, why in (('"127.0.0.1:10023"', "expected inet:HOST:PORT or unix:/PATH"),
                     ('"inet:127.0.0.1:0"', "the port must be a number from 1 to 65535"),
                     ('"inet:::1:10023"', "an IPv6 address in []"),
                     ('"unix:relative.sock"', "absolute path"),
                     ('""', "give the policy server")):
        d.write_config('plugins = { "proxy" }\nproxy {\n  server = %s\n}\n' % bad)
        p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = p.stdout.decode()
        assert p.returncode != 0 and "%s:" % d.conf in out and why in out, (bad, out)
    d.write_config('plugins = { "proxy" }\nproxy {\n  server = "inet:[::1]:10023"\n  connections = 0\n}\n')
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    assert p.returncode != 0 and "connections = 0: must be between 1 and 256" in p.stdout.decode()


try:
    pdtest.run(globals())
finally:
    for s in _servers:
        s.stop()
