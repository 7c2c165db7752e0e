# postfix.py - real Postfix and swaks against policyd's spamtrap plugin: a trap recipient gets 5xx, the client's next mail 4xx
# SPDX-License-Identifier: BSD-2-Clause
"""End to end: a private Postfix asks policyd at RCPT time; mail to a trap
address is refused with a 5xx, and the next mail from the same client
(swaks on 127.0.0.1) to a real recipient gets a 4xx while the block lasts.
Needs root, postfix and swaks (exit 77 otherwise)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "lib")]
import pfharness  # noqa: E402

pfharness.require()
import pdtest  # noqa: E402

TAG = str(os.getpid())
CONFIG = ('plugins = { "spamtrap" }\nspamtrap {\n  traps = { "trap-%s@example.test" }\n  block = 1h\n}\n' % TAG)


def test_trap_rejected_then_client_deferred():
    d = pdtest.Daemon(config=CONFIG)
    try:
        d.start()
        with pfharness.Postfix(policy=pfharness.policy_inet(d.port)) as pf:
            # before any hit, mail flows
            ok = "real-%s@example.test" % TAG
            rc, out = pf.send(ok, subject="before %s" % TAG)
            assert rc == 0 and pfharness.smtp_reply(out, "RCPT TO")[0].startswith("250 "), out
            pf.wait_delivery(ok, "before %s" % TAG)
            # the trap: 5xx
            rc, out = pf.send("trap-%s@example.test" % TAG, subject="trap %s" % TAG)
            reply = pfharness.smtp_reply(out, "RCPT TO")
            assert rc != 0 and reply and reply[0].startswith("550 5.1.1 "), out
            assert reply[0].endswith("Recipient address rejected: User unknown"), out  # like any unknown user
            # the same client, a real recipient: 4xx while the block lasts
            rc, out = pf.send(ok, subject="after %s" % TAG)
            reply = pfharness.smtp_reply(out, "RCPT TO")
            assert rc != 0 and reply and reply[0].startswith("450 4.7.1 "), out
            assert "spam trap" in reply[0], out
            assert not [m for m in pf.messages(ok) if "after %s" % TAG in m]
            log = d.log_text()
            assert "hit by client [127.0.0.1]: rejected, 127.0.0.1/32 blocked for 3600 s" in log, log[-3000:]
        d.stop()
    finally:
        d.cleanup()


if __name__ == "__main__":
    pfharness.run(globals())
