# systemd.py - sd_notify readiness, socket activation, and close_after_reply listeners (Exim without shutdown)
# SPDX-License-Identifier: BSD-2-Clause
import os
import signal
import socket
import subprocess
import time

import pdtest
from pdtest import req

EXAMPLE = 'plugins = { "example" }\n'


def test_close_after_reply_listener():
    port = pdtest.free_port()
    d = pdtest.Daemon(EXAMPLE, listen=["inet:127.0.0.1:%d" % port, "inet:127.0.0.1:%d close_after_reply" % pdtest.free_port()])
    pdtest._daemons.append(d)
    d.port = port
    d.start()
    oneshot = int(d.listen[1].split(":")[2].split()[0])
    s = socket.create_connection(("127.0.0.1", oneshot), timeout=10)
    s.sendall(pdtest.encode(req(recipient="policyblock@x")))  # no shutdown, as readsocket with shutdown=no
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data == b"action=REJECT 5.7.1 Recipient address rejected by policy\n\n", data
    # the ordinary listener keeps its connections
    c = d.client()
    assert c.ask(req()) == "DUNNO" and c.ask(req()) == "DUNNO"


def test_bad_listen_flag_is_an_error():
    d = pdtest.Daemon(EXAMPLE, listen=["inet:127.0.0.1:10999 clsoe_after_reply"])
    pdtest._daemons.append(d)
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "%s:1: listen" % d.conf in p.stderr and "unknown flag" in p.stderr, p


def notify_socket(d):
    path = os.path.join(d.dir, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(20 * pdtest.SLOW)
    return s, path


def test_sd_notify_ready_and_stopping():
    for supervise in ("true", "false"):
        d = pdtest.Daemon("supervise = %s\n" % supervise + EXAMPLE)
        pdtest._daemons.append(d)
        s, path = notify_socket(d)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        d.err = open(d.errfile, "ab")
        d.proc = subprocess.Popen(d.argv(), env=env, stdout=d.err, stderr=d.err)
        assert s.recv(100) == b"READY=1"
        assert d.ask(req(recipient="policyblock@x")).startswith("REJECT")  # ready means serving
        if supervise == "true":
            d.proc.send_signal(signal.SIGTERM)
            assert s.recv(100) == b"STOPPING=1"
        d.stop()
        s.close()


def test_socket_activation():
    d = pdtest.Daemon(EXAMPLE + 'chain "strict" { plugins = { "fake" } }\nfake { action = "REJECT strict chain" }\n')
    pdtest._daemons.append(d)
    a = socket.socket()
    a.bind(("127.0.0.1", 0))
    a.listen(16)
    b = socket.socket()
    b.bind(("127.0.0.1", 0))
    b.listen(16)
    cmd = "exec 3<&%d 4<&%d; LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=default:strict exec %s" % (
        a.fileno(), b.fileno(), " ".join(d.argv()))
    d.err = open(d.errfile, "ab")
    d.proc = subprocess.Popen(["sh", "-c", cmd], pass_fds=(a.fileno(), b.fileno()), stdout=d.err, stderr=d.err)
    d.wait_ready()
    log = d.log_text()
    assert "socket activation: using 2 socket(s) from systemd instead of listen" in log, log
    ca = pdtest.Client(socket.create_connection(a.getsockname(), timeout=10))
    assert ca.ask(req(recipient="policyblock@x")).startswith("REJECT 5.7.1")
    cb = pdtest.Client(socket.create_connection(b.getsockname(), timeout=10))
    assert cb.ask(req(recipient="x@x")) == "REJECT strict chain"
    # the configured listen address was not bound
    try:
        d.ask(req())
        assert False, "bound the configured address despite socket activation"
    except ConnectionRefusedError:
        pass
    a.close()
    b.close()


if __name__ == "__main__":
    pdtest.run(globals())
