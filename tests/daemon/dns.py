# dns.py - the core's asynchronous DNS as plugins see it (host->dns), against a real DNS server in a private netns
# SPDX-License-Identifier: BSD-2-Clause
"""The fake plugin's lookup = { "TYPE:name", "TYPE:=ATTR" } asks every name
at once through host->dns and answers with each status, so the tests read
the resolver's behaviour from the daemon's answers and the server's log
(tests/spf/spfzone.py on 127.0.0.1:53 inside a network namespace of the
test's own, the namespace's resolv.conf naming it). Bounds on time are
generous correctness bounds (a hang fails), never speed assertions."""
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "spf"))
import spftest  # noqa: E402

spftest.in_netns(__file__)
import pdtest  # noqa: E402
from pdtest import req  # noqa: E402
from spfzone import ZoneServer  # noqa: E402

ZONE = {
    "a.test": [{"A": "192.0.2.1"}],
    "b.test": [{"A": "192.0.2.2"}],
    "c.test": [{"TXT": "v=spf1 -all"}],
    "shared.test": [{"A": "192.0.2.3"}],
    "big.test": [{"TXT": ["x" * 250] * 12}],  # 3000 bytes: over UDP only truncated
    "silent.test": ["TIMEOUT"],
}
SRV = None


def server():
    global SRV
    if SRV is None:
        SRV = ZoneServer("127.0.0.1", 53, ttl=300)
    SRV.set_zone(ZONE)
    SRV.mode = "normal"
    SRV.tc_over = 4096
    with SRV.lock:
        SRV.log.clear()
        SRV.peers.clear()
        SRV.tcp_queries = 0
    return SRV


def fake(name, lookups, extra=""):
    return 'fake "%s" {\n  blocking = false\n  lookup = { %s }\n%s}\n' % (
        name, ", ".join('"%s"' % x for x in lookups), extra)


def asked(srv, name):
    with srv.lock:
        return sum(1 for n, _ in srv.log if n == name)


def test_several_names_at_once_and_every_answer():
    srv = server()
    d = pdtest.daemon('plugins = { "f" }\n' + fake("f", ["A:a.test", "A:b.test", "TXT:c.test", "A:nx.test"]))
    a = d.ask(req())
    assert a == ("DEFER_IF_PERMIT dns A:a.test=OK:192.0.2.1 A:b.test=OK:192.0.2.2 "
                 "TXT:c.test=OK:v=spf1 -all/11 A:nx.test=NXDOMAIN"), a
    assert asked(srv, "a.test") == 1 and asked(srv, "b.test") == 1 and asked(srv, "nx.test") == 1


def test_one_cache_for_every_instance_and_chain():
    srv = server()
    d = pdtest.daemon('plugins = { "f1" }\nchain "other" { plugins = { "f2" } }\n'
                      + fake("f1", ["A:shared.test", "A:nx2.test"]) + fake("f2", ["A:shared.test", "A:nx2.test"]))
    first = d.ask(req())
    assert first.endswith("A:shared.test=OK:192.0.2.3 A:nx2.test=NXDOMAIN"), first
    for _ in range(3):
        assert d.ask(req(policy_context="other")) == first
        assert d.ask(req()) == first
    # one query each: the answer, and the negative answer (SOA TTL), served from the cache since
    assert asked(srv, "shared.test") == 1 and asked(srv, "nx2.test") == 1, srv.log
    d.stop()
    # cache off for one instance (inst->dns_cache = 0): it asks every time, the other still uses the cache
    srv = server()
    d2 = pdtest.daemon('plugins = { "f1" }\nchain "nc" { plugins = { "f2" } }\n' + fake("f1", ["A:shared.test"])
                       + fake("f2", ["A:shared.test"], "  dns_cache = false\n"))
    for _ in range(3):
        assert d2.ask(req()).endswith("=OK:192.0.2.3")
        assert d2.ask(req(policy_context="nc")).endswith("=OK:192.0.2.3")
    assert asked(srv, "shared.test") == 4, srv.log  # f1 once, f2 three times


def test_silent_name_answered_within_the_deadline_others_unaffected():
    srv = server()
    d = pdtest.daemon('plugins = { "nodns" }\nchain "dns" { plugins = { "f" } }\n'
                      'fake "nodns" { action = "REJECT no dns" }\n'
                      + fake("f", ["A:a.test", "A:silent.test"], "  dns_timeout_ms = 1500\n"))
    out = {}

    def slow():
        t0 = time.time()
        out["a"] = d.ask(req(policy_context="dns"))
        out["t"] = time.time() - t0

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.2)
    # while that request waits on DNS, the other chain is answered at once (never queued behind it)
    assert d.ask(req()) == "REJECT no dns"
    assert "a" not in out, "the DNS request should still be waiting"
    t.join(30)
    assert out["a"] == "DEFER_IF_PERMIT dns A:a.test=OK:192.0.2.1 A:silent.test=TIMEOUT", out
    assert out["t"] < 1.5 + 1.0 * pdtest.SLOW + 2, out  # the deadline, not the resolver's patience
    # the resolver recovers: a name that answers again is answered
    ZONE2 = dict(ZONE, **{"silent.test": [{"A": "192.0.2.9"}]})
    srv.set_zone(ZONE2)
    for _ in range(50):
        a = d.ask(req(policy_context="dns"))
        if a.endswith("A:silent.test=OK:192.0.2.9"):
            break
        time.sleep(0.2)
    assert a.endswith("A:silent.test=OK:192.0.2.9"), a


def test_dead_and_silent_resolver_bounded():
    srv = server()
    d = pdtest.daemon('plugins = { "f" }\n' + fake("f", ["A:=helo_name"], "  dns_timeout_ms = 1000\n"))
    srv.mode = "silent"
    t0 = time.time()
    a = d.ask(req(helo_name="q1.test"))
    assert a == "DEFER_IF_PERMIT dns A:=helo_name=TIMEOUT", a
    assert time.time() - t0 < 1 + 3 * pdtest.SLOW
    srv.mode = "servfail"
    a = d.ask(req(helo_name="q2.test"))
    assert a == "DEFER_IF_PERMIT dns A:=helo_name=SERVFAIL", a
    srv.mode = "normal"
    # a failure is never cached: the same name answers once the server does
    a = d.ask(req(helo_name="a.test"))
    assert a == "DEFER_IF_PERMIT dns A:=helo_name=OK:192.0.2.1", a


def test_source_ports_and_ids_vary_spoofed_answers_dropped_tc_goes_tcp():
    srv = server()
    d = pdtest.daemon('plugins = { "f" }\n' + fake("f", ["A:=helo_name"], "  dns_timeout_ms = 1500\n"))
    for i in range(30):
        d.ask(req(helo_name="p%d.test" % i))
    with srv.lock:
        peers = [p for p in srv.peers if p[2].startswith("p")]
    ports, ids = {p[0] for p in peers}, {p[1] for p in peers}
    assert len(peers) >= 30, peers
    assert len(ports) >= 20, "source ports should be randomised per query: %s" % sorted(ports)
    assert len(ids) >= 25, "query IDs should be random: %s" % sorted(ids)
    # an answer to another question is not an answer
    srv.mode = "wrongq"
    a = d.ask(req(helo_name="spoof.test"))
    assert a in ("DEFER_IF_PERMIT dns A:=helo_name=TIMEOUT", "DEFER_IF_PERMIT dns A:=helo_name=SERVFAIL"), a
    srv.mode = "normal"
    # a truncated UDP answer is asked again over TCP and arrives whole
    srv.tc_over = 512
    d2 = pdtest.daemon('plugins = { "f" }\n' + fake("f", ["TXT:big.test"]))
    a = d2.ask(req())
    assert a.endswith("TXT:big.test=OK:" + "x" * 40 + "/3000"), a
    assert srv.tcp_queries >= 1


if __name__ == "__main__":
    try:
        pdtest.run(globals())
    finally:
        if SRV:
            SRV.close()
