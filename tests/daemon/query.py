# query.py - policyd -q REQUEST-FILE: a file's requests through the configured chains, each verdict printed
# SPDX-License-Identifier: BSD-2-Clause
import os
import subprocess

import pdtest


def query(d, text, rc=0):
    path = os.path.join(d.dir, "request.txt")
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([pdtest.POLICYD, "-c", d.conf, "-q", path], capture_output=True, text=True, timeout=60)
    assert p.returncode == rc, (p.returncode, p.stdout, p.stderr)
    return p.stdout, p.stderr


def request(**kw):
    return "".join("%s=%s\n" % kv for kv in pdtest.req(**kw).items())


def test_each_verdict_and_the_answer():
    d = pdtest.Daemon('plugins = { "would", "mailonly", "last" }\n'
                      'chain "c2" { plugins = { "fake2" } }\n'
                      'fake "would" { action = "REJECT 5.7.1 no" observe = true }\n'
                      'fake "mailonly" { action = "REJECT mail" protocol_state = { "MAIL" } }\n'
                      'fake "last" { action = "PREPEND X-Last: 1" }\n'
                      'fake2 { action = "DEFER_IF_PERMIT 4.7.1 c2" }\n')
    # two requests, the last one without its empty line
    out, err = query(d, request(recipient="a@x") + "\n" + request(recipient="b@x", policy_context="c2"))
    assert out == ("chain default (the listener's)\n"
                   "  would: REJECT 5.7.1 no  [observe: would decide, goes on]\n"
                   "  mailonly: skipped: protocol_state\n"
                   "  last: PREPEND X-Last: 1  [pending]\n"
                   "action=PREPEND X-Last: 1\n\n"
                   "chain c2 (its policy_context)\n"
                   "  fake2: DEFER_IF_PERMIT 4.7.1 c2  [decides]\n"
                   "action=DEFER_IF_PERMIT 4.7.1 c2\n\n"), out
    assert 'would: observe: would have answered "REJECT 5.7.1 no"' in err, err
    d.cleanup()


def test_a_file_that_is_no_request():
    d = pdtest.Daemon('plugins = { "fake" }\n')
    out, err = query(d, "this is not a policy request\n", rc=1)
    assert "action=" not in out
    p = subprocess.run([pdtest.POLICYD, "-c", d.conf, "-q", os.path.join(d.dir, "none.txt")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "none.txt: cannot read" in p.stderr, p.stderr
    d.cleanup()


if __name__ == "__main__":
    pdtest.run(globals())
