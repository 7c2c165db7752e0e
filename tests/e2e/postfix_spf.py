# postfix_spf.py - real Postfix and swaks against policyd's spf plugin, DNS from a local zone server in a netns
# SPDX-License-Identifier: BSD-2-Clause
"""End to end, inside a private network namespace (no internet; the
resolver is a zone server on the namespace's 127.0.0.1): a sender whose
domain's SPF fails gets 550 5.7.23 from Postfix; a passing sender is
delivered with exactly one Received-SPF header, even with several
recipients in one message."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "lib"), os.path.join(HERE, "..", "spf")]
import pfharness  # noqa: E402

pfharness.require()
import spftest  # noqa: E402

spftest.in_netns(__file__)  # re-executes this script in a fresh netns (root; else SKIP)
import pdtest  # noqa: E402
import spfzone  # noqa: E402

ZONE = {
    "pass.example": [{"TXT": "v=spf1 ip4:127.0.0.0/8 -all"}],
    "fail.example": [{"TXT": "v=spf1 -all"}],
}
SPF = ('plugins = { "spf" }\nspf {\n  skip_networks = {}\n  skip_localhost = false\n'
       '  receiver = "mx.example.test"\n  dns_timeout = 3\n}\n')
TAG = str(os.getpid())


def test_fail_rejected_pass_delivered_with_one_header():
    dns = spfzone.ZoneServer(ttl=60)
    dns.set_zone(ZONE)
    d = pdtest.Daemon(config=SPF)
    try:
        d.start()
        with pfharness.Postfix(policy=pfharness.policy_inet(d.port)) as pf:
            rc, out = pf.send("fail-%s@example.test" % TAG, sender="someone@fail.example",
                              subject="spf fail %s" % TAG)
            reply = pfharness.smtp_reply(out, "RCPT TO")
            assert rc != 0 and reply and reply[0].startswith("550 5.7.23 "), out

            a, b = "a-%s@example.test" % TAG, "b-%s@example.test" % TAG
            subject = "spf pass %s" % TAG
            rc, out = pf.send("%s,%s" % (a, b), sender="someone@pass.example", subject=subject)
            assert rc == 0, out
            for rcpt in (a, b):
                msg = pf.wait_delivery(rcpt, subject)
                hdr = pfharness.header(msg, "Received-SPF")
                assert len(hdr) == 1, msg
                assert hdr[0].startswith("pass ") and "client-ip=127.0.0.1" in hdr[0], hdr
                assert "envelope-from=" in hdr[0] and "someone@pass.example" in hdr[0], hdr
        d.stop()
    finally:
        d.cleanup()
        dns.close()


if __name__ == "__main__":
    pfharness.run(globals())
