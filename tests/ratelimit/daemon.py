# daemon.py - the ratelimit plugin in the real policyd: messages counted once at END-OF-MESSAGE, refused at RCPT, bytes, recipients, GDBM across SIGHUP and restart, two daemons on one redis-server, the store down, overrides, bad configs
# SPDX-License-Identifier: BSD-2-Clause
"""Daemon tests of the ratelimit plugin over real sockets, on the local
store (GDBM in state_dir) and on a private redis-server (tests/lib/pdredis.py:
a free loopback port, no persistence, stopped by its PID). Windows move on
the daemon's wall clock (Daemon(clock=True), libfaketime). Nothing here
asserts how fast something happens; the Redis outage is bounded only by the
client's reply timeout, far above redis_timeout."""
import os
import re
import signal
import subprocess

import pdredis
import pdtest
from pdtest import req

STATE = os.path.join(pdtest.BUILDDIR, "policyd-state")
DEFER = "DEFER_IF_PERMIT 4.7.1 Rate limit exceeded, try again later"
ONERR = "DEFER_IF_PERMIT 4.3.0 rate limit state unavailable"
_redis = []


def rl(rules, options="", extra=""):
    """A config with only the ratelimit plugin: RULES and OPTIONS in its section, EXTRA at top level."""
    return ('on_error = "%s"\nplugins = { "ratelimit" }\n%sratelimit {\n%s\n%s\n}\n' % (ONERR, extra, rules, options))


def rule(name="sasl", key='"sasl_username"', count="messages", limits='"5/1h"', more=""):
    return 'rule "%s" {\n  key = { %s }\n  count = "%s"\n  limits = { %s }\n  %s\n}' % (name, key, count, limits, more)


def rcpt(user, n, **kw):
    """RCPT of the Nth recipient of USER's message."""
    a = dict(protocol_state="RCPT", sasl_username=user, recipient="r%d@example.test" % n, size="0")
    a.update(kw)
    return req(**a)


def eom(user, rcpts, size=1000, **kw):
    a = dict(protocol_state="END-OF-MESSAGE", sasl_username=user, recipient="", recipient_count=rcpts, size=size)
    a.update(kw)
    return req(**a)


def message(c, user, rcpts=3, size=1000, **kw):
    """One message of RCPTS recipients on client C: the RCPT answers, then END-OF-MESSAGE's if all passed."""
    answers = [c.ask(rcpt(user, i, **kw)) for i in range(rcpts)]
    if all(a == "DUNNO" for a in answers):
        answers.append(c.ask(eom(user, rcpts, size, **kw)))
    return answers


def state(d, *args):
    """policyd-state on D's configuration: (status, output)."""
    p = subprocess.run([STATE, "-c", d.conf] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    return p.returncode, p.stdout.decode()


def counter(d, key, *extra):
    """The total policyd-state lists for counter KEY of the ratelimit instance (0 if absent)."""
    rc, out = state(d, *(list(extra) + ["list", "ratelimit"]))
    assert rc in (0, 1), out
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 5 and f[0] == "ratelimit" and f[2] == key:
            return int(f[4].split("=")[-1]) if "=" in f[4] else int(f[4])
    return 0


def redis():
    if not pdredis.REDIS_SERVER or not pdredis.built_with_hiredis():
        pdtest.skip("needs redis-server and a policyd built with hiredis")
    r = pdredis.Redis().start()
    _redis.append(r)
    return r


def redis_store(r, timeout=300):
    return 'store {\n  backend = "redis"\n  redis_server = "127.0.0.1:%d"\n  redis_timeout = %d\n}\n' % (r.port, timeout)


def test_six_messages_of_three_recipients_limit_five():
    d = pdtest.daemon(rl(rule()))
    c = d.client()
    for m in range(5):
        assert message(c, "alice") == ["DUNNO"] * 4, m
    # the 6th message: every RCPT deferred, nothing counted
    assert message(c, "alice") == [DEFER] * 3
    assert counter(d, "sasl/3600/sasl_username=alice") == 5
    # another user is not affected
    assert message(c, "bob") == ["DUNNO"] * 4
    log = d.log_text()
    assert 'ratelimit: rule "sasl" sasl_username=alice: 5 of 5 messages in 3600 s, 1 more is over the limit: ' \
           + DEFER in log, log[-3000:]
    assert 'rule "sasl" sasl_username=alice: 4 of 5 messages in 3600 s (warn_at 80%)' in log, log[-3000:]
    assert log.count("(warn_at 80%)") == 1, log[-3000:]  # alice once (at 4), bob at 1 of 5 not
    d.stop()


def test_deferred_200_recipient_message_leaves_the_counter():
    d = pdtest.daemon(rl(rule(limits='"2/1h"') + "\n" + rule("rcpts", count="recipients", limits='"100/1h"')))
    c = d.client()
    assert message(c, "carol", rcpts=2) == ["DUNNO"] * 3
    assert counter(d, "sasl/3600/sasl_username=carol") == 1
    assert counter(d, "rcpts/3600/sasl_username=carol") == 2
    # 200 recipients pass RCPT (2 + 1 of 100 each), END-OF-MESSAGE would make 202: deferred, nothing counted
    answers = message(c, "carol", rcpts=200)
    assert answers[:200] == ["DUNNO"] * 200 and answers[200] == DEFER, answers[195:]
    assert counter(d, "sasl/3600/sasl_username=carol") == 1
    assert counter(d, "rcpts/3600/sasl_username=carol") == 2
    assert "202" not in "".join(l for l in d.log_text().splitlines() if "counted" in l)
    # over the message limit: a 200-recipient message deferred at every RCPT, counters unchanged
    assert message(c, "carol", rcpts=3) == ["DUNNO"] * 4
    assert message(c, "carol", rcpts=200) == [DEFER] * 200
    assert counter(d, "sasl/3600/sasl_username=carol") == 2
    assert counter(d, "rcpts/3600/sasl_username=carol") == 5
    d.stop()


def test_bytes_accumulate_at_end_of_message():
    d = pdtest.daemon(rl(rule("size", count="bytes", limits='"10k/1h"')))
    c = d.client()
    assert message(c, "dave", rcpts=1, size=4000) == ["DUNNO"] * 2
    assert counter(d, "size/3600/sasl_username=dave") == 4000
    assert message(c, "dave", rcpts=5, size=4000) == ["DUNNO"] * 6  # once, not per recipient
    assert counter(d, "size/3600/sasl_username=dave") == 8000
    # 8000 + 4000 > 10240: refused at END-OF-MESSAGE, not counted
    assert message(c, "dave", rcpts=1, size=4000) == ["DUNNO", DEFER]
    assert counter(d, "size/3600/sasl_username=dave") == 8000
    # a declared SIZE= at RCPT that would not fit is refused there already
    assert c.ask(rcpt("dave", 0, **{"size": "3000"})) == DEFER
    assert message(c, "dave", rcpts=1, size=2000) == ["DUNNO"] * 2
    assert counter(d, "size/3600/sasl_username=dave") == 10000
    assert "10000 of 10240 bytes in 3600 s, counted: under the limit" in d.log_text()
    d.stop()


def test_requests_and_first_non_empty_key_and_networks():
    d = pdtest.daemon(rl(rule("req", key='"sasl_username", "client_address"', count="requests",
                              limits='"3/1h"', more="ipv4_prefix = 24")))
    c = d.client()
    for i in range(3):
        assert c.ask(req(client_address="192.0.2.%d" % (i + 1))) == "DUNNO"
    assert c.ask(req(client_address="192.0.2.200")) == DEFER
    assert c.ask(req(client_address="192.0.3.1")) == "DUNNO"
    assert c.ask(req(client_address="192.0.2.9", sasl_username="erin")) == "DUNNO"
    assert counter(d, "req/3600/client_address=192.0.2.0/24") == 3  # the refused request not counted
    assert counter(d, "req/3600/sasl_username=erin") == 1
    d.stop()


def test_window_slides_on_a_moved_clock():
    d = pdtest.daemon(rl(rule(limits='"2/2h"')), clock=True)
    c = d.client()
    assert message(c, "frank", 1) == ["DUNNO"] * 2
    d.advance(3600)
    assert message(c, "frank", 1) == ["DUNNO"] * 2
    assert message(c, "frank", 1) == [DEFER]
    d.advance(3600 + 600)  # the first message is out of the window (2h and one bucket, 7.5 min), the second not
    assert message(c, "frank", 1) == ["DUNNO"] * 2
    assert message(c, "frank", 1) == [DEFER]
    d.stop()


def test_counters_survive_sighup_and_restart():
    d = pdtest.daemon(rl(rule(limits='"3/1h"')))
    for _ in range(3):
        assert message(d.client(), "gina", 2) == ["DUNNO"] * 3
    d.reload()
    assert message(d.client(), "gina", 1) == [DEFER]
    d.stop()
    d.start()
    assert message(d.client(), "gina", 1) == [DEFER]
    assert counter(d, "sasl/3600/sasl_username=gina") == 3
    d.stop()


def test_overrides_file_and_reload():
    d = pdtest.Daemon()
    pdtest._daemons.append(d)
    path = os.path.join(d.dir, "overrides")
    with open(path, "w") as f:
        f.write("# per-user limits\nvip 4/1h\nrobot unlimited\n")
    d.write_config(rl(rule(limits='"1/1h"', more='overrides = "%s"' % path)))
    d.start()
    c = d.client()
    for _ in range(4):
        assert message(c, "vip", 1) == ["DUNNO"] * 2
    assert message(c, "vip", 1) == [DEFER]
    for _ in range(6):
        assert message(c, "robot", 1) == ["DUNNO"] * 2
    assert message(c, "henry", 1) == ["DUNNO"] * 2
    assert message(c, "henry", 1) == [DEFER]
    assert 'rule "sasl" sasl_username=robot: unlimited (overrides)' in d.log_text()
    # a bad line: the reload fails with file:line, the old overrides stay
    with open(path, "w") as f:
        f.write("vip 4/1h\nhenry 5/fortnight\n")
    d.reload(expect="reload failed; the previous configuration stays in use")
    assert '%s:2: key "henry": the window must be a duration' % path in d.log_text(), d.log_text()[-2000:]
    assert message(d.client(), "henry", 1) == [DEFER]
    # fixed: the new limits apply, the counters are kept
    with open(path, "w") as f:
        f.write("vip 4/1h\nhenry 5/1h\n")
    d.reload()
    assert message(d.client(), "henry", 1) == ["DUNNO"] * 2
    assert counter(d, "sasl/3600/sasl_username=henry") == 2
    d.stop()


def test_exempt_recipients():
    d = pdtest.daemon(rl(rule(limits='"1/1h"')))
    c = d.client()
    assert message(c, "ivy", 1) == ["DUNNO"] * 2
    assert message(c, "ivy", 1) == [DEFER]
    assert c.ask(rcpt("ivy", 0, recipient="postmaster@example.test")) == "DUNNO"
    assert c.ask(rcpt("ivy", 0, recipient="abuse@example.test")) == "DUNNO"
    assert c.ask(rcpt("ivy", 0, recipient="Postmaster")) == "DUNNO"
    assert "recipient <postmaster@example.test> exempt (exempt_recipients): not limited" in d.log_text()
    d.stop()
    d = pdtest.daemon(rl(rule(limits='"1/1h"'), "exempt_recipients = { }"))
    assert message(d.client(), "ivy", 1) == ["DUNNO"] * 2
    assert d.ask(rcpt("ivy", 0, recipient="postmaster@example.test")) == DEFER
    d.stop()


def test_two_daemons_share_one_limit_on_redis():
    r = redis()
    d1 = pdtest.daemon(rl(rule(limits='"4/1h"'), extra=redis_store(r)))
    d2 = pdtest.daemon(rl(rule(limits='"4/1h"'), extra=redis_store(r)))
    c1, c2 = d1.client(), d2.client()
    assert message(c1, "jack") == ["DUNNO"] * 4
    assert message(c2, "jack") == ["DUNNO"] * 4
    assert message(c1, "jack") == ["DUNNO"] * 4
    assert message(c2, "jack") == ["DUNNO"] * 4
    assert message(c1, "jack") == [DEFER] * 3
    assert message(c2, "jack") == [DEFER] * 3
    assert r.keys(b"policyd:ratelimit:") == [b"policyd:ratelimit:c:sasl/3600/sasl_username=jack"], r.keys()
    assert counter(d1, "sasl/3600/sasl_username=jack") == 4
    d1.stop()
    d2.stop()


def test_redis_down_on_error_within_redis_timeout():
    r = redis()
    d = pdtest.daemon(rl(rule(limits='"4/1h"'), extra=redis_store(r, timeout=300)))
    c = d.client()
    assert message(c, "kate", 1) == ["DUNNO"] * 2
    os.kill(r.proc.pid, signal.SIGSTOP)  # hangs: every command waits for redis_timeout
    try:
        for i in range(3):
            # the client's bound (5 s) is far above redis_timeout (0.3 s): an answer, not a hang
            assert c.ask(rcpt("kate", i), timeout=5) == ONERR
    finally:
        os.kill(r.proc.pid, signal.SIGCONT)
    r.kill()  # gone: refused at once
    for i in range(3):
        assert c.ask(rcpt("kate", i), timeout=5) == ONERR
    log = d.log_text()
    assert log.count("redis down") == 1, log[-3000:]
    d.stop()


def test_bad_config_file_line():
    for body, needle, why in [
            (rule(limits='"5/1fortnight"'), '"5/1fortnight"', 'limits "5/1fortnight": the window must be'),
            (rule(count="mails"), '"mails"', 'count "mails": expected messages, recipients, bytes or requests'),
            (rule(key='"sasl username"'), 'sasl username', 'key "sasl username": expected request attribute'),
            ('rule "x" {\n  key = { "sender" }\n}', '"x"', 'limits: give 1 to 8 limits'),
            (rule(more='overrides = "/nonexistent/rl"'), "/nonexistent", "/nonexistent/rl: No such file"),
            (rule(more='action = "OK"'), '"OK"', "action: expected DEFER_IF_PERMIT"),
            (rule() + '\nprotocol_state = { "RCPT" }', '"RCPT"', "protocol_state lacks END-OF-MESSAGE")]:
        d = pdtest.Daemon(rl(body))
        pdtest._daemons.append(d)
        p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = p.stdout.decode()
        assert p.returncode != 0, out
        assert "%s:" % d.conf in out and why in out, (why, out)
        print("# " + out.strip().splitlines()[0])
        # the line: in the rule's section (libconfuse names its last line), or the plugin section's first
        m = re.search(re.escape(d.conf) + r":(\d+): ", out)
        lines = open(d.conf).read().splitlines()
        if "protocol_state" in why:
            assert m and int(m.group(1)) == pdtest.line_of(d.conf, "ratelimit {"), out
        else:
            first = pdtest.line_of(d.conf, 'rule "')
            last = next(n for n in range(first, len(lines) + 1) if lines[n - 1] == "}")
            assert m and first <= int(m.group(1)) <= last, (first, last, out)


def test_observe_counts_what_it_would_accept():
    d = pdtest.daemon(rl(rule(limits='"1/1h"'), "observe = true"))
    c = d.client()
    assert message(c, "mia", 2) == ["DUNNO"] * 3
    # over: the core logs what would have been answered and lets the mail through; not counted
    assert message(c, "mia", 2) == ["DUNNO"] * 3
    assert counter(d, "sasl/3600/sasl_username=mia") == 1
    log = d.log_text()
    assert "would have answered" in log and DEFER in log, log[-3000:]
    d.stop()


def test_policyd_state_lists_and_deletes_counters():
    d = pdtest.daemon(rl(rule(limits='"1/1h"')))
    assert message(d.client(), "liam", 1) == ["DUNNO"] * 2
    assert message(d.client(), "liam", 1) == [DEFER]
    rc, out = state(d, "list", "ratelimit")
    assert rc == 0 and "ratelimit counter sasl/3600/sasl_username=liam " in out, out
    rc, out = state(d, "delete", "ratelimit", "counter", "sasl/3600/sasl_username=liam")
    assert rc == 0, out
    assert message(d.client(), "liam", 1) == ["DUNNO"] * 2
    d.stop()


try:
    pdtest.run(globals())
finally:
    for r in _redis:
        r.cleanup()
