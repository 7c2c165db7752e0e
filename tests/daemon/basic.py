# basic.py - daemon tests: the protocol over real sockets, spawn mode, -t, -V, concurrency
# SPDX-License-Identifier: BSD-2-Clause
import os
import resource
import socket
import subprocess
import time

import pdtest
from pdtest import req

EXAMPLE = 'plugins = { "syslog", "example" }\n'


def test_example_plugin_decides():
    d = pdtest.daemon(EXAMPLE)
    c = d.client()
    assert c.ask(req(recipient="bob@example.test")) == "DUNNO"
    a = c.ask(req(recipient="policyblock@example.test"))
    assert a == "REJECT 5.7.1 Recipient address rejected by policy", a
    a = c.ask(req(sender="same@example.test", recipient="SAME@example.test"))
    assert a.startswith("REJECT") and "sender is the recipient" in a, a
    # the null sender is not "equal" to anything
    assert c.ask(req(sender="", recipient="x@example.test")) == "DUNNO"


def test_many_requests_per_connection_and_unknown_attributes():
    d = pdtest.daemon(EXAMPLE)
    c = d.client()
    for i in range(300):
        rcpt = "policyblock%d@example.test" % i if i % 3 == 0 else "user%d@example.test" % i
        a = c.ask(req(recipient=rcpt, x_attribute_from_postfix_4=str(i)))
        assert a.startswith("REJECT") == (i % 3 == 0), (i, a)


def test_pipelined_requests_in_one_write():
    d = pdtest.daemon(EXAMPLE)
    c = d.client()
    c.send(b"".join(pdtest.encode(req(recipient=r)) for r in ["a@x", "policyblock@x", "b@x"]))
    assert [c.reply(), c.reply(), c.reply()] == ["DUNNO", "REJECT 5.7.1 Recipient address rejected by policy", "DUNNO"]


def test_decision_log_line():
    d = pdtest.daemon(EXAMPLE)
    d.ask(req(queue_id="4XyZ1", recipient="policyblock@example.test", client_name="mx.s.example",
              client_address="198.51.100.7", helo_name="helo.s.example", sender="s@s.example"))
    log = d.wait_log("decision: queue_id=4XyZ1")
    line = [l for l in log.splitlines() if "decision: queue_id=4XyZ1" in l][0]
    for part in ("client=mx.s.example[198.51.100.7]", "helo=helo.s.example", "sender=<s@s.example>",
                 "recipient=<policyblock@example.test>", 'action="REJECT 5.7.1', "plugin=example", "state=RCPT"):
        assert part in line, (part, line)
    assert line.rstrip().endswith("us") and "time=" in line, line
    # syslog plugin logged the attributes with its name prefixed
    assert "syslog: protocol_state=RCPT queue_id=4XyZ1" in log


def test_client_data_is_not_a_format_and_is_capped():
    d = pdtest.daemon(EXAMPLE)
    evil = "%s%n%x%s%s%n" * 50 + "@example.test"
    assert d.ask(req(recipient=evil, helo_name="\x01\x02%n")) == "DUNNO"
    log = d.wait_log("decision:")
    line = [l for l in log.splitlines() if "decision:" in l][-1]
    assert "%s%n%x" in line and "..." in line and len(line) < 1500, line
    assert d.alive()


def test_client_data_cannot_forge_log_fields_or_lines():
    """A quoted local part cannot forge action="..." or other fields of the
    decision line, and CR, LF, TAB or ESC never reach the log raw: client data is
    escaped as \\xHH (issue 12.15). (A LF cannot come in a value: it ends the line.)"""
    d = pdtest.daemon(EXAMPLE)
    sender = '"x> action=\\"OK\\" plugin=forged <y"@s.example'
    assert d.ask(req(queue_id="Q1", sender=sender, helo_name="h\rfake: line\x1b[31m\tx",
                     recipient="policyblock@x", client_name="a b")).startswith("REJECT")
    line = [l for l in d.wait_log("decision: queue_id=Q1").splitlines() if "decision: queue_id=Q1" in l][0]
    fields = line.split()  # every field is one token: client data has no raw space
    assert [f for f in fields if f.startswith('action="')] == ['action="REJECT'], line
    assert [f for f in fields if f.startswith("plugin=")] == ["plugin=example"], line
    assert "\x1b" not in line and "\t" not in line and "\r" not in line, line
    assert "sender=<\\x22x\\x3e\\x20action=\\x5c\\x22OK" in line, line
    assert "helo=h\\x0dfake:\\x20line\\x1b[31m\\x09x" in line, line
    assert "client=a\\x20b[" in line, line
    assert "fake: line" not in d.log_text()


def test_pipelined_requests_behind_a_full_socket_buffer():
    """A client pipelines more requests than the replies' socket buffer holds,
    all in one write that policyd reads at once, and reads no reply until it
    has written them: every reply comes once it reads (issue 12.9: a reply
    finished by an EPOLLOUT-only event was not followed by the next buffered
    request, which waited for more input or for idle_timeout). A unix socket:
    its buffer is fixed (no TCP autotuning), so the send must block."""
    d = pdtest.daemon('plugins = { "fake" }\nfake {\n  action = "REJECT %s"\n}\n' % ("x" * 500), unix=True,
                      global_config="idle_timeout = 120\nmax_line_length = 65536\n", verbose=0)
    c = d.client(unix=True)
    one = b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@b\n\n"
    n = 65000 // len(one)  # one read of policyd's 64 KB input buffer; ~800 KB of replies
    c.send(one * n)
    time.sleep(0.5)  # policyd fills its send buffer and must wait for the client
    replies = [c.reply(timeout=10 * pdtest.SLOW) for i in range(n)]
    assert all(r.startswith("REJECT xxx") for r in replies) and len(replies) == n
    assert d.ask(req(recipient="x@x")).startswith("REJECT")


def test_unix_socket():
    d = pdtest.daemon(EXAMPLE, unix=True)
    st = os.stat(d.sock)
    assert oct(st.st_mode & 0o777) == oct(0o666), oct(st.st_mode)
    c = d.client(unix=True)
    assert c.ask(req(recipient="policyblock@example.test")).startswith("REJECT")
    d.stop()
    assert not os.path.exists(d.sock), "socket file not removed on stop"


def test_ipv6_listener():
    if not socket.has_ipv6:
        pdtest.skip("no IPv6")
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pdtest.skip("no ::1 here")
    port = pdtest.free_port()
    d = pdtest.Daemon(EXAMPLE, listen=["inet:[::1]:%d" % port])
    pdtest._daemons.append(d)
    d.start()
    s = socket.create_connection(("::1", port), timeout=10)
    c = pdtest.Client(s)
    assert c.ask(req(client_address="2001:db8::1", recipient="policyblock@x")).startswith("REJECT")


def test_exim_half_close():
    # ${readsocket}: one request, shutdown(SHUT_WR), read until EOF
    d = pdtest.daemon(EXAMPLE)
    s = d.connect()
    s.sendall(pdtest.encode(req(recipient="policyblock@example.test")))
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data == b"action=REJECT 5.7.1 Recipient address rejected by policy\n\n", data


def test_half_close_through_worker_pool_many_times():
    # regression: a request answered by a worker, then the client's half-close
    # in the same epoll batch, used a freed connection (double free)
    d = pdtest.daemon('plugins = { "fake", "example" }\n'
                      'fake {\n  trigger = "grey"\n  action = "DEFER_IF_PERMIT 4.2.0 Greylisted"\n}\n', verbose=0)
    want = {"grey@x": b"action=DEFER_IF_PERMIT 4.2.0 Greylisted\n\n",
            "policyblock@x": b"action=REJECT 5.7.1 Recipient address rejected by policy\n\n",
            "ok@x": b"action=DUNNO\n\n"}
    rcpts = list(want)
    for i in range(600):
        s = d.connect()
        s.sendall(pdtest.encode(req(recipient=rcpts[i % 3])))
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        assert data == want[rcpts[i % 3]], (i, data)
    assert "died" not in d.log_text()


def test_spawn_mode():
    d = pdtest.Daemon(EXAMPLE)
    pdtest._daemons.append(d)
    inp = pdtest.encode(req(recipient="a@x")) + pdtest.encode(req(recipient="policyblock@x"))
    p = subprocess.run([pdtest.POLICYD, "-s", "-c", d.conf], input=inp, capture_output=True, timeout=30)
    assert p.returncode == 0, p
    assert p.stdout == b"action=DUNNO\n\naction=REJECT 5.7.1 Recipient address rejected by policy\n\n", p.stdout
    # a protocol violation ends the session with a non-zero status and no reply
    p = subprocess.run([pdtest.POLICYD, "-s", "-c", d.conf], input=b"request=bogus\n\n", capture_output=True,
                       timeout=30)
    assert p.returncode != 0 and p.stdout == b"", p


def test_check_config_and_version():
    d = pdtest.Daemon(EXAMPLE + 'example { marker = "stop" }\n')
    pdtest._daemons.append(d)
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "configuration OK" in p.stdout and "plugin example" in p.stdout, p
    d.write_config(EXAMPLE + 'example {\n  marker = "stop"\n  markre = "x"\n}\n')
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    want = "%s:%d: no such option 'markre'" % (d.conf, pdtest.line_of(d.conf, "markre"))
    assert p.returncode != 0 and want in p.stderr, p
    p = subprocess.run([pdtest.POLICYD, "-V"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("policyd ") and "plugin ABI 2, API 1" in p.stdout, p
    assert "libconfuse" in p.stdout, p  # its types are part of the plugin ABI
    p = subprocess.run([pdtest.POLICYD, "-x"], capture_output=True, text=True)
    assert p.returncode == 2 and "usage:" in p.stderr


def test_thousand_concurrent_connections():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2200:
        pdtest.skip("file descriptor limit %d too low" % hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    d = pdtest.daemon(EXAMPLE, verbose=0)
    conns = [d.client() for _ in range(1000)]
    for i, c in enumerate(conns):
        c.send(pdtest.encode(req(recipient="policyblock%d@x" % i if i % 2 else "u%d@x" % i)))
    for i, c in enumerate(conns):
        a = c.reply()
        assert a.startswith("REJECT") == bool(i % 2), (i, a)
    # and again on the same connections, in reverse order
    for i, c in reversed(list(enumerate(conns))):
        assert c.ask(req(recipient="u@x")) == "DUNNO"
    for c in conns:
        c.close()


def test_blocking_plugin_does_not_stall_others():
    d = pdtest.daemon('plugins = { "fake" }\nfake {\n  trigger = "slow"\n  sleep_ms = 3000\n'
                      '  action = "DEFER_IF_PERMIT slow answer"\n}\n')
    slow = d.client()
    slow.send(pdtest.encode(req(recipient="slow@x")))
    # while the slow request waits in its plugin, others are answered
    for i in range(20):
        assert d.ask(req(recipient="fast%d@x" % i)) == "DUNNO"
    slow.sock.setblocking(False)
    try:
        early = slow.sock.recv(100)
    except BlockingIOError:
        early = b""
    assert early == b"", "slow request answered before the fast ones finished"
    assert slow.reply() == "DEFER_IF_PERMIT slow answer"


def test_sample_config_runs():
    # etc/policyd.conf as shipped, with only the paths of this build tree added
    sample = open(os.path.join(pdtest.SRCDIR, "etc", "policyd.conf")).read()
    d = pdtest.Daemon()
    pdtest._daemons.append(d)
    with open(d.conf, "w") as f:
        f.write(sample + '\nlisten = { "inet:127.0.0.1:%d" }\nplugin_dir = "%s"\nstate_dir = "%s"\npidfile = ""\n'
                % (d.port, pdtest.plugin_path(), d.state_dir))
        if os.geteuid() == 0:
            f.write('user = "root"\n')  # policyd refuses root unless told
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p
    d.start()
    assert d.ask(req(recipient="policyblock@example.test")).startswith("REJECT")
    a = d.ask(req())
    assert a.startswith("DEFER_IF_PERMIT 4.2.0 Greylisted, please retry in "), a
    assert os.path.exists(os.path.join(d.state_dir, "state.db"))  # greylist on the state service


if __name__ == "__main__":
    pdtest.run(globals())
