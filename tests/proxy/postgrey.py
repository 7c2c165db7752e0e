# postgrey.py - the proxy plugin in front of a real, private Debian postgrey: its answers come through, its death is on_error within timeout
# SPDX-License-Identifier: BSD-2-Clause
"""postgrey (Debian package postgrey) is started by the test on a free
loopback port with its own database directory and empty whitelists, and
stopped by its PID. Skipped when postgrey is not installed."""
import signal
import time

import pdpostgrey
import pdtest
from pdtest import req

ONERR = "DEFER_IF_PERMIT 4.3.0 greylisting unavailable"


def Postgrey(delay=2, port=None):
    """A private postgrey with DELAY and no auto-whitelist (tests/lib/pdpostgrey.py)."""
    return pdpostgrey.Postgrey(["--delay=%d" % delay, "--auto-whitelist-clients=0"], port=port)


def proxied(pg, timeout=2):
    return pdtest.daemon('on_error = "%s"\nplugins = { "proxy" }\nproxy {\n  server = "inet:127.0.0.1:%d"\n'
                         '  timeout = %d\n}\n' % (ONERR, pg.port, timeout))


def test_greylisting_comes_through():
    pg = Postgrey(delay=2)
    d = proxied(pg)
    c = d.client()
    r = req(client_address="192.0.2.55", sender="alice@sender.example", recipient="bob@example.test")
    first = c.ask(r)
    assert first.startswith("DEFER_IF_PERMIT 4.2.0 Greylisted"), first
    assert c.ask(r).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")  # an early retry
    time.sleep(3)  # postgrey's delay passes (it counts whole seconds)
    passed = c.ask(r)
    assert passed.startswith("PREPEND X-Greylist: delayed"), passed
    assert "proxy: server inet:127.0.0.1:%d answered: DEFER_IF_PERMIT 4.2.0 Greylisted" % pg.port in d.log_text()
    c.close()
    d.stop()


def test_postgrey_killed_is_on_error():
    pg = Postgrey(delay=300)
    d = proxied(pg)
    c = d.client()
    assert c.ask(req()).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")
    pg.kill()
    for i in range(3):
        assert c.ask(req(instance="after-kill-%d" % i)) == ONERR
    log = d.log_text()
    assert log.count("on_error applies until it answers again") == 1, log[-3000:]
    assert "no answer within its time budget" not in log  # answered by the proxy, not cut by the core
    # postgrey back on its port: answers come through again, on the same policyd connection
    pg2 = Postgrey(delay=300, port=pg.port)
    assert c.ask(req(client_address="192.0.2.77")).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")
    assert "answers again, after 3 failed request(s)" in d.log_text()
    # policyd first: postgrey (Net::Server) finishes its open connections before a SIGTERM ends it
    c.close()
    d.stop()
    pg2.kill(signal.SIGTERM)


def test_postgrey_hung_is_on_error_within_timeout():
    pg = Postgrey(delay=300)
    d = proxied(pg, timeout=2)
    c = d.client()
    assert c.ask(req()).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")
    pg.kill(signal.SIGSTOP)  # alive, connected, silent
    assert c.ask(req(instance="hung"), timeout=30) == ONERR
    log = d.wait_log("no answer within 1800 ms")
    # the proxy's own bound, below the core's cut at timeout (which closes the client's connection)
    assert "no answer within its time budget" not in log, log[-3000:]
    assert not c.closed_by_peer(timeout=0.5)
    pg.kill(signal.SIGCONT)
    # the connection that timed out was dropped; a new one works
    assert c.ask(req(client_address="192.0.2.88")).startswith("DEFER_IF_PERMIT 4.2.0 Greylisted")
    c.close()
    d.stop()


try:
    pdtest.run(globals())
finally:
    pdpostgrey.cleanup_all()
