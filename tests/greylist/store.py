# store.py - greylist on the core's state service: one table of decisions on GDBM and on a private redis-server, identical answers; per-address auto-whitelist; two instances keep separate state
# SPDX-License-Identifier: BSD-2-Clause
"""The same table of requests (first contact, early retry, pass, IPv4 /24
and IPv6 /64 grouping, BATV/VERP/+ext folding, expiry of pending and passed
triplets, the auto-whitelist) is sent to a daemon on the local store (GDBM)
and to one whose greylist section says backend = "redis" (a private
redis-server, stopped by its PID). Both daemons run on a frozen fake wall
clock (libfaketime, an absolute time the test sets), so every answer,
seconds left included, is exact: each must be the table's, and the two
backends must agree. Nothing here depends on how fast anything runs."""
import os
import subprocess
import time

import pdredis
import pdtest
from pdtest import req

os.environ["TZ"] = "UTC"  # the fake clock's absolute times are read in the daemon's zone
T0 = 1893456000  # 2030-01-01 00:00:00 UTC
STATE = os.path.join(pdtest.BUILDDIR, "policyd-state")
GL = ("delay = 5m\nretry_window = 1h\nlifetime = 1d\nauto_whitelist = 5\nauto_whitelist_interval = 1h\n"
      "add_header = true")


def defer(n):
    return "DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in %d seconds" % n


def header(n):
    return "PREPEND X-Greylist: delayed %d seconds by policyd at " % n


def freeze(d, t):
    """Set D's wall clock to T (seconds since the epoch), standing still."""
    with open(d.clock + ".new", "w") as f:
        f.write(time.strftime("%Y-%m-%d %H:%M:%S\n", time.gmtime(t)))
    os.rename(d.clock + ".new", d.clock)


def started(options, extra=""):
    d = pdtest.Daemon('plugins = { "greylist" }\n%sgreylist {\n%s\n}\n' % (extra, options), clock=True)
    pdtest._daemons.append(d)
    freeze(d, T0)
    return d.start()


# (seconds the clock moves first, client, sender, recipient, the answer: DUNNO, defer(N) or header(N))
A, B = "a@sender.example", "b@sender.example"
TABLE = [
    (0, "192.0.2.10", A, "r@example.test", defer(300)),           # first contact
    (100, "192.0.2.10", A, "r@example.test", defer(200)),         # early retry: the seconds left
    (199, "192.0.2.10", A, "r@example.test", defer(1)),
    (1, "192.0.2.10", A, "r@example.test", header(300)),          # the delay is over: passes, once
    (0, "192.0.2.10", A, "r@example.test", "DUNNO"),              # known
    (0, "192.0.2.254", A, "R@Example.TEST", "DUNNO"),             # IPv4 /24, case folded
    (0, "::ffff:192.0.2.7", A, "r@example.test", "DUNNO"),        # IPv4-mapped IPv6 is IPv4
    (0, "192.0.3.10", A, "r@example.test", defer(300)),           # the next /24 is another triplet
    (0, "192.0.2.10", B, "r@example.test", defer(300)),           # another sender
    (0, "192.0.2.10", A, "s@example.test", defer(300)),           # another recipient
    (0, "192.0.2.10", "", "r@example.test", defer(300)),          # the null sender is a sender
    (0, "2001:db8:1:2::1", A, "r@example.test", defer(300)),      # IPv6 /64
    (300, "2001:db8:1:2:ffff:ffff:ffff:9", A, "r@example.test", header(300)),
    (0, "2001:db8:1:3::1", A, "r@example.test", defer(300)),      # the next /64
    # BATV, VERP and +ext: one triplet whatever the tag, the number or the extension
    (0, "198.51.100.1", "prvs=1234abcd=news@list.example", "r@example.test", defer(300)),
    (300, "198.51.100.1", "prvs=99ff00ee=news@list.example", "r@example.test", header(300)),
    (0, "198.51.100.1", "bounce-123-456@list.example", "r@example.test", defer(300)),
    (300, "198.51.100.1", "bounce-789-12@list.example", "r@example.test", header(300)),
    (0, "198.51.100.1", "list+bounces-4f3a9b1c@list.example", "r@example.test", defer(300)),
    (300, "198.51.100.1", "list+other@list.example", "r@example.test", header(300)),
    # a pending triplet is forgotten after retry_window (1 h): the full delay again
    (0, "203.0.113.1", A, "late@example.test", defer(300)),
    (3601, "203.0.113.1", A, "late@example.test", defer(300)),
    (300, "203.0.113.1", A, "late@example.test", header(300)),
    # a passed one after lifetime (1 d) since it was last seen
    (86401, "192.0.2.10", A, "r@example.test", defer(300)),
    # the auto-whitelist: a bot retrying at once (each message passed after the delay,
    # within seconds of each other) from its /24: counted once, never whitelisted
] + [row for i in range(6) for row in (
    (0, "198.18.0.%d" % (10 + i % 2), "bot%d@spam.example" % i, "v@example.test", defer(300)),
    (300, "198.18.0.%d" % (10 + i % 2), "bot%d@spam.example" % i, "v@example.test", header(300)),
)] + [
    (0, "198.18.0.10", "fresh@spam.example", "v@example.test", defer(300)),
    (0, "198.18.0.99", "fresh@spam.example", "w@example.test", defer(300)),
    # five deliveries of one address an hour apart: whitelisted, that address only
] + [row for i in range(5) for row in (
    (3600, "192.0.2.200", "m%d@good.example" % i, "v@example.test", defer(300)),
    (300, "192.0.2.200", "m%d@good.example" % i, "v@example.test", header(300)),
)] + [
    (0, "192.0.2.200", "new@good.example", "x@example.test", "DUNNO"),
    (0, "192.0.2.201", "new@good.example", "x@example.test", defer(300)),
    # the whitelisted address's record lives lifetime since it was last seen (refreshed hourly)
    (3600, "192.0.2.200", "n@good.example", "x@example.test", "DUNNO"),
    (86401, "192.0.2.200", "o@good.example", "x@example.test", defer(300)),
]


def run_table(d):
    """Every row against D; the answers (the header cut after its fixed part)."""
    c = d.client()
    t, got = T0, []
    for i, (step, client, sender, rcpt, want) in enumerate(TABLE):
        if step:
            t += step
            freeze(d, t)
        a = c.ask(req(client_address=client, sender=sender, recipient=rcpt, instance="msg%d" % i))
        if a.startswith("PREPEND X-Greylist: "):
            a = a[:a.index(" by policyd at ") + len(" by policyd at ")]
        got.append(a)
    c.close()
    return got


def test_table_on_gdbm_and_redis_agree():
    if not pdredis.REDIS_SERVER or not pdredis.built_with_hiredis():
        pdtest.skip("needs redis-server and a policyd built with hiredis")
    r = pdredis.Redis().start()
    try:
        local = started(GL)
        shared = started(GL + '\nbackend = "redis"\nredis_server = "127.0.0.1:%d"' % r.port)
        shared.wait_log('store "default/greylist": Redis 127.0.0.1:%d' % r.port)
        answers = {"gdbm": run_table(local), "redis": run_table(shared)}
        for name, got in answers.items():
            bad = [(i, TABLE[i], a) for i, a in enumerate(got) if a != TABLE[i][4]]
            assert not bad, "%s: %d rows differ from the table, e.g. %s" % (name, len(bad), bad[:3])
        assert answers["gdbm"] == answers["redis"]
        log = local.log_text()
        assert "client 192.0.2.200/32 auto-whitelisted after 5 deliveries" in log, log[-3000:]
        assert "198.18.0." not in "".join(l for l in log.split("\n") if "auto-whitelisted after" in l)
        assert shared.log_text().count("auto-whitelisted after 5 deliveries") == 1
        # the records are where the admin expects them: Redis under greylist's old prefix
        assert any(k.startswith(b"pdgl:greylist:v:T:192.0.2.0/24 ") for k in r.keys(b"pdgl:")), r.keys(b"pdgl:")
        local.stop()
        shared.stop()
    finally:
        r.cleanup()


def test_two_instances_keep_separate_state():
    """Issue 17: greylist "greylist-strict" in a chain chosen by recipient
    domain (and client network), greylist in the default chain: the same
    triplet passed in one is still new in the other, each with its delay."""
    conf = ('plugins = { "greylist" }\n'
            'chain "strict" { plugins = { "greylist-strict" } recipients = { "@strict.test" }'
            ' clients = { "192.0.2.128/25" } }\n'
            'greylist "greylist-strict" {\n  delay = 10m\n  add_header = false\n}\n'
            'greylist {\n  delay = 1m\n  add_header = false\n}\n')
    d = pdtest.Daemon(conf, clock=True)
    pdtest._daemons.append(d)
    freeze(d, T0)
    d.start()
    c = d.client()
    # one triplet (192.0.2.0/24, s@x.example, r@strict.test): from .10 the default chain, from
    # .200 (in 192.0.2.128/25) the strict chain
    normal = dict(client_address="192.0.2.10", sender="s@x.example", recipient="r@strict.test")
    strict = dict(client_address="192.0.2.200", sender="s@x.example", recipient="r@strict.test")
    assert c.ask(req(**normal)) == defer(60)
    freeze(d, T0 + 61)
    assert c.ask(req(**normal)) == "DUNNO"  # passed in greylist
    assert c.ask(req(**strict)) == defer(600)  # still new in greylist-strict
    freeze(d, T0 + 61 + 599)
    assert c.ask(req(**strict)) == defer(1)
    freeze(d, T0 + 61 + 600)
    assert c.ask(req(**strict)) == "DUNNO"
    # and the other way round: passed in the strict instance, new in the default one
    s2 = dict(strict, sender="t@x.example")
    n2 = dict(normal, sender="t@x.example")
    assert c.ask(req(**s2)) == defer(600)
    freeze(d, T0 + 61 + 600 + 600)
    assert c.ask(req(**s2)) == "DUNNO"
    assert c.ask(req(**n2)) == defer(60)
    c.close()
    # policyd-state and policyd-greylist -i show each instance's own records
    p = subprocess.run([STATE, "-c", d.conf, "count"], capture_output=True, text=True, timeout=60, env=d.env())
    assert p.returncode == 0, p
    # each: two triplets and the auto-whitelist record of the address that passed first
    assert "greylist counters=0 values=3 " in p.stdout and "greylist-strict counters=0 values=3 " in p.stdout, p.stdout
    for inst, want in (("greylist", "greylisted: 1\npassed: 1\nclients: 1\n"),
                       ("greylist-strict", "greylisted: 0\npassed: 2\nclients: 1\n")):
        p = subprocess.run([os.path.join(pdtest.BUILDDIR, "policyd-greylist"), "-c", d.conf, "-i", inst, "stats"],
                           capture_output=True, text=True, timeout=60, env=d.env())
        assert p.returncode == 0 and p.stdout.startswith(want), (inst, p)
    d.stop()


if __name__ == "__main__":
    pdtest.run(globals())
