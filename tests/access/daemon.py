# daemon.py - the access plugin in the real policyd: tables on the wire, SIGHUP reloads, a broken table keeps the old ones
# SPDX-License-Identifier: BSD-2-Clause
"""Daemon tests of the access plugin over real sockets. The match rules
themselves are tested on the mock host (test_access); here the tables go
through the daemon as an admin configures them."""
import os
import subprocess

import pdtest
from pdtest import req

CLIENTS = """# clients
192.0.2.0/24            REJECT 5.7.1 client listed
192.0.2.99              DUNNO
2001:db8::/32           DEFER_IF_PERMIT 4.7.1 v6 net
"""
SENDERS = """<>                      REJECT 5.7.1 no bounces here
@spam.example           REJECT 5.7.1 sender domain
"""
RCPTS = """.sub.example.test       HOLD subdomain recipient
"""
NAMES = """/^[0-9]+-[0-9]+-[0-9]+-[0-9]+\\.dyn\\.example\\.net$/ 554 5.7.1 dynamic
"""


def setup(d, clients=CLIENTS, extra_section=""):
    """Write the four tables into D's dir and D's config over them."""
    paths = {}
    for name, text in (("clients", clients), ("senders", SENDERS), ("rcpts", RCPTS), ("names", NAMES)):
        paths[name] = os.path.join(d.dir, "access-" + name)
        with open(paths[name], "w") as f:
            f.write(text)
    conf = """plugins = { "access" }
access {
    table "clients"  { attribute = "client_address" file = "%(clients)s" match = "cidr" }
    table "senders"  { attribute = "sender"         file = "%(senders)s" match = "exact" }
    table "rcpt-dom" { attribute = "recipient"      file = "%(rcpts)s"   match = "suffix" }
    table "names"    { attribute = "client_name"    file = "%(names)s"   match = "regex" }
""" % paths + extra_section + "}\n"
    d.write_config(conf)
    return paths


def started(**kw):
    """A daemon with the four tables, started."""
    d = pdtest.Daemon(**kw)
    pdtest._daemons.append(d)
    setup(d)
    return d.start()


def test_every_kind_on_the_wire():
    d = started()
    c = d.client()
    assert c.ask(req(client_address="192.0.2.1")) == "REJECT 5.7.1 client listed"
    assert c.ask(req(client_address="::ffff:192.0.2.1")) == "REJECT 5.7.1 client listed"  # IPv4-mapped
    assert c.ask(req(client_address="2001:db8::25")) == "DEFER_IF_PERMIT 4.7.1 v6 net"
    # a DUNNO entry is the first match: no later table is asked
    assert c.ask(req(client_address="192.0.2.99", sender="x@spam.example")) == "DUNNO"
    assert c.ask(req(client_address="198.51.100.1", sender="")) == "REJECT 5.7.1 no bounces here"  # null sender
    assert c.ask(req(client_address="198.51.100.1", sender="x@spam.example")) == "REJECT 5.7.1 sender domain"
    assert c.ask(req(client_address="198.51.100.1", sender="x@mx.spam.example")) == "DUNNO"  # @domain: not below
    assert c.ask(req(client_address="198.51.100.1", recipient="a@b.sub.example.test")) == "HOLD subdomain recipient"
    assert c.ask(req(client_address="198.51.100.1", recipient="a@sub.example.test")) == "DUNNO"
    assert c.ask(req(client_address="198.51.100.1", client_name="1-2-3-4.dyn.example.net")) == "554 5.7.1 dynamic"
    assert c.ask(req(client_address="198.51.100.1", client_name="1-2-3-4.dyn.example.net.x")) == "DUNNO"
    # the first match wins: client before sender
    assert c.ask(req(client_address="192.0.2.1", sender="")) == "REJECT 5.7.1 client listed"
    log = d.wait_log("plugin=access")
    assert 'access: table "senders": sender=<> matched: REJECT 5.7.1 no bounces here' in log, log[-3000:]
    assert 'access: table "clients": 3 cidr entries' in log
    # client data in the log is escaped: a forged field stays inside its value
    assert c.ask(req(client_address="198.51.100.1", sender="a b=c@spam.example")) == "REJECT 5.7.1 sender domain"
    assert "sender=<a\\x20b=c@spam.example> matched" in d.wait_log("sender=<a\\x20b")
    c.close()
    d.stop()


def test_table_reloaded_on_sighup():
    d = started()
    c = d.client()
    assert c.ask(req(client_address="203.0.113.5")) == "DUNNO"
    setup(d, clients=CLIENTS + "203.0.113.0/24 REJECT 5.7.1 added on reload\n")
    d.reload()
    assert c.ask(req(client_address="203.0.113.5")) == "REJECT 5.7.1 added on reload"
    assert d.ask(req(client_address="203.0.113.5")) == "REJECT 5.7.1 added on reload"  # a new connection too
    # and taken out again
    setup(d, clients="192.0.2.0/24 OK\n")
    d.reload()
    assert c.ask(req(client_address="203.0.113.5")) == "DUNNO"
    assert c.ask(req(client_address="192.0.2.1", sender="")) == "DUNNO"  # OK lets the next plugin run
    c.close()
    d.stop()


def test_broken_table_keeps_the_old_one():
    d = started()
    c = d.client()
    path = setup(d, clients=CLIENTS + "203.0.113.0/24 REJECT new\n198.51.100.0/24 REJECTT typo\n")["clients"]
    d.reload(expect="reload failed; the previous configuration stays in use")
    log = d.log_text()
    # the file and line of the bad entry
    assert "%s:%d: bad value \"REJECTT typo\"" % (path, pdtest.line_of(path, "REJECTT")) in log, log[-3000:]
    # the old tables still serve, on the old connection and on new ones; nothing of the broken file is in use
    assert c.ask(req(client_address="192.0.2.1")) == "REJECT 5.7.1 client listed"
    assert c.ask(req(client_address="203.0.113.5")) == "DUNNO"
    assert d.ask(req(client_address="192.0.2.1")) == "REJECT 5.7.1 client listed"
    # a table that cannot be read at all: the same
    os.unlink(path)
    d.reload(expect="reload failed; the previous configuration stays in use")
    assert c.ask(req(client_address="192.0.2.1")) == "REJECT 5.7.1 client listed"
    # fixed: the next SIGHUP takes it
    setup(d, clients=CLIENTS + "203.0.113.0/24 REJECT new\n")
    d.reload()
    assert c.ask(req(client_address="203.0.113.5")) == "REJECT new"
    c.close()
    d.stop()


def test_broken_table_at_start_refuses_to_start():
    d = pdtest.Daemon()
    pdtest._daemons.append(d)
    path = setup(d, clients="192.0.2.0/24 REJECT\n192.0.2.1/24 REJECT host bits\n")["clients"]
    d.start(wait=False)
    d.proc.wait(timeout=30 * pdtest.SLOW)
    assert d.proc.returncode != 0
    assert "%s:2: bad key \"192.0.2.1/24\"" % path in d.log_text(), d.log_text()[-2000:]


def test_section_errors_carry_file_and_line():
    d = pdtest.Daemon()
    pdtest._daemons.append(d)
    setup(d)
    text = open(d.conf).read().replace('match = "regex"', 'match = "glob"')
    with open(d.conf, "w") as f:
        f.write(text)
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    out = p.stdout.decode()
    assert p.returncode != 0, out
    assert '%s:%d: access: table "names": match "glob"' % (d.conf, pdtest.line_of(d.conf, '"glob"')) in out, out


def test_relative_file_is_refused():
    # the core does not tell a plugin where its config file is (the daemon runs in /): an
    # absolute path is required, and the error names the line
    d = pdtest.Daemon()
    pdtest._daemons.append(d)
    with open(os.path.join(d.dir, "rel-clients"), "w") as f:
        f.write("192.0.2.0/24 REJECT relative\n")
    d.write_config('plugins = { "access" }\naccess {\n'
                   '  table "c" { attribute = "client_address" file = "rel-clients" match = "cidr" }\n}\n')
    d.start(wait=False)
    d.proc.wait(timeout=30 * pdtest.SLOW)
    assert d.proc.returncode != 0
    assert '%s:%d: access: table "c": file "rel-clients": give an absolute path' % (
        d.conf, pdtest.line_of(d.conf, "rel-clients")) in d.log_text(), d.log_text()


def test_many_entries():
    # 200,000 cidr and 200,000 exact entries load and answer right (scale and timing: bench/run)
    d = pdtest.Daemon(verbose=0)
    pdtest._daemons.append(d)
    cpath, spath = os.path.join(d.dir, "big-c"), os.path.join(d.dir, "big-s")
    with open(cpath, "w") as f:
        for i in range(200000):
            f.write("10.%d.%d.%d REJECT c%d\n" % (i >> 16, (i >> 8) & 255, i & 255, i))
    with open(spath, "w") as f:
        for i in range(200000):
            f.write("u%d@d%d.example.org REJECT s%d\n" % (i, i % 1000, i))
    d.write_config('plugins = { "access" }\naccess {\n'
                   '  table "c" { attribute = "client_address" file = "%s" match = "cidr" }\n'
                   '  table "s" { attribute = "sender" file = "%s" match = "exact" }\n}\n' % (cpath, spath))
    d.start()
    c = d.client()
    assert c.ask(req(client_address="10.2.191.255")) == "REJECT c%d" % (2 * 65536 + 191 * 256 + 255)
    assert c.ask(req(client_address="10.3.13.64")) == "DUNNO"  # 200000 itself: one past the last
    assert c.ask(req(client_address="198.51.100.1", sender="u123456@d456.example.org")) == "REJECT s123456"
    assert c.ask(req(client_address="198.51.100.1", sender="u123456@d457.example.org")) == "DUNNO"
    c.close()
    d.stop()


pdtest.run(globals())
