# sample_conf.py - the shipped example configs with the dnsbl, helo and score sections pass policyd -t
# SPDX-License-Identifier: BSD-2-Clause
"""etc/policyd-weight-like.conf and the commented sections of etc/policyd.conf
(uncommented) are valid configurations of the built plugins."""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'lib'))
import pdtest  # noqa: E402

ETC = os.path.join(HERE, '..', '..', 'etc')


def check(text):
    d = pdtest.Daemon(text)
    try:
        p = subprocess.run(d.argv('-t'), capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        d.cleanup()


def test_policyd_weight_like_conf_is_valid():
    with open(os.path.join(ETC, 'policyd-weight-like.conf')) as f:
        check(f.read())


def test_policyd_conf_sample_sections_are_valid():
    with open(os.path.join(ETC, 'policyd.conf')) as f:
        text = f.read()
    for name in ('dnsbl', 'helo', 'score'):
        m = re.search(r'^#%s \{\n(.*?)^#\}\n' % name, text, re.M | re.S)
        assert m, 'no commented %s section in etc/policyd.conf' % name
        body = re.sub(r'^#', '', m.group(1), flags=re.M)
        check('plugins = { "%s" }\n%s {\n%s}\n' % (name, name, body))


if __name__ == '__main__':
    pdtest.run(globals())
