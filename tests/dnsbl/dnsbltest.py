# dnsbltest.py - shared setup of the dnsbl, helo and score tests: a private netns, its zone server, policyd
# SPDX-License-Identifier: BSD-2-Clause
"""in_netns(__file__) re-executes the test in a fresh network namespace whose
resolver is 127.0.0.1 (tests/spf/netns.sh), where zone() serves the DNS
(blzone.py); daemon(config) starts the real policyd (tests/lib/pdtest.py)."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, '..', 'lib'), os.path.join(HERE, '..', 'spf')]
import spftest  # noqa: E402

os.environ.setdefault('PD_BUILDDIR', spftest.builddir())
import pdtest  # noqa: E402

# a fallback deadline far above the sections' own: a plugin ignoring its
# timeout would wait this long, and the bounded tests would fail
GLOBAL = 'dns {\n  timeout = 10\n  negative_ttl = 0\n  max_ttl = 1\n}\n'
_zone = None


def in_netns(script):
    spftest.in_netns(script)


def zones():
    """The zone server of this namespace (started once)."""
    global _zone
    if _zone is None:
        import blzone
        _zone = blzone.BLZone()
    return _zone


def daemon(config, **kw):
    """A started policyd with CONFIG (plugins and sections) and the shared dns { }."""
    kw.setdefault('global_config', GLOBAL)
    return pdtest.daemon(config, **kw)


def timed_ask(d, **over):
    """(seconds, action) of one request on a fresh connection."""
    t = time.time()
    a = d.ask(pdtest.req(**over))
    return time.time() - t, a
