# postfix_dnsbl.py - real Postfix and swaks against policyd's dnsbl and score plugins, DNS from a zone server in a netns
# SPDX-License-Identifier: BSD-2-Clause
"""End to end, inside a private network namespace (no internet; the
resolver is a zone server on the namespace's 127.0.0.1): swaks from a listed
address (127.0.0.5, bound with --local-interface) gets 554 at RCPT naming the
zone; a message from an unlisted address to three recipients is delivered
with exactly one X-Policyd-Score header."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "lib"), os.path.join(HERE, "..", "spf"),
                os.path.join(HERE, "..", "dnsbl")]
import pfharness  # noqa: E402

pfharness.require()
import spftest  # noqa: E402

spftest.in_netns(__file__)  # re-executes this script in a fresh netns (root; else SKIP)
import blzone  # noqa: E402
import pdtest  # noqa: E402

CONF = '''plugins = { "dnsbl", "score" }
dnsbl {
  skip_networks = {}
  timeout = 2
  reject_score = 5
  zone "bl.test" { codes = { "127.0.0.2=10" } }
}
score {
  skip_networks = {}
  thresholds = { "20=REJECT 5.7.1 score %s" }
}
'''
TAG = str(os.getpid())


def test_listed_gets_554_unlisted_delivered_with_one_header():
    dns = blzone.BLZone(ttl=60)
    dns.zone("bl.test", {"5.0.0.127": "127.0.0.2"})
    d = pdtest.Daemon(config=CONF)
    try:
        d.start()
        with pfharness.Postfix(policy=pfharness.policy_inet(d.port)) as pf:
            rc, out = pf.send("x-%s@example.test" % TAG, sender="someone@sender.example",
                              subject="dnsbl listed %s" % TAG, extra=("--local-interface", "127.0.0.5"))
            reply = pfharness.smtp_reply(out, "RCPT TO")
            assert rc != 0 and reply and reply[0].startswith("554 5.7.1 "), out
            assert "Service unavailable; client [127.0.0.5] blocked using bl.test" in reply[0], out

            rcpts = ["%s-%s@example.test" % (n, TAG) for n in ("a", "b", "c")]
            subject = "dnsbl clean %s" % TAG
            rc, out = pf.send(",".join(rcpts), sender="someone@sender.example", subject=subject)
            assert rc == 0, out
            for rcpt in rcpts:
                msg = pf.wait_delivery(rcpt, subject)
                hdr = pfharness.header(msg, "X-Policyd-Score")
                assert hdr == ["0.00"], msg
        d.stop()
    finally:
        d.cleanup()
        dns.close()


if __name__ == "__main__":
    pfharness.run(globals())
