# postfix_example.py - real Postfix asks policyd (example plugin) over inet, unix socket and spawn
# SPDX-License-Identifier: BSD-2-Clause
"""End to end: a private Postfix (tests/lib/pfharness.py) with
check_policy_service pointing at the build tree's policyd, configured with
plugins = {"example"}: a policyblock recipient gets the example plugin's 5xx,
an ordinary recipient is accepted and delivered.  Over inet, over a unix
socket whose mode/owner let user postfix (and not others) connect, with the
daemon dropped to user nobody after binding, and as a
master.cf spawn service running policyd -s."""

import grp
import os
import pwd
import re
import stat
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "lib")]
import pfharness  # noqa: E402

pfharness.require()
import pdtest  # noqa: E402  (after require(): a skip must not need the daemon)

MARKER = "policyblock"
EXAMPLE = 'plugins = {"example"}\nexample {\n  marker = "%s"\n  skip_networks = {}\n}\n' % MARKER
TAG = str(os.getpid())


def expected_reply(action):
    """(code prefix, text) Postfix must show for policy ACTION, e.g. 'REJECT text'."""
    m = re.match(r"^(REJECT|[45]\d\d)(?:\s+(?:[45]\.\d{1,3}\.\d{1,3}\s+)?(.*))?$", action)
    assert m, "example plugin's action is not a reject: %r" % action
    code = "5" if m.group(1) == "REJECT" else m.group(1)
    return code, (m.group(2) or "").strip()


def probe(d, rcpt):
    """Ask the daemon directly (not via Postfix) what it answers for RCPT."""
    c = d.client()
    try:
        return c.ask(pdtest.req(recipient=rcpt, client_address="127.0.0.1",
                                client_name="localhost", helo_name="probe.example.test"))
    finally:
        close = getattr(c, "close", None)
        if close:
            close()


def decisions(d, rcpt):
    """The daemon's decision log lines for RCPT that came through Postfix (helo of swaks)."""
    return [line for line in d.log_text().splitlines()
            if "decision:" in line and "recipient=<%s>" % rcpt in line
            and "helo=client.example.test" in line]


def check_through_postfix(pf, d, tag):
    """Blocked recipient gets the example plugin's 5xx; an ordinary one is delivered."""
    # what the example plugin answers, asked directly (its text, not hard-coded here)
    action = probe(d, "probe-%s@example.test" % MARKER)
    code, text = expected_reply(action)
    assert probe(d, "probe-ordinary@example.test") == "DUNNO"

    blocked = "%s-%s@example.test" % (MARKER, tag)
    rc, out = pf.send(blocked, subject="e2e %s blocked %s" % (tag, TAG))
    rcpt = pfharness.smtp_reply(out, "RCPT TO")
    assert rc != 0 and len(rcpt) == 1, out
    assert rcpt[0].startswith(code) and rcpt[0][0] == "5", (rcpt, action)
    assert text in rcpt[0], (rcpt, action)
    assert not pf.messages(blocked)
    lines = decisions(d, blocked)
    assert len(lines) == 1, d.log_text()[-3000:]
    assert "plugin=example" in lines[0] and "client=localhost[127.0.0.1]" in lines[0], lines

    ok = "ordinary-%s@example.test" % tag
    subject = "e2e %s ordinary %s" % (tag, TAG)
    rc, out = pf.send(ok, subject=subject)
    assert rc == 0, out
    assert pfharness.smtp_reply(out, "RCPT TO")[0].startswith("250 "), out
    msg = pf.wait_delivery(ok, subject)
    assert pfharness.header(msg, "Subject") == [subject], msg
    assert pfharness.header(msg, "Delivered-To") == [ok], msg
    lines = decisions(d, ok)
    assert len(lines) == 1 and 'action="DUNNO"' in lines[0], d.log_text()[-3000:]


def test_inet():
    """check_policy_service inet:127.0.0.1:PORT."""
    d = pdtest.Daemon(config=EXAMPLE, unix=False)
    try:
        d.start()
        with pfharness.Postfix(policy=pfharness.policy_inet(d.port)) as pf:
            check_through_postfix(pf, d, "inet")
        d.stop()
    finally:
        d.cleanup()


def test_inet_two_recipients():
    """One transaction, two RCPTs on one policy connection: only the ordinary one gets the mail."""
    d = pdtest.Daemon(config=EXAMPLE, unix=False)
    try:
        d.start()
        with pfharness.Postfix(policy=pfharness.policy_inet(d.port)) as pf:
            ok = "first-%s@example.test" % TAG
            blocked = "%s-second@example.test" % MARKER
            subject = "e2e two recipients %s" % TAG
            rc, out = pf.send("%s,%s" % (ok, blocked), subject=subject)
            rcpt = pfharness.smtp_replies(out, "RCPT TO")
            assert len(rcpt) == 2, out
            assert rcpt[0][0].startswith("250 "), out
            assert rcpt[1][0].startswith("5") and blocked in rcpt[1][0], out
            assert pfharness.smtp_reply(out, "DATA")[0].startswith("354 "), out
            msg = pf.wait_delivery(ok, subject)
            assert pfharness.header(msg, "Delivered-To") == [ok], msg
            assert not pf.messages(blocked)
            assert len(decisions(d, ok)) == 1 and len(decisions(d, blocked)) == 1, d.log_text()
        d.stop()
    finally:
        d.cleanup()


def test_policy_context_selects_chain():
    """Postfix's policy_context (check_policy_service { ..., policy_context=NAME }) picks a chain."""
    conf = ('plugins = {}\nchain "strict" {\n  plugins = {"example"}\n}\n'
            'example {\n  marker = "%s"\n  skip_networks = {}\n}\n' % MARKER)
    d = pdtest.Daemon(config=conf, unix=False)
    try:
        d.start()
        # without the context the default (empty) chain answers
        assert probe(d, "%s-noctx@example.test" % MARKER) == "DUNNO"
        with pfharness.Postfix(policy=pfharness.policy_inet(d.port, context="strict")) as pf:
            blocked = "%s-ctx@example.test" % MARKER
            rc, out = pf.send(blocked, subject="e2e context %s" % TAG)
            rcpt = pfharness.smtp_reply(out, "RCPT TO")
            assert rc != 0 and rcpt and rcpt[0].startswith("5"), out
            lines = decisions(d, blocked)
            assert len(lines) == 1 and "chain=strict" in lines[0], d.log_text()[-3000:]
            assert "plugin=example" in lines[0], lines
        d.stop()
    finally:
        d.cleanup()


def test_unix_socket():
    """check_policy_service unix:/path, socket 0660 postfix:postfix, reachable by postfix only.

    Deployed as the README says: policyd binds as root, then drops to an
    unprivileged user (nobody here)."""
    nobody = pwd.getpwnam("nobody")
    nogroup = grp.getgrgid(nobody.pw_gid).gr_name
    # pdtest puts the socket in its own dir (mode 0755), beside an inet listener
    conf = EXAMPLE + ('socket_mode = "0660"\nsocket_owner = "postfix:postfix"\n'
                      'user = "nobody"\ngroup = "%s"\n' % nogroup)
    d = pdtest.Daemon(config=conf, unix=True)
    try:
        d.start()
        with open("/proc/%d/status" % d.worker_pid()) as f:
            ids = dict(line.split(":", 1) for line in f if line.startswith(("Uid", "Gid")))
        assert ids["Uid"].split() == [str(nobody.pw_uid)] * 4, ids
        assert ids["Gid"].split() == [str(nobody.pw_gid)] * 4, ids
        path = d.sock
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode), oct(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
        assert st.st_uid == pwd.getpwnam("postfix").pw_uid, st.st_uid
        assert st.st_gid == grp.getgrnam("postfix").gr_gid, st.st_gid

        # user postfix connects and gets an answer; user nobody may not connect
        req = "".join("%s=%s\n" % kv for kv in pdtest.req(
            recipient="%s-runuser@example.test" % MARKER).items()) + "\n"
        ok, reply = pfharness.can_reach_as("postfix", path, req)
        assert ok and reply.startswith("action=") and reply.endswith("\n\n"), (ok, reply)
        assert expected_reply(reply[len("action="):].strip())[0] == "5", reply
        ok, why = pfharness.can_reach_as("nobody", path)
        assert not ok and "Permission denied" in why, (ok, why)

        with pfharness.Postfix(policy=pfharness.policy_unix(path)) as pf:
            check_through_postfix(pf, d, "unix")
        d.stop()
    finally:
        d.cleanup()


def test_spawn():
    """master.cf spawn(8) service running policyd -s as nobody, set up as the README says."""
    daemon = os.path.join(os.environ["PD_BUILDDIR"], "policyd")
    with pfharness.SocketDir(prefix="pdspawn-") as sd:
        os.mkdir(os.path.join(sd.path, "state"), 0o755)
        conf = os.path.join(sd.path, "policyd.conf")
        with open(conf, "w") as f:
            f.write('plugin_dir = "%s"\nstate_dir = "%s"\n%s'
                    % (pdtest.plugin_path(), os.path.join(sd.path, "state"), EXAMPLE))
        os.chmod(conf, 0o644)
        # Postfix will run it as nobody: nobody must be able to, and its
        # answer on stdin/stdout is what Postfix must relay
        blocked = "%s-spawn@example.test" % MARKER
        req = "".join("%s=%s\n" % kv for kv in pdtest.req(recipient=blocked).items()) + "\n"
        ok, reply = pfharness.run_as("nobody", [daemon, "-s", "-c", conf], req)
        assert ok and reply.startswith("action=") and reply.endswith("\n\n"), (ok, reply)
        code, text = expected_reply(reply[len("action="):].strip())
        assert code[0] == "5", reply

        # README: service "policyd", policyd_time_limit, unix:private/policyd
        spawn = pfharness.policy_spawn([daemon, "-s", "-c", conf], user="nobody",
                                       service="policyd")
        with pfharness.Postfix(policy=spawn, policy_time_limit=3600) as pf:
            assert "\npolicyd_time_limit = 3600s\n" in pf.main_cf()
            assert "check_policy_service unix:private/policyd," in pf.main_cf()
            rc, out = pf.send(blocked, subject="e2e spawn blocked %s" % TAG)
            rcpt = pfharness.smtp_reply(out, "RCPT TO")
            assert rc != 0 and len(rcpt) == 1 and rcpt[0].startswith(code), out
            assert text in rcpt[0], (rcpt, reply)
            assert not pf.messages(blocked)

            ok_rcpt = "ordinary-spawn@example.test"
            subject = "e2e spawn ordinary %s" % TAG
            rc, out = pf.send(ok_rcpt, subject=subject)
            assert rc == 0, out + pf.log_text()[-2000:]
            assert pfharness.smtp_reply(out, "RCPT TO")[0].startswith("250 "), out
            pf.wait_delivery(ok_rcpt, subject)


def test_long_attributes():
    """Postfix sends long attributes (addresses, HELO, ccert_*): a request of over
    4 KB through real Postfix is answered (issue 12.1: requests over ~4 KB hung)."""
    d = pdtest.Daemon(config=EXAMPLE, unix=False)
    try:
        d.start()
        with pfharness.Postfix(policy=pfharness.policy_inet(d.port)) as pf:
            local = "x" * 1900
            blocked = "%s-%s-long@example.test" % (MARKER, local)
            sender = "%s@sender.example.test" % ("s" * 1900)
            rc, out = pf.send(blocked, sender=sender, subject="e2e long %s" % TAG, helo="h" * 60 + ".example.test")
            rcpt = pfharness.smtp_reply(out, "RCPT TO")
            assert rc != 0 and len(rcpt) == 1 and rcpt[0].startswith("5"), out[-3000:]
            lines = [l for l in d.log_text().splitlines() if "decision:" in l and "plugin=example" in l]
            assert len(lines) == 1, d.log_text()[-3000:]
        d.stop()
    finally:
        d.cleanup()


pfharness.run(globals())
