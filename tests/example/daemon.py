# daemon.py - the example plugin's opt-in options in the real policyd: client_limit on the state service, score, validate's errors
# SPDX-License-Identifier: BSD-2-Clause
"""The defaults are tested by tests/daemon/*.py (they use the example
plugin as their model plugin); these are the options that are off by
default: client_limit (the core's state service, GDBM here, two daemons on
a private redis-server when there is one), score (with the score plugin),
and the checks of validate() with file and line. check_sender_domain is in
dns.py (a private DNS server in a network namespace)."""
import os
import subprocess
import urllib.request

import pdredis
import pdtest
from pdtest import req

REJ = "REJECT 5.7.1 Recipient address rejected by policy"
DEFER = "DEFER_IF_PERMIT 4.7.1 Too many rejected recipients, try again later"
ONERR = "DEFER_IF_PERMIT 4.3.0 state service down"
STATE = os.path.join(pdtest.BUILDDIR, "policyd-state")
_redis = []


def conf(options, extra=""):
    return 'on_error = "%s"\nplugins = { "example" }\n%sexample {\n%s\n}\n' % (ONERR, extra, options)


def to_workers(mport):
    """policyd_requests_to_workers_total from the metrics endpoint on MPORT."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=20) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("policyd_requests_to_workers_total "):
                return float(line.split()[1])
    raise AssertionError("no policyd_requests_to_workers_total")


def limit_rules(d, client="192.0.2.7", other="192.0.2.8"):
    """Two rejections of CLIENT defer its next recipient; OTHER is not affected."""
    assert d.ask(req(client_address=client, recipient="policyblock1@example.test")) == REJ
    assert d.ask(req(client_address=client, recipient="ok@example.test")) == "DUNNO"
    assert d.ask(req(client_address=client, recipient="policyblock2@example.test")) == REJ
    assert d.ask(req(client_address=client, recipient="ok@example.test")) == DEFER
    assert d.ask(req(client_address=other, recipient="ok@example.test")) == "DUNNO"
    # a rule still rejects a deferred client (and counts it)
    assert d.ask(req(client_address=client, recipient="policyblock3@example.test")) == REJ


def test_client_limit_on_gdbm_kept_across_a_restart():
    mport = pdtest.free_port()
    d = pdtest.daemon(conf("  client_limit = 2\n  client_window = 600", 'metrics_listen = "127.0.0.1:%d"\n' % mport))
    d.wait_log('store "default": GDBM %s' % os.path.join(d.state_dir, "state.db"))
    d.wait_log("example: deferring a client after 2 rejections in 600 s")
    limit_rules(d)
    assert to_workers(mport) == 0  # GDBM is local: the checks ran on the network threads
    out = subprocess.run([STATE, "-c", d.conf, "list"], capture_output=True, text=True, timeout=60).stdout
    assert "example counter 192.0.2.7" in out and "total=3 window=600s" in out, out
    d.stop()
    d.start()
    assert d.ask(req(client_address="192.0.2.7", recipient="ok@example.test")) == DEFER


def test_client_limit_per_instance():
    d = pdtest.daemon('plugins = { "example" }\nchain "b" { plugins = { "b" } }\n'
                      'example { client_limit = 2 }\nexample "b" { client_limit = 2 }\n')
    limit_rules(d)
    # instance b counts in its own namespace
    assert d.ask(req(client_address="192.0.2.7", recipient="ok@example.test", policy_context="b")) == "DUNNO"


def test_client_limit_shared_by_two_daemons_on_redis():
    if not pdredis.REDIS_SERVER or not pdredis.built_with_hiredis():
        pdtest.skip("needs redis-server and a policyd built with hiredis")
    r = pdredis.Redis().start()
    _redis.append(r)
    store = 'store {\n  backend = "redis"\n  redis_server = "127.0.0.1:%d"\n}\n' % r.port
    mport = pdtest.free_port()
    a = pdtest.daemon(conf("  client_limit = 2", store + 'metrics_listen = "127.0.0.1:%d"\n' % mport))
    b = pdtest.daemon(conf("  client_limit = 2", store))
    for recipient in ("policyblock1@example.test", "policyblock2@example.test"):
        assert a.ask(req(client_address="192.0.2.9", recipient=recipient)) == REJ
    assert to_workers(mport) == 2  # Redis waits for the network: init said blocking, the workers ran them
    # what a counted, b defers
    assert b.ask(req(client_address="192.0.2.9", recipient="ok@example.test")) == DEFER
    # the store is down: a rule still rejects, the count is on_error
    r.stop()
    assert b.ask(req(client_address="192.0.2.9", recipient="policyblock@example.test")) == REJ
    assert b.ask(req(client_address="192.0.2.9", recipient="ok@example.test")) == ONERR


def test_default_section_asks_no_store():
    d = pdtest.daemon('plugins = { "example" }\n')
    assert d.ask(req(recipient="policyblock@example.test")) == REJ
    assert d.ask(req(recipient="ok@example.test")) == "DUNNO"
    out = subprocess.run([STATE, "-c", d.conf, "count"], capture_output=True, text=True, timeout=60).stdout
    assert out.rstrip().endswith("total 0"), out


def test_score_for_the_score_plugin():
    d = pdtest.daemon('plugins = { "example", "score" }\nexample { score = 6 }\n'
                      'score { thresholds = { "5=REJECT 5.7.1 Spam score %s" } }\n')
    assert d.ask(req(recipient="policyblock@example.test")) == "REJECT 5.7.1 Spam score 6.00"
    a = d.ask(req(recipient="ok@example.test"))
    assert not a.startswith("REJECT"), a


def test_validate_errors_carry_file_and_line():
    d = pdtest.Daemon("")
    for body, needle in [('  marker = ""', "marker must not be empty"),
                         ("  client_limit = -1", "client_limit = -1: must be between 0 (off) and 1000000"),
                         ("  client_limit = 5\n  client_window = 0", "client_window = 0: must be between 1 and"),
                         ("  client_limit = 5\n  score = 1", "client_limit counts rejections, and with score set")]:
        d.write_config('plugins = { "example" }\nexample {\n%s\n}\n' % body)
        p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
        line = pdtest.line_of(d.conf, "example {")
        assert p.returncode != 0 and "%s:%d: %s" % (d.conf, line, needle) in p.stderr, (body, p.stderr)
    d.cleanup()


try:
    pdtest.run(globals())
finally:
    for r in _redis:
        r.cleanup()
