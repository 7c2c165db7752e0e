# lifecycle.py - background start, pidfile, privilege drop, SIGHUP reload under traffic, SIGTERM
# SPDX-License-Identifier: BSD-2-Clause
import os
import pwd
import signal
import subprocess
import threading
import time

import pdtest
from pdtest import req

EXAMPLE = 'plugins = { "syslog", "example" }\n'


def test_reload_under_traffic_loses_nothing():
    d = pdtest.daemon(EXAMPLE + 'example { marker = "first" }\n', verbose=0)
    errors = []
    counts = [0] * 4
    stop = threading.Event()

    def traffic(n):
        try:
            c = d.client()
            while not stop.is_set() and counts[n] < 20000:
                a = c.ask(req(recipient="first@x" if counts[n] % 2 else "plain@x"), timeout=10)
                # during the swap either marker may be in force, never anything else
                if counts[n] % 2 == 0 and a != "DUNNO":
                    errors.append(a)
                counts[n] += 1
        except Exception as e:  # a dropped connection is a failure
            errors.append(repr(e))

    threads = [threading.Thread(target=traffic, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for i in range(10):
        time.sleep(0.1)
        d.write_config(EXAMPLE + 'example { marker = "%s" }\n' % ("second" if i % 2 == 0 else "first"))
        d.reload()
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors[:5]
    assert sum(counts) > 100, counts
    d.write_config(EXAMPLE + 'example { marker = "second" }\n')
    d.reload()
    assert d.ask(req(recipient="second@x")).startswith("REJECT")
    assert d.ask(req(recipient="first@x")) == "DUNNO"
    # the old generations ran their plugins' fini (once no thread holds them: within a moment)
    d.wait_log("example: rejected", count=10)


def test_broken_reload_keeps_old_config():
    d = pdtest.daemon(EXAMPLE)
    c = d.client()
    d.write_config(EXAMPLE + "example {\n  marker = \"x\"\n  bogus_option = 1\n}\n")
    d.reload(expect="reload failed; the previous configuration stays in use")
    log = d.log_text()
    assert "%s:%d: no such option 'bogus_option'" % (d.conf, pdtest.line_of(d.conf, "bogus_option")) in log, log[-2000:]
    assert c.ask(req(recipient="policyblock@x")).startswith("REJECT")
    # a plugin whose init fails on reload also keeps the old one
    d.write_config('plugins = { "init_fail", "example" }\n')
    d.reload(expect="reload failed; the previous configuration stays in use")
    assert c.ask(req(recipient="policyblock@x")).startswith("REJECT")
    assert "init_fail: cannot open the frobnicator" in d.log_text()


def test_sigterm_finishes_in_flight_and_runs_fini():
    d = pdtest.daemon('plugins = { "fake", "example" }\nfake {\n  trigger = "slow"\n  sleep_ms = 1500\n'
                      '  action = "DEFER_IF_PERMIT finished"\n}\n')
    c = d.client()
    c.send(pdtest.encode(req(recipient="slow@x")))
    time.sleep(0.3)
    d.proc.send_signal(signal.SIGTERM)
    assert c.reply() == "DEFER_IF_PERMIT finished"
    d.proc.wait(timeout=20)
    assert d.proc.returncode == 0
    log = d.log_text()
    assert "example: rejected 0 request(s)" in log and log.rstrip().endswith("stopped"), log[-1500:]


def test_sigterm_with_the_wall_clock_a_day_behind_waits_for_the_worker():
    """The 2 s wait for workers at stop is on the monotonic clock: with the wall clock a day
    behind (an NTP step; here libfaketime) a request 0.8 s from done is finished and fini runs
    (with a wall-clock deadline the wait ended at once: "still inside a plugin", exit 1)."""
    d = pdtest.Daemon('plugins = { "fake", "example" }\nfake {\n  trigger = "slow"\n  sleep_ms = 1000\n'
                      '  action = "DEFER_IF_PERMIT finished"\n}\n', clock=True)
    pdtest._daemons.append(d)
    d.advance(-86400)
    d.start()
    c = d.client()
    c.send(pdtest.encode(req(recipient="slow@x")))
    time.sleep(0.2)
    d.proc.send_signal(signal.SIGTERM)
    assert c.reply() == "DEFER_IF_PERMIT finished"
    d.proc.wait(timeout=20 * pdtest.SLOW)
    log = d.log_text()
    assert d.proc.returncode == 0, (d.proc.returncode, log[-1500:])
    assert "still inside a plugin" not in log and "example: rejected 0 request(s)" in log, log[-1500:]


def test_sigterm_with_a_hung_plugin_still_exits():
    d = pdtest.daemon('plugins = { "fake" }\nfake {\n  trigger = "hang"\n  sleep_ms = 60000\n}\n')
    c = d.client()
    c.send(pdtest.encode(req(recipient="hang@x")))
    time.sleep(0.3)
    t0 = time.time()
    d.proc.send_signal(signal.SIGTERM)
    d.proc.wait(timeout=30 * pdtest.SLOW)
    assert d.proc.returncode == 1, d.proc.returncode
    assert time.time() - t0 < 30 * pdtest.SLOW
    assert "worker thread(s) still inside a plugin" in d.log_text()


def test_request_timeout_answers_on_error():
    d = pdtest.daemon('request_timeout = 2\non_error = "DEFER_IF_PERMIT 4.3.0 policy timeout"\n'
                      'plugins = { "fake" }\nfake {\n  trigger = "hang"\n  sleep_ms = 5000\n}\n')
    c = d.client()
    t0 = time.time()
    assert c.ask(req(recipient="hang@x")) == "DEFER_IF_PERMIT 4.3.0 policy timeout"
    assert time.time() - t0 < 4.5 * pdtest.SLOW  # the 2 s budget, well before the plugin returns
    assert c.closed_by_peer()
    log = d.wait_log("no answer within its time budget (plugin fake timeout, request_timeout 2 s)")
    assert 'plugin=fake' in [l for l in log.splitlines() if "decision:" in l and "hang@x" in l][0]
    # others are served meanwhile and afterwards; the late answer is dropped quietly
    assert d.ask(req(recipient="ok@x")) == "DUNNO"
    time.sleep(3.5)
    assert d.ask(req(recipient="ok@x")) == "DUNNO"


def test_plugin_timeout_answers_on_error():
    d = pdtest.daemon('on_error = "DEFER_IF_PERMIT 4.3.0 slow plugin"\n'
                      'plugins = { "fake" }\nfake {\n  trigger = "slow"\n  sleep_ms = 4000\n  timeout = 1\n}\n')
    t0 = time.time()
    assert d.ask(req(recipient="slow@x")) == "DEFER_IF_PERMIT 4.3.0 slow plugin"
    assert time.time() - t0 < 3.5 * pdtest.SLOW  # the plugin's 1 s, not request_timeout's 20 s
    d.wait_log("plugin fake timeout")
    assert d.ask(req(recipient="fast@x")) == "DUNNO"


def test_background_pidfile_and_stop():
    d = pdtest.Daemon(EXAMPLE)
    pdtest._daemons.append(d)
    pidfile = os.path.join(d.dir, "run", "policyd.pid")
    d.global_config = 'pidfile = "%s"\n' % pidfile
    d.write_config(EXAMPLE)
    p = subprocess.run([pdtest.POLICYD, "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p
    pid = int(open(pidfile).read())
    try:
        assert d.ask(req(recipient="policyblock@x")).startswith("REJECT")
        # a second instance refuses to start
        p2 = subprocess.run([pdtest.POLICYD, "-c", d.conf], capture_output=True, text=True, timeout=30)
        assert p2.returncode != 0 and ("already runs as pid %d" % pid in p2.stderr or "Address already in use" in p2.stderr), p2
    finally:
        os.kill(pid, signal.SIGTERM)
    for _ in range(200):
        if not os.path.exists(pidfile):
            break
        time.sleep(0.05)
    assert not os.path.exists(pidfile)


def test_background_start_failure_is_reported():
    d = pdtest.Daemon('plugins = { "init_fail" }\n')
    pdtest._daemons.append(d)
    p = subprocess.run([pdtest.POLICYD, "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, p
    assert "init_fail: cannot open the frobnicator" in p.stderr and 'plugin "init_fail"' in p.stderr, p


def test_privilege_drop_and_socket_owner():
    if os.geteuid() != 0:
        pdtest.skip("needs root")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pdtest.skip("no user nobody")
    d = pdtest.Daemon(EXAMPLE, unix=True,
                      global_config='user = "nobody"\nsocket_mode = "0660"\nsocket_owner = "nobody"\n')
    pdtest._daemons.append(d)
    d.start()
    status = open("/proc/%d/status" % d.worker_pid()).read()
    uid_line = [l for l in status.splitlines() if l.startswith("Uid:")][0]
    assert uid_line.split()[1:] == [str(nobody.pw_uid)] * 4, uid_line
    st = os.stat(d.sock)
    assert st.st_uid == nobody.pw_uid and (st.st_mode & 0o777) == 0o660, (st.st_uid, oct(st.st_mode))
    assert os.stat(d.state_dir).st_uid == nobody.pw_uid
    assert d.client(unix=True).ask(req(recipient="policyblock@x")).startswith("REJECT")
    d.stop()


def test_root_needs_an_explicit_user():
    if os.geteuid() != 0:
        pdtest.skip("needs root")
    d = pdtest.Daemon(EXAMPLE)
    pdtest._daemons.append(d)
    text = open(d.conf).read().replace('user = "root"\n', "")
    with open(d.conf, "w") as f:
        f.write(text)
    p = subprocess.run([pdtest.POLICYD, "-f", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "refusing to run as root: set user" in p.stderr, p
    # -t and spawn mode (run by master.cf's user=) do not start a daemon: allowed
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p


def test_sigusr1_stats():
    d = pdtest.daemon(EXAMPLE)
    d.ask(req())
    d.proc.send_signal(signal.SIGUSR1)
    log = d.wait_log('stats: policyd_plugin_calls_total{plugin="example"} 1')
    assert "stats: policyd_requests_total 1" in log and 'stats: policyd_actions_total{action="DUNNO"} 1' in log


def test_second_start_leaves_the_running_daemon_alone():
    """A second policyd with the same config (unix listener only) refuses to start
    and leaves the running daemon's socket as it was, with and without a pidfile
    (issue 12.2: it unlinked and re-bound the live socket before it checked the
    pidfile, so every later connect was refused and Postfix answered 451)."""
    for with_pidfile in (True, False):
        d = pdtest.Daemon(EXAMPLE, unix=True)
        pdtest._daemons.append(d)
        d.listen = ["unix:%s" % d.sock]
        pidfile = os.path.join(d.dir, "policyd.pid")
        if with_pidfile:
            d.global_config = 'pidfile = "%s"\n' % pidfile
        d.write_config(EXAMPLE)
        d.start()
        inode = os.stat(d.sock).st_ino
        assert d.client(unix=True).ask(req(recipient="policyblock@x")).startswith("REJECT")
        for argv in ([pdtest.POLICYD, "-c", d.conf], [pdtest.POLICYD, "-f", "-c", d.conf]):
            p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            want = "already runs as pid" if with_pidfile else "is in use by a running server"
            assert p.returncode == 1 and want in p.stderr, (with_pidfile, p)
            assert os.stat(d.sock).st_ino == inode, "the socket file was replaced"
            assert d.client(unix=True).ask(req(recipient="policyblock@x")).startswith("REJECT"), p
        if with_pidfile:
            assert int(open(pidfile).read()) == d.worker_pid() or int(open(pidfile).read()) == d.proc.pid
        d.stop()


def test_stale_unix_socket_is_replaced():
    """A socket file nobody listens on (a crash) is replaced at start."""
    import socket as so
    d = pdtest.Daemon(EXAMPLE, unix=True)
    pdtest._daemons.append(d)
    d.listen = ["unix:%s" % d.sock]
    d.write_config(EXAMPLE)
    s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
    s.bind(d.sock)
    s.close()  # bound, never listening: connect() is refused
    d.start()
    assert d.client(unix=True).ask(req(recipient="policyblock@x")).startswith("REJECT")
    d.stop()


def test_reload_with_every_old_generation_held_is_refused_and_sigterm_works():
    """Each of 16 hung requests holds the configuration it started on; the 17th
    SIGHUP is refused with a log line that says why (issue 12.8: it busy-waited
    for a generation to be freed, forever, and SIGTERM was never read)."""
    d = pdtest.daemon('plugins = { "fake" }\nfake {\n  trigger = "hang"\n  sleep_ms = 60000\n}\n',
                      global_config="threads = 20\nrequest_timeout = 1\n")
    conns = []
    for i in range(17):  # a hung request on every generation, the current one too
        c = d.client()
        c.send(pdtest.encode(req(recipient="hang%d@x" % i)))
        conns.append(c)
        time.sleep(0.2 * pdtest.SLOW)  # in the plugin now, on this generation
        if i < 16:
            d.reload()
    for c in conns:
        assert c.reply(timeout=10 * pdtest.SLOW) == "DUNNO"  # on_error after request_timeout; the plugin still runs
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("reload refused: 16 earlier configurations are still held by requests")
    assert d.log_text().count("reloaded ") == 16
    assert d.ask(req(recipient="ok@x")) == "DUNNO"  # still serving, on the last configuration
    t0 = time.time()
    d.proc.send_signal(signal.SIGTERM)
    d.proc.wait(timeout=30 * pdtest.SLOW)
    assert time.time() - t0 < 30 * pdtest.SLOW
    assert "worker thread(s) still inside a plugin" in d.log_text()


def test_request_whose_budget_expired_in_the_queue_is_dropped():
    """With one worker busy, requests wait in the queue past request_timeout: they
    are answered on_error, and the worker drops them instead of running their
    plugins later (issue 12.7: greylist still wrote, spf still queried)."""
    d = pdtest.daemon('plugins = { "fake" }\nfake {\n  trigger = "slow"\n  sleep_ms = 2500\n  action = "REJECT slow"\n}\n',
                      global_config='threads = 1\nrequest_timeout = 1\non_error = "DEFER_IF_PERMIT 4.3.0 timeout"\n')
    conns = [d.client() for i in range(4)]
    for i, c in enumerate(conns):
        c.send(pdtest.encode(req(recipient="slow%d@x" % i)))
    for c in conns:
        assert c.reply(timeout=10 * pdtest.SLOW) == "DEFER_IF_PERMIT 4.3.0 timeout"
    d.wait_log("dropped 3 request(s) whose time budget ran out while they waited for a worker", timeout=20)
    n = d.log_text().count("stats: policyd_requests_dropped_total")
    d.proc.send_signal(signal.SIGUSR1)
    log = d.wait_log("stats: policyd_requests_dropped_total", count=n + 1)
    assert 'stats: policyd_plugin_calls_total{plugin="fake"} 1' in log, log[-3000:]
    assert "stats: policyd_requests_dropped_total 3" in log, log[-3000:]
    assert d.ask(req(recipient="quick@x")) == "DUNNO"


if __name__ == "__main__":
    pdtest.run(globals())
