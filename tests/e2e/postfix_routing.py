# postfix_routing.py - real Postfix and swaks: chains chosen by recipient domain (issue 17)
# SPDX-License-Identifier: BSD-2-Clause
"""End to end: the same client is greylisted for one recipient domain
(the default chain: greylist) and not for another (a chain chosen by its
recipients, without greylist); a message to both gets its answer per
recipient."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "lib")]
import pfharness  # noqa: E402

pfharness.require()
import pdtest  # noqa: E402

TAG = str(os.getpid())
OTHER = "other.test"
CONFIG = ('plugins = { "greylist" }\n'
          'greylist {\n  delay = 3600\n  auto_whitelist = 0\n}\n'
          'chain "no-greylist" {\n  plugins = { "syslog" }\n  recipients = { "@%s" }\n}\n' % OTHER)


def test_greylisted_for_one_domain_not_for_the_other():
    d = pdtest.Daemon(config=CONFIG)
    try:
        d.start()
        extra = {"virtual_mailbox_domains": "%s %s" % (pfharness.DOMAIN, OTHER)}
        with pfharness.Postfix(policy=pfharness.policy_inet(d.port), extra_main=extra) as pf:
            grey = "grey-%s@%s" % (TAG, pfharness.DOMAIN)
            free = "free-%s@%s" % (TAG, OTHER)
            rc, out = pf.send(grey, subject="to the greylisted domain %s" % TAG)
            reply = pfharness.smtp_reply(out, "RCPT TO")
            assert rc != 0 and reply and reply[0].startswith("450 4.2.0 "), out
            subject = "to the other domain %s" % TAG
            rc, out = pf.send(free, subject=subject)
            assert rc == 0 and pfharness.smtp_reply(out, "RCPT TO")[0].startswith("250 "), out
            pf.wait_delivery(free, subject)
            # one message to both: its recipients are answered by their own chains
            subject = "to both %s" % TAG
            rc, out = pf.send("%s,%s" % (free, grey), subject=subject)
            replies = [r[0] for r in pfharness.smtp_replies(out, "RCPT TO")]
            assert replies[0].startswith("250 ") and replies[1].startswith("450 4.2.0 "), out
            pf.wait_delivery(free, subject)
            log = d.log_text()
            assert "chain=no-greylist" in log and "chain=default" in log, log
        d.stop()
    finally:
        d.cleanup()


if __name__ == "__main__":
    pfharness.run(globals())
