# harness_selftest.py - the private Postfix of pfharness really asks its policy service
# SPDX-License-Identifier: BSD-2-Clause
"""Checks tests/lib/pfharness.py against policystub (not policyd), so a failure
here points at the harness or the machine rather than at the daemon:
loopback-only listener, policy over inet and over a unix socket, delivery into
the Maildir with headers, and no process left after stop()."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "lib")]
import pfharness  # noqa: E402
import policystub  # noqa: E402

pfharness.require()


def check_instance(pf, stub, tag):
    """Common assertions for one running instance asking STUB."""
    # only the one smtpd listener, on loopback, and nothing else on the network
    listeners = pf.inet_listeners()
    assert listeners == [("tcp", "127.0.0.1", pf.port)], listeners

    # ordinary recipient: accepted and delivered, with the headers we sent
    subject = "selftest %s ok %d" % (tag, os.getpid())
    rc, out = pf.send("alice@example.test", subject=subject)
    assert rc == 0, out
    assert pfharness.smtp_reply(out, "RCPT TO")[0].startswith("250 "), out
    msg = pf.wait_delivery("alice@example.test", subject)
    assert pfharness.header(msg, "Delivered-To") == ["alice@example.test"], msg
    assert pfharness.header(msg, "From") == ["sender@example.test"], msg
    assert "Test message: " + subject in msg, msg

    # the stub saw Postfix's RCPT request for it
    seen = [r for r in stub.requests if r.get("recipient") == "alice@example.test"]
    assert seen, stub.requests
    assert seen[0].get("request") == "smtpd_access_policy", seen[0]
    assert seen[0].get("protocol_state") == "RCPT", seen[0]
    assert seen[0].get("client_address") == "127.0.0.1", seen[0]

    # marker recipient: the stub's REJECT text comes back as a 5xx
    rc, out = pf.send("stubblock@example.test", subject="selftest %s block" % tag)
    assert rc != 0, out
    rcpt = pfharness.smtp_reply(out, "RCPT TO")
    assert len(rcpt) == 1 and rcpt[0].startswith("554 "), out
    assert "stub policy refuses stubblock" in rcpt[0], rcpt
    assert not pf.messages("stubblock@example.test")

    # a domain we do not serve: Postfix refuses before asking the policy
    n = len(stub.requests)
    rc, out = pf.send("bob@elsewhere.invalid", subject="selftest %s relay" % tag)
    rcpt = pfharness.smtp_reply(out, "RCPT TO")
    assert rcpt and rcpt[0][0] in "45", out
    assert len(stub.requests) == n, stub.requests[n:]


def test_inet_policy():
    """Postfix asks a TCP policy server; stop() leaves no process behind."""
    stub = policystub.PolicyStub().start()
    try:
        pf = pfharness.Postfix(policy=pfharness.policy_inet(stub.port))
        with pf:
            procs = pf.processes()
            assert pf.master_pid in procs, procs
            check_instance(pf, stub, "inet")
        assert not any(pfharness._alive(p) for p in procs), procs
        assert not os.path.exists(pf.dir), pf.dir
    finally:
        stub.stop()


def test_unix_policy():
    """Postfix asks a policy server on a unix socket that user postfix can reach."""
    with pfharness.SocketDir() as sd:
        path = os.path.join(sd.path, "stub.sock")
        stub = policystub.PolicyStub(unix_path=path).start()
        try:
            ok, reply = pfharness.can_reach_as(
                "postfix", path, "request=smtpd_access_policy\nrecipient=x@example.test\n\n")
            assert ok and reply == "action=DUNNO\n\n", (ok, reply)
            with pfharness.Postfix(policy=pfharness.policy_unix(path)) as pf:
                check_instance(pf, stub, "unix")
        finally:
            stub.stop()


def test_spawn_policy():
    """A master.cf spawn service (stdin/stdout policy server run as nobody)."""
    stub = os.path.join(HERE, "policystub.py")
    ok, out = pfharness.run_as("nobody", ["/usr/bin/python3", stub],
                               "recipient=a-stubblock@example.test\n\n")
    assert ok and out == "action=REJECT stub policy refuses stubblock\n\n", (ok, out)
    spawn = pfharness.policy_spawn(["/usr/bin/python3", stub], user="nobody")
    with pfharness.Postfix(policy=spawn, policy_time_limit=77) as pf:
        assert "\npolicy_time_limit = 77s\n" in pf.main_cf()
        rc, out = pf.send("stubblock@example.test", subject="selftest spawn block")
        rcpt = pfharness.smtp_reply(out, "RCPT TO")
        assert rcpt and rcpt[0].startswith("554 ") and "stub policy refuses" in rcpt[0], out
        subject = "selftest spawn ok %d" % os.getpid()
        rc, out = pf.send("carol@example.test", subject=subject)
        assert rc == 0, out
        pf.wait_delivery("carol@example.test", subject)


def test_policy_down():
    """No policy server listening: Postfix tempfails the recipient (4xx), never accepts."""
    port = pfharness.free_port()
    with pfharness.Postfix(policy=pfharness.policy_inet(port)) as pf:
        rc, out = pf.send("alice@example.test", subject="selftest down")
        rcpt = pfharness.smtp_reply(out, "RCPT TO")
        assert rcpt and rcpt[0].startswith("451 "), out
        assert "problem" in pf.log_text() or "connect" in pf.log_text(), pf.log_text()


pfharness.run(globals())
