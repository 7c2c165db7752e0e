# postfix_ratelimit.py - real Postfix and swaks against policyd's ratelimit plugin: a client over its limit gets 4xx on the RCPT of its next message
# SPDX-License-Identifier: BSD-2-Clause
"""End to end: a private Postfix asks policyd at RCPT time
(smtpd_recipient_restrictions) and at END-OF-MESSAGE
(smtpd_end_of_data_restrictions), as policyd-ratelimit(5) recommends. The
limit is 2 messages an hour per sender (no SASL here): two messages of two
recipients each are delivered and counted once each, the third message's
RCPT gets 450 4.7.1 and nothing of it is delivered; another sender is not
affected. Needs root, postfix and swaks (exit 77 otherwise)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "lib")]
import pfharness  # noqa: E402

pfharness.require()
import pdtest  # noqa: E402

TAG = str(os.getpid())
CONFIG = ('plugins = { "ratelimit" }\nratelimit {\n  rule "out" {\n    key = { "sasl_username", "sender" }\n'
          '    limits = { "2/1h" }\n  }\n}\n')


def test_over_limit_gets_4xx_at_rcpt_of_next_message():
    d = pdtest.Daemon(config=CONFIG)
    try:
        d.start()
        policy = pfharness.policy_inet(d.port)
        with pfharness.Postfix(policy=policy,
                               extra_main={"smtpd_end_of_data_restrictions": "check_policy_service " + policy}) as pf:
            sender = "heavy-%s@example.test" % TAG
            a, b = "a-%s@example.test" % TAG, "b-%s@example.test" % TAG
            for n in (1, 2):
                rc, out = pf.send("%s,%s" % (a, b), sender=sender, subject="msg%d %s" % (n, TAG))
                assert rc == 0, out
                replies = pfharness.smtp_replies(out, "RCPT TO")
                assert len(replies) == 2 and all(r[0].startswith("250 ") for r in replies), out
                pf.wait_delivery(a, "msg%d %s" % (n, TAG))
            rc, out = pf.send("%s,%s" % (a, b), sender=sender, subject="msg3 %s" % TAG)
            reply = pfharness.smtp_reply(out, "RCPT TO")
            assert rc != 0 and reply and reply[0].startswith("450 4.7.1 "), out
            assert "Rate limit exceeded, try again later" in reply[0], out
            assert not [m for m in pf.messages(a) if "msg3 %s" % TAG in m]
            # another sender still passes
            rc, out = pf.send(a, sender="light-%s@example.test" % TAG, subject="light %s" % TAG)
            assert rc == 0, out
            pf.wait_delivery(a, "light %s" % TAG)
            log = d.log_text()
            assert 'rule "out" sender=%s: 2 of 2 messages in 3600 s, counted: under the limit' % sender in log, \
                log[-3000:]
            assert 'rule "out" sender=%s: 2 of 2 messages in 3600 s, 1 more is over the limit' % sender in log, \
                log[-3000:]
            # counted once per message (at END-OF-MESSAGE), not per recipient
            assert log.count("sender=%s: 1 of 2 messages in 3600 s, counted" % sender) == 1, log[-3000:]
        d.stop()
    finally:
        d.cleanup()


if __name__ == "__main__":
    pfharness.run(globals())
