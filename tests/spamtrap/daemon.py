# daemon.py - the spamtrap plugin in the real policyd: hit then deferred, /24 and /64 scopes, expiry on a moved clock, blocks shared over redis-server
# SPDX-License-Identifier: BSD-2-Clause
"""Daemon tests of the spamtrap plugin on the core's state service: the
local store (GDBM in state_dir) and a private redis-server on a free
loopback port (no persistence, a temp dir, stopped by its PID) shared by
two daemons. Expiry is tested by moving the daemon's wall clock
(Daemon(clock=True)): the state service judges expiry by policyd's clock,
on Redis too. Nothing here asserts how fast something happens."""
import os
import subprocess

import pdredis
import pdtest
from pdtest import req

STATE = os.path.join(pdtest.BUILDDIR, "policyd-state")
TRAP = "550 5.1.1 User unknown"
BLOCKED = "DEFER_IF_PERMIT 4.7.1 Service unavailable: your mail server sent mail to a spam trap; try again later"
ONERR = "DEFER_IF_PERMIT 4.3.0 state service down"


def st(options="", extra=""):
    """A config with only the spamtrap plugin; OPTIONS go into its section."""
    return ('on_error = "%s"\nplugins = { "spamtrap" }\n%sspamtrap {\n'
            '  traps = { "trap@example.org", "@trap.example.org" }\n%s\n}\n' % (ONERR, extra, options))


def redis():
    """A private redis-server, started; stopped by its PID after the test run."""
    if not pdredis.REDIS_SERVER or not pdredis.built_with_hiredis():
        pdtest.skip("needs redis-server and a policyd built with hiredis")
    r = pdredis.Redis().start()
    _redis.append(r)
    return r


def redis_store(r):
    return 'store {\n  backend = "redis"\n  redis_server = "127.0.0.1:%d"\n}\n' % r.port


def state(d, *args):
    """policyd-state on D's configuration: (status, output)."""
    p = subprocess.run([STATE, "-c", d.conf] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    return p.returncode, p.stdout.decode()


_redis = []


def test_hit_rejected_then_client_deferred():
    d = pdtest.daemon(st())
    c = d.client()
    assert c.ask(req(client_address="192.0.2.10", recipient="bob@example.test")) == "DUNNO"
    assert c.ask(req(client_address="192.0.2.10", recipient="trap@example.org")) == TRAP
    # the client's other mail, on this connection and on a new one
    assert c.ask(req(client_address="192.0.2.10", recipient="bob@example.test")) == BLOCKED
    assert d.ask(req(client_address="192.0.2.10", recipient="carol@example.test")) == BLOCKED
    assert d.ask(req(client_address="::ffff:192.0.2.10", recipient="carol@example.test")) == BLOCKED
    assert d.ask(req(client_address="192.0.2.11", recipient="bob@example.test")) == "DUNNO"  # /32 by default
    # @domain: that domain, not its subdomains
    assert d.ask(req(client_address="198.51.100.3", recipient="x@sub.trap.example.org")) == "DUNNO"
    assert d.ask(req(client_address="198.51.100.3", recipient="x@trap.example.org")) == TRAP
    log = d.log_text()
    assert "spamtrap: trap <trap@example.org> hit by client [192.0.2.10]: rejected, 192.0.2.10/32 blocked for " \
           "604800 s" in log, log[-3000:]
    assert "spamtrap: client [192.0.2.10] blocked (192.0.2.10/32, " in log
    d.stop()


def test_block_survives_restart_and_reload():
    d = pdtest.daemon(st())
    assert d.ask(req(client_address="192.0.2.20", recipient="trap@example.org")) == TRAP
    d.reload()
    assert d.ask(req(client_address="192.0.2.20")) == BLOCKED
    d.stop()
    d.start()
    assert d.ask(req(client_address="192.0.2.20")) == BLOCKED
    d.stop()


def test_scopes_24_and_64():
    d = pdtest.daemon(st("ipv4_prefix = 24"))
    assert d.ask(req(client_address="192.0.2.77", recipient="trap@example.org")) == TRAP
    assert d.ask(req(client_address="192.0.2.1")) == BLOCKED
    assert d.ask(req(client_address="192.0.2.254")) == BLOCKED
    assert d.ask(req(client_address="192.0.3.1")) == "DUNNO"
    assert d.ask(req(client_address="2001:db8:1:2::a", recipient="x@trap.example.org")) == TRAP
    assert d.ask(req(client_address="2001:db8:1:2:ffff::1")) == BLOCKED
    assert d.ask(req(client_address="2001:db8:1:3::a")) == "DUNNO"
    log = d.log_text()
    assert "192.0.2.0/24 blocked" in log and "2001:db8:1:2::/64 blocked" in log, log[-3000:]
    d.stop()


def test_block_expires_on_a_fake_clock():
    d = pdtest.daemon(st("block = 2h"), clock=True)
    assert d.ask(req(client_address="192.0.2.30", recipient="trap@example.org")) == TRAP
    d.advance(2 * 3600 - 60)
    assert d.ask(req(client_address="192.0.2.30")) == BLOCKED
    d.advance(120)
    assert d.ask(req(client_address="192.0.2.30")) == "DUNNO"
    d.stop()


def test_never_block_and_sasl():
    d = pdtest.daemon(st('never_block = { "203.0.113.0/24" }'))
    assert d.ask(req(client_address="203.0.113.5", recipient="trap@example.org")) == TRAP
    assert d.ask(req(client_address="203.0.113.5")) == "DUNNO"
    assert "in never_block: rejected, not blocked" in d.log_text()
    # SASL clients are skipped by default: no rejection, no block
    assert d.ask(req(client_address="192.0.2.40", recipient="trap@example.org", sasl_username="alice")) == "DUNNO"
    assert d.ask(req(client_address="192.0.2.40")) == "DUNNO"
    d.stop()


def test_hit_on_one_daemon_blocks_on_another_sharing_redis():
    r = redis()
    d1 = pdtest.daemon(st(extra=redis_store(r)))
    d2 = pdtest.daemon(st(extra=redis_store(r)))
    assert d2.ask(req(client_address="192.0.2.50")) == "DUNNO"
    assert d1.ask(req(client_address="192.0.2.50", recipient="trap@example.org")) == TRAP
    assert d2.ask(req(client_address="192.0.2.50")) == BLOCKED
    assert d1.ask(req(client_address="192.0.2.50")) == BLOCKED
    assert d2.ask(req(client_address="192.0.2.51")) == "DUNNO"
    # the store down: mail to a trap is still rejected, other mail gets on_error
    r.kill()
    assert d2.ask(req(client_address="192.0.2.60")) == ONERR
    assert d2.ask(req(client_address="192.0.2.60", recipient="trap@example.org")) == TRAP
    assert "could not be stored" in d2.log_text()
    d1.stop()
    d2.stop()


def test_admin_command_lists_and_lifts_blocks():
    d = pdtest.daemon(st("ipv4_prefix = 24"))
    assert d.ask(req(client_address="192.0.2.80", recipient="trap@example.org")) == TRAP
    assert d.ask(req(client_address="2001:db8:5:6::1", recipient="trap@example.org")) == TRAP
    rc, out = state(d, "list", "spamtrap")
    assert rc == 0, out
    lines = [l for l in out.splitlines() if l.startswith("spamtrap ")]
    assert len(lines) == 2, out
    assert any(" 192.0.2.0/24 " in l and "client=192.0.2.80 trap=trap@example.org" in l for l in lines), out
    assert any(" 2001:db8:5:6::/64 " in l for l in lines), out
    # lift one while the daemon serves
    rc, out = state(d, "delete", "spamtrap", "value", "192.0.2.0/24")
    assert rc == 0, out
    assert d.ask(req(client_address="192.0.2.80")) == "DUNNO"
    assert d.ask(req(client_address="2001:db8:5:6::2")) == BLOCKED
    rc, out = state(d, "delete", "spamtrap", "value", "192.0.2.0/24")
    assert rc == 1, out  # gone already
    d.stop()


def test_admin_command_on_the_shared_store():
    r = redis()
    d = pdtest.daemon(st(extra=redis_store(r)))
    assert d.ask(req(client_address="198.51.100.90", recipient="trap@example.org")) == TRAP
    rc, out = state(d, "list", "spamtrap")
    assert rc == 0 and " 198.51.100.90/32 " in out, out
    rc, out = state(d, "delete", "spamtrap", "v", "198.51.100.90/32")
    assert rc == 0, out
    assert d.ask(req(client_address="198.51.100.90")) == "DUNNO"
    d.stop()


def test_redis_settings_in_the_spamtrap_section():
    # the usual set-up: only the spamtrap instance on the shared Redis, everything else local
    r = redis()
    own = '  backend = "redis"\n  redis_server = "127.0.0.1:%d"' % r.port
    d1 = pdtest.daemon(st(own))
    d2 = pdtest.daemon(st(own))
    assert d1.ask(req(client_address="192.0.2.91", recipient="trap@example.org")) == TRAP
    assert d2.ask(req(client_address="192.0.2.91")) == BLOCKED
    assert r.keys(b"policyd:") == [b"policyd:spamtrap:v:192.0.2.91/32"], r.keys(b"policyd:")
    # policyd-state reaches that instance's own store by its name
    rc, out = state(d1, "-S", "default/spamtrap", "list", "spamtrap")
    assert rc == 0 and " 192.0.2.91/32 " in out, out
    rc, out = state(d1, "-S", "default/spamtrap", "delete", "spamtrap", "value", "192.0.2.91/32")
    assert rc == 0, out
    assert d2.ask(req(client_address="192.0.2.91")) == "DUNNO"
    d1.stop()
    d2.stop()


def test_traps_file_reload_and_errors():
    d = pdtest.Daemon()
    pdtest._daemons.append(d)
    path = os.path.join(d.dir, "traps")
    with open(path, "w") as f:
        f.write("# traps\nfile-trap@example.net\n")
    d.write_config(st('traps_file = "%s"' % path))
    d.start()
    assert d.ask(req(client_address="192.0.2.70", recipient="file-trap@example.net")) == TRAP
    assert d.ask(req(client_address="192.0.2.71", recipient="new-trap@example.net")) == "DUNNO"
    with open(path, "w") as f:
        f.write("file-trap@example.net\nnew-trap@example.net\n")
    d.reload()
    assert d.ask(req(client_address="192.0.2.71", recipient="new-trap@example.net")) == TRAP
    with open(path, "w") as f:
        f.write("file-trap@example.net\nbroken trap\n")
    d.reload(expect="reload failed; the previous configuration stays in use")
    assert "%s:2: " % path in d.log_text()
    assert d.ask(req(client_address="192.0.2.72", recipient="new-trap@example.net")) == TRAP
    d.stop()


try:
    pdtest.run(globals())
finally:
    for r in _redis:
        r.cleanup()
