# durability.py - kill -9 in the middle of a write-heavy run: the GDBM file opens and every synced triplet is there
# SPDX-License-Identifier: BSD-2-Clause
import os
import signal
import subprocess
import threading
import time

import pdtest
from pdtest import req

ADMIN = os.path.join(pdtest.BUILDDIR, "policyd-greylist")
CONF = 'plugins = { "greylist" }\ngreylist {\n  delay = 1h\n  auto_whitelist = 0\n  sync_interval = 1\n}\n'


def rcpt(i):
    return "durable%05d@example.test" % i


def test_kill_9_during_writes_keeps_synced_triplets():
    d = pdtest.daemon(CONF, verbose=0)
    c = d.client()
    # phase 1: triplets acknowledged, then a sync interval passes
    for i in range(1500):
        a = c.ask(req(recipient=rcpt(i), client_address="192.0.2.%d" % (i % 250 + 1)))
        assert a.startswith("DEFER_IF_PERMIT"), a
    time.sleep(2.5)
    # phase 2: writes in flight when the daemon dies with SIGKILL (master and worker)
    stop = threading.Event()

    def writer():
        w = d.client()
        i = 100000
        try:
            while not stop.is_set():
                w.ask(req(recipient=rcpt(i), client_address="198.51.100.%d" % (i % 250 + 1)), timeout=5)
                i += 1
        except Exception:
            pass  # the daemon is gone: expected

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.5)
    worker = d.worker_pid()
    os.kill(worker, signal.SIGKILL)
    d.proc.kill()
    d.proc.wait()
    stop.set()
    t.join(10)
    # the file opens: the admin command reads it, and a new daemon serves from it
    db = os.path.join(d.state_dir, "state.db")  # the core's store, where the greylist keeps its state
    p = subprocess.run([ADMIN, "-d", db, "list"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    missing = [i for i in range(1500) if rcpt(i) not in p.stdout]
    assert not missing, "%d synced triplets lost, e.g. %s" % (len(missing), rcpt(missing[0]))
    d2 = pdtest.Daemon(CONF, verbose=0)
    pdtest._daemons.append(d2)
    d2.state_dir = d.state_dir
    d2.write_config(CONF)
    with open(d2.conf) as f:
        text = f.read().replace(os.path.join(d2.dir, "state"), d.state_dir)
    with open(d2.conf, "w") as f:
        f.write(text)
    d2.start()
    assert "corrupt" not in d2.log_text(), d2.log_text()
    # a known triplet is an early retry: fewer seconds left than the full hour
    a = d2.ask(req(recipient=rcpt(7), client_address="192.0.2.8"))
    assert a.startswith("DEFER_IF_PERMIT") and "retry in 3600 seconds" not in a, a
    a = d2.ask(req(recipient="brand-new@example.test"))
    assert "retry in 3600 seconds" in a, a


if __name__ == "__main__":
    pdtest.run(globals())
