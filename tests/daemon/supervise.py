# supervise.py - a master process keeps the sockets and restarts a worker that crashes in a plugin
# SPDX-License-Identifier: BSD-2-Clause
import os
import signal
import time

import pdtest
from pdtest import req

CRASHY = ('plugins = { "fake", "example" }\n'
          'fake {\n  trigger = "crashme"\n  crash = true\n}\n')


def test_crash_in_plugin_restarts_worker():
    d = pdtest.daemon(CRASHY)
    master = d.proc.pid
    first = d.worker_pid()
    idle = d.client()
    assert idle.ask(req(recipient="policyblock@x")).startswith("REJECT")
    victim = d.client()
    victim.send(pdtest.encode(req(recipient="crashme@x")))
    assert victim.closed_by_peer(), "the request in flight on the dead worker gets no answer"
    log = d.wait_log("while inside plugin fake; restarting it")
    assert "worker %d died (killed by signal %d" % (first, signal.SIGABRT) in log, log[-2000:]
    d.wait_log("ready (", count=2)
    # new connections are served by the new worker; the listening socket never went away
    for i in range(20):
        assert d.ask(req(recipient="policyblock%d@x" % i)).startswith("REJECT")
    assert d.proc.pid == master and d.alive()
    assert d.worker_pid() != first
    # the idle connection belonged to the dead worker: it is closed, and Postfix reconnects
    assert idle.closed_by_peer()


def test_crash_loop_backs_off_and_recovers():
    d = pdtest.daemon(CRASHY, verbose=0)
    for i in range(4):
        c = d.client()
        c.send(pdtest.encode(req(recipient="crashme@x")))
        assert c.closed_by_peer()
        d.wait_log("ready (", count=i + 2)
    d.wait_log("worker keeps dying; waiting")
    # still serving ordinary mail
    assert d.ask(req(recipient="ok@x")) == "DUNNO"


def test_restarted_worker_reads_current_config():
    d = pdtest.daemon(CRASHY + 'example { marker = "old" }\n')
    d.write_config(CRASHY + 'example { marker = "new" }\n')
    d.reload()
    c = d.client()
    c.send(pdtest.encode(req(recipient="crashme@x")))
    assert c.closed_by_peer()
    d.wait_log("ready (", count=2)
    assert d.ask(req(recipient="new@x")).startswith("REJECT")
    assert d.ask(req(recipient="old@x")) == "DUNNO"


def test_sigterm_stops_master_and_worker():
    d = pdtest.daemon(CRASHY)
    worker = d.worker_pid()
    d.stop()
    assert not os.path.exists("/proc/%d" % worker) or open("/proc/%d/stat" % worker).read().split()[2] == "Z"


def test_worker_follows_a_killed_master():
    # even after dropping privileges (which clears PR_SET_PDEATHSIG) the worker must not outlive its master
    if os.geteuid() != 0:
        pdtest.skip("needs root to drop privileges")
    d = pdtest.daemon('user = "nobody"\n' + CRASHY)
    worker = d.worker_pid()
    d.proc.kill()
    d.proc.wait()
    for _ in range(100):
        if not os.path.exists("/proc/%d" % worker) or open("/proc/%d/stat" % worker).read().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        os.kill(worker, signal.SIGKILL)
        assert False, "worker %d outlived its master" % worker


def test_without_supervision_one_process():
    d = pdtest.daemon('supervise = false\n' + CRASHY)
    assert d.worker_pid() == d.proc.pid
    assert d.ask(req(recipient="policyblock@x")).startswith("REJECT")


if __name__ == "__main__":
    pdtest.run(globals())
