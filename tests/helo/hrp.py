# hrp.py - HELO randomisation prevention and blocks of the helo plugin, on the state service
# SPDX-License-Identifier: BSD-2-Clause
"""The 11th distinct HELO from one client within hrp_window blocks it for
hrp_block (other clients unaffected, the block outlasts a HELO it used
before, and ends on time: the daemon's clock moved with libfaketime); one
HELO repeated never blocks; our own name as HELO is refused and, with
own_block, blocks the client; two daemons on one redis-server (a private
one on a loopback port, stopped by its PID) count HELOs together. Skipped
while the daemon has no state service."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'dnsbl'))
import dnsbltest  # noqa: E402

dnsbltest.in_netns(__file__)
import pdtest  # noqa: E402
from pdtest import req  # noqa: E402

Z = dnsbltest.zones()
SEC = ('plugins = { "helo" }\nhelo {\n  skip_networks = {}\n  reject_score = 0\n  timeout = 1\n'
       '  hrp_limit = 10\n  hrp_window = 7d\n  hrp_block = 1h\n  own_names = { "mx.example.test" }\n%s}\n')
BLOCKED = '554 5.7.1 Client host [%s] blocked: too many different HELO names'


def started(extra='', global_config='', **kw):
    d = dnsbltest.daemon(SEC % extra, global_config=dnsbltest.GLOBAL + global_config, **kw)
    a = d.ask(req(client_address='198.51.100.250', helo_name='probe.example'))
    if 'state service is not available' in d.log_text():
        pdtest.skip('the daemon has no state service in this build')
    assert a == 'DUNNO', a
    return d


def helo(d, client, name, c=None):
    r = req(client_address=client, helo_name=name)
    return c.ask(r) if c else d.ask(r)


def test_eleventh_distinct_helo_blocks_the_client():
    d = started(clock=True)
    c = d.client()
    for i in range(10):
        assert helo(d, '192.0.2.50', 'h%d.example' % i, c) == 'DUNNO', i
    assert helo(d, '192.0.2.50', 'h10.example', c) == BLOCKED % '192.0.2.50'
    d.wait_log('reject client [192.0.2.50] helo=<h10.example>: 11 distinct HELO names within 604800 s (limit 10)')
    assert helo(d, '192.0.2.50', 'h0.example', c) == BLOCKED % '192.0.2.50'  # blocked, whatever the HELO
    assert helo(d, '192.0.2.51', 'h0.example', c) == 'DUNNO'  # another client
    c.close()
    d.advance(3700)  # past hrp_block: the client starts afresh
    assert helo(d, '192.0.2.50', 'h11.example') == 'DUNNO'


def test_one_helo_repeated_never_blocks():
    d = started()
    c = d.client()
    for i in range(40):
        assert helo(d, '192.0.2.60', 'same.example', c) == 'DUNNO', i
    c.close()


def test_own_name_refused_and_blocked_with_own_block():
    d = started('own_block = 2h\n', clock=True)
    a = helo(d, '192.0.2.70', 'mx.example.test')
    assert a == '554 5.7.1 <mx.example.test>: Helo command rejected: you are not me', a
    a = helo(d, '192.0.2.70', 'honest.example')
    assert a.endswith('you are not me'), a  # blocked for 2 h, with the text of its cause
    d.advance(2 * 3600 + 60)
    assert helo(d, '192.0.2.70', 'honest.example') == 'DUNNO'


def redis_server():
    """A private redis-server on a free loopback port: (process, port, dir)."""
    exe = shutil.which('redis-server')
    if not exe:
        pdtest.skip('needs redis-server (Debian package redis-server)')
    port = pdtest.free_port()
    tmp = tempfile.mkdtemp(prefix='pdhrp.')
    p = subprocess.Popen([exe, '--port', str(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
                          '--dir', tmp, '--daemonize', 'no'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return p, port, tmp
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise AssertionError('redis-server did not start')


def test_two_daemons_on_one_redis_count_helos_together():
    r, port, tmp = redis_server()
    try:
        store = 'store {\n  backend = "redis"\n  redis_server = "127.0.0.1:%d"\n}\n' % port
        probe = pdtest.Daemon(SEC % '', global_config=store)
        try:
            t = subprocess.run(probe.argv('-t'), capture_output=True, text=True, timeout=30)
        finally:
            probe.cleanup()
        if t.returncode != 0 and 'store' in t.stdout + t.stderr:
            pdtest.skip('this build has no store { } section: %s' % (t.stdout + t.stderr).strip()[-200:])
        a = started(global_config=store)
        b = started(global_config=store)
        for i in range(10):  # 5 names at each MX host: 10 in all, none blocks
            d = a if i % 2 else b
            assert helo(d, '192.0.2.80', 'mx%d.example' % i) == 'DUNNO', i
        assert helo(a, '192.0.2.80', 'mx10.example') == BLOCKED % '192.0.2.80'
        assert helo(b, '192.0.2.80', 'mx0.example') == BLOCKED % '192.0.2.80'  # the block is shared too
    finally:
        r.terminate()
        r.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    pdtest.run(globals())
