# postfix_greylist.py - real Postfix and swaks against policyd's greylist plugin: 450, then 250 with X-Greylist
# SPDX-License-Identifier: BSD-2-Clause
"""End to end: the first RCPT of a new triplet gets 450 4.2.0 from Postfix,
the retry after the delay gets 250, and the delivered message carries one
X-Greylist header, also when the retried message has two recipients."""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "lib")]
import pfharness  # noqa: E402

pfharness.require()
import pdtest  # noqa: E402

DELAY = 2
GREYLIST = 'plugins = {"greylist"}\ngreylist {\n  delay = %d\n  auto_whitelist = 0\n}\n' % DELAY
TAG = str(os.getpid())


def test_greylisted_then_delivered_with_header():
    d = pdtest.Daemon(config=GREYLIST)
    try:
        d.start()
        with pfharness.Postfix(policy=pfharness.policy_inet(d.port)) as pf:
            rcpt = "grey-%s@example.test" % TAG
            rc, out = pf.send(rcpt, subject="first %s" % TAG)
            reply = pfharness.smtp_reply(out, "RCPT TO")
            assert rc != 0 and reply and reply[0].startswith("450 4.2.0 "), out
            assert "Greylisted, please retry in" in reply[0], out
            assert not pf.messages(rcpt)
            # an early retry is still deferred
            rc, out = pf.send(rcpt, subject="early %s" % TAG)
            assert pfharness.smtp_reply(out, "RCPT TO")[0].startswith("450 4.2.0 "), out
            time.sleep(DELAY + 1)
            subject = "retry %s" % TAG
            rc, out = pf.send(rcpt, subject=subject)
            assert rc == 0 and pfharness.smtp_reply(out, "RCPT TO")[0].startswith("250 "), out
            msg = pf.wait_delivery(rcpt, subject)
            xg = pfharness.header(msg, "X-Greylist")
            assert len(xg) == 1 and xg[0].startswith("delayed ") and "by policyd at " in xg[0], msg
            log = d.log_text()
            assert 'action="DEFER_IF_PERMIT 4.2.0 Greylisted' in log and "plugin=greylist" in log
        d.stop()
    finally:
        d.cleanup()


def test_one_header_for_two_recipients():
    d = pdtest.Daemon(config=GREYLIST)
    try:
        d.start()
        with pfharness.Postfix(policy=pfharness.policy_inet(d.port)) as pf:
            a, b = "two-a-%s@example.test" % TAG, "two-b-%s@example.test" % TAG
            rc, out = pf.send("%s,%s" % (a, b), subject="first two %s" % TAG)
            assert all(r[0].startswith("450 4.2.0") for r in pfharness.smtp_replies(out, "RCPT TO")), out
            time.sleep(DELAY + 1)
            subject = "retry two %s" % TAG
            rc, out = pf.send("%s,%s" % (a, b), subject=subject)
            assert rc == 0, out
            for rcpt in (a, b):
                msg = pf.wait_delivery(rcpt, subject)
                assert len(pfharness.header(msg, "X-Greylist")) == 1, msg
        d.stop()
    finally:
        d.cleanup()


if __name__ == "__main__":
    pfharness.run(globals())
