# store.py - the core's state service as plugins use it (host->store_*): namespaces, persistence, Redis, outages
# SPDX-License-Identifier: BSD-2-Clause
"""The fake plugin's `count = "KEY"` adds 1 to a counter of the state service
and answers "DEFER_IF_PERMIT count KEY=TOTAL", so every test reads the
store's state from the daemon's answers. Redis tests start a private
redis-server on a loopback port and stop it by PID."""
import os
import subprocess

import pdtest
from pdtest import req
from pdredis import REDIS_SERVER, Redis, built_with_hiredis

ONERR = "DEFER_IF_PERMIT 4.3.0 state service down"


def count(d, chain=None, **kw):
    """The total the instance of CHAIN (policy_context) answers with."""
    if chain:
        kw["policy_context"] = chain
    a = d.ask(req(**kw))
    assert a.startswith("DEFER_IF_PERMIT count "), a
    return int(a.rsplit("=", 1)[1])


TWO = ('plugins = { "a" }\n'
       'chain "b" { plugins = { "b" } }\n'
       'chain "a2" { plugins = { "a" } }\n'
       'fake "a" { count = "k" }\n'
       'fake "b" { count = "k" }\n')


def test_instances_have_their_own_namespace_and_state_persists():
    d = pdtest.daemon(TWO)
    assert [count(d) for _ in range(3)] == [1, 2, 3]
    assert count(d, "b") == 1  # same key, other instance: its own counter
    assert count(d, "a2") == 4  # one instance in two chains: one state
    d.wait_log('store "default": GDBM %s' % os.path.join(d.state_dir, "state.db"))
    d.stop()
    d.start()
    assert count(d) == 5  # kept in state_dir/state.db across a restart
    assert count(d, "b") == 2


def test_window_follows_the_clock():
    d = pdtest.daemon('plugins = { "fake" }\nfake { count = "w" count_window = 60 }\n', clock=True)
    assert [count(d) for _ in range(3)] == [1, 2, 3]
    d.advance(30)
    assert count(d) == 4  # still inside the 60 s window
    d.advance(50)  # 80 s after the first three (past 60 * 17/16 s), 50 s after the fourth
    assert count(d) == 2, "the first three left the window, the fourth did not"
    d.advance(200)
    assert count(d) == 1


def test_named_store_and_undefined_store():
    d = pdtest.daemon('plugins = { "fake" }\nstore "other" { database = "other.db" }\n'
                      'fake { count = "n" store = "other" }\n')
    assert count(d) == 1
    assert os.path.exists(os.path.join(d.state_dir, "other.db"))
    d.stop()
    d.write_config('plugins = { "fake" }\nfake {\n  count = "n"\n  store = "nowhere"\n}\n')
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    line = pdtest.line_of(d.conf, "fake {")
    assert '%s:%d: fake "fake": store "nowhere" is not defined' % (d.conf, line) in p.stderr, p.stderr


def test_undeclared_use_is_an_error_and_opens_nothing():
    # fake2 does not declare PD_PLUGIN_STATE: its calls fail (on_error), no store is opened for it
    d = pdtest.daemon('on_error = "%s"\nplugins = { "fake2" }\nfake2 { count = "k" }\n' % ONERR)
    assert d.ask(req()) == ONERR
    d.wait_log("fake2: plugin fake2 uses the state service without PD_PLUGIN_STATE in its flags")
    assert not os.path.exists(os.path.join(d.state_dir, "state.db"))
    assert "GDBM" not in d.log_text()


def test_store_section_errors_carry_file_and_line():
    d = pdtest.Daemon("")
    for body, needle in [('store {\n  lock_timeout = 0\n}\n', "lock_timeout = 0: must be between 1 and 60000"),
                         ('store {\n  sync_interval = "5x"\n}\n', 'sync_interval: "5x" is not a duration'),
                         ('store {\n  backend = "sql"\n}\n', 'must be "gdbm" or "redis"'),
                         ('store {\n  colour = 1\n}\n', "colour"),
                         ('store "a" { }\nstore "a" { }\n', "a"),
                         ('store "bad name" { }\n', "a store's name is")]:
        d.write_config('plugins = { "fake" }\n' + body)
        p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, body
        assert needle in p.stderr and d.conf + ":" in p.stderr, (body, p.stderr)
    d.cleanup()


def test_a_store_that_cannot_open_stops_the_start():
    d = pdtest.Daemon('plugins = { "fake" }\nstore { database = "/proc/policyd-none/state.db" }\n'
                      'fake { count = "x" }\n')
    pdtest._daemons.append(d)
    d.start(wait=False)
    assert d.proc.wait(timeout=30) != 0
    assert 'store "default": cannot open' in d.log_text() and "/proc/policyd-none/state.db" in d.log_text(), \
        d.log_text()


STATE = os.path.join(pdtest.BUILDDIR, "policyd-state")


def state(d, *args, rc=0):
    """policyd-state -c D's config ARGS: its stdout (the exit status must be RC)."""
    p = subprocess.run([STATE, "-c", d.conf] + list(args), capture_output=True, text=True, timeout=60)
    assert p.returncode == rc, (args, p.returncode, p.stdout, p.stderr)
    return p.stdout


def admin_while_running(d):
    """policyd-state lists, counts, shows and deletes entries of D while it serves."""
    assert count(d, client_address="192.0.2.1") == 1
    assert count(d, "b") == 1
    out = state(d, "list")
    assert "fake counter k ttl=" in out and "total=1 window=60s" in out, out
    assert "b counter k ttl=" in out, out
    assert state(d, "list", "b").count("\n") == 1
    assert "fake counters=1 values=0 member_sets=0" in state(d, "count"), state(d, "count")
    assert state(d, "count").rstrip().endswith("total 2")
    assert "total=1" in state(d, "show", "fake", "counter", "k")
    state(d, "show", "fake", "value", "k", rc=1)
    assert state(d, "delete", "fake", "counter", "k").startswith("deleted fake counter k")
    state(d, "delete", "fake", "counter", "k", rc=1)
    assert count(d) == 1  # starts over
    assert count(d, "b") == 2  # the other instance untouched
    state(d, "show", "fake", "colour", "k", rc=2)
    state(d, "frobnicate", rc=2)


def test_admin_command_gdbm_while_the_daemon_runs():
    d = pdtest.daemon('plugins = { "fake" }\nchain "b" { plugins = { "b" } }\n'
                      'fake { count = "k" }\nfake "b" { count = "k" }\n')
    admin_while_running(d)


def test_admin_command_never_creates_a_file():
    d = pdtest.Daemon('plugins = { "fake" }\nfake { count = "k" }\n')
    pdtest._daemons.append(d)
    os.makedirs(d.state_dir)
    p = subprocess.run([STATE, "-c", d.conf, "list"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "state.db" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(d.state_dir, "state.db"))
    p = subprocess.run([STATE, "-c", d.conf, "-S", "nope", "list"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and 'has no store "nope"' in p.stderr, p.stderr


def redis_conf(port, extra=""):
    return ('on_error = "%s"\nplugins = { "fake" }\n'
            'store {\n  backend = "redis"\n  redis_server = "127.0.0.1:%d"\n  redis_timeout = 300\n%s}\n'
            'fake { count = "r" }\n' % (ONERR, port, extra))


def need_redis():
    if not REDIS_SERVER:
        pdtest.skip("needs redis-server (Debian package redis-server)")
    if not built_with_hiredis():
        pdtest.skip("policyd was built without hiredis")


def test_two_daemons_share_a_redis_store():
    need_redis()
    r = Redis().start()
    try:
        d1 = pdtest.daemon(redis_conf(r.port))
        d2 = pdtest.daemon(redis_conf(r.port))
        assert count(d1) == 1
        assert count(d2) == 2
        assert count(d1) == 3
        keys = r.keys(b"policyd:")
        assert keys == [b"policyd:fake:c:r"], keys
    finally:
        r.cleanup()


def test_store_settings_in_a_plugin_section_make_its_own_store():
    need_redis()
    r = Redis().start()
    try:
        # the default store is GDBM; instance "b" overrides the backend in its own section
        d = pdtest.daemon('plugins = { "fake" }\nchain "b" { plugins = { "b" } }\n'
                          'fake { count = "k" }\n'
                          'fake "b" {\n  count = "k"\n  backend = "redis"\n  redis_server = "127.0.0.1:%d"\n}\n'
                          % r.port)
        assert count(d) == 1 and count(d, "b") == 1 and count(d, "b") == 2
        assert r.keys(b"policyd:") == [b"policyd:b:c:k"], r.keys(b"policyd:")
        d.wait_log('store "default/b": Redis 127.0.0.1:%d' % r.port)
    finally:
        r.cleanup()
    d = pdtest.Daemon("")
    for body, needle in [('fake {\n  lock_timeout = 0\n}\n', "lock_timeout = 0: must be between 1 and 60000"),
                         ('fake {\n  backend = "sql"\n}\n', 'must be "gdbm" or "redis"'),
                         ('fake2 {\n  lock_timeout = 5\n}\n', "lock_timeout")]:  # keeps no state: no such option
        d.write_config('plugins = { "fake", "fake2" }\n' + body)
        p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and needle in p.stderr and d.conf + ":" in p.stderr, (body, p.stderr)
    d.cleanup()


def test_admin_command_redis_while_the_daemon_runs():
    need_redis()
    r = Redis().start()
    try:
        store = 'store {\n  backend = "redis"\n  redis_server = "127.0.0.1:%d"\n}\n' % r.port
        d = pdtest.daemon(store + 'plugins = { "fake" }\nchain "b" { plugins = { "b" } }\n'
                          'fake { count = "k" }\nfake "b" { count = "k" }\n')
        admin_while_running(d)
    finally:
        r.cleanup()


def test_redis_outage_on_error_then_recovery_without_restart():
    need_redis()
    r = Redis().start()
    try:
        d = pdtest.daemon(redis_conf(r.port))
        assert count(d) == 1
        r.kill()
        assert d.ask(req()) == ONERR
        assert d.ask(req()) == ONERR
        r2 = Redis(port=r.port).start()  # same port, empty
        try:
            for _ in range(100):  # reconnects back off from 100 ms
                a = d.ask(req())
                if a != ONERR:
                    break
                pdtest.time.sleep(0.1)
            assert a == "DEFER_IF_PERMIT count r=1", a
            assert d.alive()
        finally:
            r2.cleanup()
    finally:
        r.cleanup()


def test_redis_down_at_start_is_not_fatal():
    need_redis()
    port = pdtest.free_port()
    d = pdtest.daemon(redis_conf(port))
    assert d.ask(req()) == ONERR
    r = Redis(port=port).start()
    try:
        for _ in range(100):
            a = d.ask(req())
            if a != ONERR:
                break
            pdtest.time.sleep(0.1)
        assert a == "DEFER_IF_PERMIT count r=1", a
    finally:
        r.cleanup()


if __name__ == "__main__":
    pdtest.run(globals())
