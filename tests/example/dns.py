# dns.py - the example plugin's check_sender_domain in the real policyd: an MX lookup through host->dns, wait and resume
# SPDX-License-Identifier: BSD-2-Clause
"""check_sender_domain = true against a real DNS server (tests/spf/spfzone.py
on 127.0.0.1:53 in a network namespace of the test's own): a domain that
does not exist is rejected, one that exists (with or without MX) passes,
one whose server is silent passes after the DNS deadline
(sender_domain_timeout; no verdict on a temporary failure), the null sender is not looked up, and a marker
recipient is rejected without a lookup. Bounds on time are generous
correctness bounds, never speed assertions."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "spf"))
import spftest  # noqa: E402

spftest.in_netns(__file__)
import pdtest  # noqa: E402
from pdtest import req  # noqa: E402
from spfzone import ZoneServer  # noqa: E402

ZONE = {
    "mx.test": [{"MX": (10, "mail.mx.test")}],
    "nomx.test": [{"A": "192.0.2.1"}],
    "silent.test": ["TIMEOUT"],
}
REJ = "REJECT 5.7.1 Recipient address rejected by policy"


def asked(srv, name):
    with srv.lock:
        return sum(1 for n, _ in srv.log if n == name)


def test_sender_domain():
    srv = ZoneServer("127.0.0.1", 53, ttl=300)
    srv.set_zone(ZONE)
    d = pdtest.daemon('plugins = { "example" }\nexample {\n  check_sender_domain = true\n'
                      '  sender_domain_timeout = 1\n  reject_sender_is_recipient = false\n}\n')
    assert d.ask(req(sender="a@mx.test")) == "DUNNO"
    assert d.ask(req(sender="a@nomx.test")) == "DUNNO"  # exists: its address is its mail server
    assert d.ask(req(sender="a@nx.test")) == REJ + " (sender domain does not exist)"
    t0 = time.time()
    assert d.ask(req(sender="a@silent.test")) == "DUNNO"  # after the deadline: no verdict
    assert time.time() - t0 < 1 + 3 * pdtest.SLOW, "sender_domain_timeout = 1 is the deadline, not dns { timeout = 5 }"
    assert d.ask(req(sender="")) == "DUNNO"
    assert d.ask(req(sender="a@nx2.test", recipient="policyblock@example.test")) == REJ
    assert asked(srv, "nx2.test") == 0, srv.log  # the marker decided first
    # the shared cache answers again, without a query
    assert d.ask(req(sender="b@nx.test")) == REJ + " (sender domain does not exist)"
    assert asked(srv, "nx.test") == 1, srv.log
    d.stop()
    srv.close()


pdtest.run(globals())
