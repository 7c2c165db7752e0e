# metrics.py - the Prometheus endpoint: scraped over HTTP, parsed, checked against what was sent
# SPDX-License-Identifier: BSD-2-Clause
import re
import subprocess
import time
import urllib.error
import urllib.request

import pdtest
from pdtest import req

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? '
                  r'(-?[0-9.e+-]+|\+Inf|NaN)$')


def scrape(port):
    """GET /metrics; returns {(name, labels): value} after checking every line's grammar."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    values, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = LINE.match(line)
        assert m, "not Prometheus text format: %r" % line
        name, labels = m.group(1), m.group(3) or ""
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base in typed, "no TYPE for %s" % name
        values[(name, labels)] = float(m.group(5))
    return values


def test_metrics_endpoint_counts_what_was_sent():
    mport = pdtest.free_port()
    d = pdtest.daemon('metrics_listen = "127.0.0.1:%d"\n' % mport +
                      'plugins = { "fake", "example" }\nfake {\n  trigger = "boom"\n  fail = true\n}\n')
    c = d.client()
    for r in ["policyblock@x", "a@x", "b@x", "boom@x"]:
        c.ask(req(recipient=r))
    c.send(b"request=smtpd_access_policy\nno equals\nprotocol_state=RCPT\n\n")
    c.reply()
    v = scrape(mport)
    assert v[("policyd_requests_total", "")] == 5
    assert v[("policyd_actions_total", 'action="REJECT"')] == 1
    assert v[("policyd_actions_total", 'action="DUNNO"')] == 4
    assert v[("policyd_plugin_calls_total", 'plugin="example"')] == 5
    assert v[("policyd_plugin_decisions_total", 'plugin="example"')] == 1
    assert v[("policyd_plugin_errors_total", 'plugin="fake"')] == 1
    assert v[("policyd_garbage_lines_total", "")] == 1
    assert v[("policyd_connections_open", "")] == 1
    assert v[("policyd_worker_restarts_total", "")] == 0
    buckets = sorted((float(l.split('"')[1]) if "Inf" not in l else float("inf"), n)
                     for (k, l), n in v.items() if k == "policyd_request_duration_seconds_bucket")
    counts = [n for _, n in buckets]
    assert counts == sorted(counts) and counts[-1] == 5 == v[("policyd_request_duration_seconds_count", "")]
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/other" % mport, timeout=10)
        assert False, "expected 404"
    except urllib.error.HTTPError as e:
        assert e.code == 404


def test_worker_restart_counted():
    mport = pdtest.free_port()
    d = pdtest.daemon('metrics_listen = "127.0.0.1:%d"\n' % mport +
                      'plugins = { "fake" }\nfake {\n  trigger = "crashme"\n  crash = true\n}\n')
    c = d.client()
    c.send(pdtest.encode(req(recipient="crashme@x")))
    assert c.closed_by_peer()
    d.wait_log("ready (", count=2)
    assert scrape(mport)[("policyd_worker_restarts_total", "")] == 1


def test_metrics_answer_with_many_connections_open():
    """1,100 client connections push the metrics socket past descriptor 1024:
    the endpoint still answers (it must not use select())."""
    import resource
    import socket
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if want < 2400:
        print("SKIP part: the descriptor limit (%d) is too low for this test" % hard)
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # the daemon inherits it
    mport = pdtest.free_port()
    d = pdtest.daemon('metrics_listen = "127.0.0.1:%d"\nplugins = { "example" }\n' % mport)
    conns = []
    try:
        for _ in range(1100):
            conns.append(socket.create_connection(("127.0.0.1", d.port), timeout=20))
        c = d.client()
        assert c.ask(req()) == "DUNNO"
        v = {}
        deadline = time.time() + 20 * pdtest.SLOW
        while v.get(("policyd_connections_open", ""), 0) < 1101:
            v = scrape(mport)  # a reset here is the bug
            assert time.time() < deadline, v.get(("policyd_connections_open", ""))
        c.close()
    finally:
        for s in conns:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_metrics_only_on_loopback():
    d = pdtest.Daemon('metrics_listen = "0.0.0.0:9124"\nplugins = { "example" }\n')
    pdtest._daemons.append(d)
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "metrics are served on loopback only" in p.stderr and "%s:%d:" % (d.conf, pdtest.line_of(d.conf, "metrics_listen")) in p.stderr, p


if __name__ == "__main__":
    pdtest.run(globals())
