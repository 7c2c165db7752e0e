# daemon.py - the example plugin's opt-in options in the real policyd: score with the score plugin, validate's errors; the default opens no store
# SPDX-License-Identifier: BSD-2-Clause
"""The defaults are tested by tests/daemon/*.py (they use the example
plugin as their model plugin); these are the options that are off by
default: score (with the score plugin) and the checks of validate() with
file and line; and that the default configuration needs no store (it runs
as policyd -s under a user who cannot write state_dir).
check_sender_domain is in dns.py (a private DNS server in a network
namespace)."""
import os
import pwd
import subprocess

import pdtest
from pdtest import req

REJ = "REJECT 5.7.1 Recipient address rejected by policy"


def test_default_opens_no_store():
    d = pdtest.daemon('plugins = { "example" }\n')
    assert d.ask(req(recipient="policyblock@example.test")) == REJ
    assert d.ask(req(recipient="ok@example.test")) == "DUNNO"
    d.stop()
    assert "GDBM" not in d.log_text(), d.log_text()
    assert not os.path.exists(os.path.join(d.state_dir, "state.db"))


def test_spawn_as_a_user_who_cannot_write_state_dir():
    if os.geteuid() != 0:
        pdtest.skip("needs root to run policyd -s as nobody")
    nobody = pwd.getpwnam("nobody")
    d = pdtest.Daemon('plugins = { "example" }\nexample { check_sender_domain = false }\n')
    os.makedirs(d.state_dir, 0o755)  # root's
    d.write_config(d.base_config().replace('user = "root"\n', "") + 'plugins = { "example" }\n')
    os.chmod(d.conf, 0o644)
    text = "".join("%s=%s\n" % kv for kv in req(recipient="policyblock@example.test").items()) + "\n"

    def as_nobody():
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    p = subprocess.run([pdtest.POLICYD, "-s", "-c", d.conf], input=text, capture_output=True, text=True,
                       timeout=30, preexec_fn=as_nobody)
    d.cleanup()
    assert p.returncode == 0 and p.stdout == "action=%s\n\n" % REJ, (p.returncode, p.stdout, p.stderr)


def test_score_for_the_score_plugin():
    d = pdtest.daemon('plugins = { "example", "score" }\nexample { score = 6 }\n'
                      'score { thresholds = { "5=REJECT 5.7.1 Spam score %s" } }\n')
    assert d.ask(req(recipient="policyblock@example.test")) == "REJECT 5.7.1 Spam score 6.00"
    a = d.ask(req(recipient="ok@example.test"))
    assert not a.startswith("REJECT"), a


def test_validate_errors_carry_file_and_line():
    d = pdtest.Daemon("")
    for body, needle in [('  marker = ""', "marker must not be empty"),
                         ("  check_sender_domain = true\n  sender_domain_timeout = 31",
                          "sender_domain_timeout = 31: must be between 0 (the dns section's) and 30 seconds"),
                         ("  sender_domain_timeout = 2",
                          "sender_domain_timeout is the deadline of check_sender_domain's lookup")]:
        d.write_config('plugins = { "example" }\nexample {\n%s\n}\n' % body)
        p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
        line = pdtest.line_of(d.conf, "example {")
        assert p.returncode != 0 and "%s:%d: %s" % (d.conf, line, needle) in p.stderr, (body, p.stderr)
    d.cleanup()


pdtest.run(globals())
