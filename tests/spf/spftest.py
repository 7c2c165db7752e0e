# spftest.py - helpers for the spf tests: network namespace, policy server, client
# SPDX-License-Identifier: BSD-2-Clause
"""Run a test inside its own network namespace (DNS on 127.0.0.1 there) and
talk to the spf plugin through a policy server on a unix socket: the real
daemon (policyd) when it is built, else the test driver spfdrv (the plugin
on the mock host)."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NETNS_SH = os.path.join(HERE, 'netns.sh')


def in_netns(script):
    """Re-execute SCRIPT inside a fresh network namespace unless already there."""
    if os.environ.get('PDSPF_NETNS'):
        return
    if os.geteuid() != 0 or not shutil.which('ip'):
        print('SKIP: needs root and iproute2 (ip netns) for a private DNS')
        sys.exit(77)
    sys.stdout.flush()
    os.execvp('sh', ['sh', NETNS_SH, sys.executable, os.path.abspath(script)] + sys.argv[1:])


def builddir():
    return os.environ.get('PD_BUILDDIR') or os.path.abspath(os.path.join(HERE, '..', '..', '_build'))


def find_driver():
    """Path of spfdrv (the build tree's, or $SPFDRV)."""
    for p in (os.environ.get('SPFDRV'), os.path.join(builddir(), 'tests', 'spf', 'spfdrv')):
        if p and os.access(p, os.X_OK):
            return p
    raise SystemExit('spfdrv not found: build it (make check) or set SPFDRV')


def find_daemon():
    """Path of the built policyd, or None (then the tests use spfdrv)."""
    if os.environ.get('PDSPF_USE_DRIVER'):
        return None
    p = os.path.join(builddir(), 'policyd')
    return p if os.access(p, os.X_OK) else None


class Server:
    """A policy server with the spf plugin configured by SECTION (its options):
    the real daemon when built (through tests/lib/pdtest.py), else spfdrv."""

    def __init__(self, section, asis=False):
        self.pd = None
        self.dir = tempfile.mkdtemp(prefix='pdspf')
        self.sock = os.path.join(self.dir, 'policy.sock')
        if not asis and find_daemon():
            sys.path.insert(0, os.path.join(HERE, '..', 'lib'))
            os.environ.setdefault('PD_BUILDDIR', builddir())
            import pdtest
            self.kind = 'policyd'
            self.pd = pdtest.Daemon(config='plugins = { "spf" }\nspf {\n  skip_networks = {}\n%s\n}\n'
                                    % section, unix=True, verbose=0)
            shutil.rmtree(self.dir, ignore_errors=True)
            try:
                self.pd.start()
            except BaseException:
                self.pd.cleanup()
                raise
            self.sock = self.pd.sock
            return
        self.errlog = open(os.path.join(self.dir, 'stderr'), 'w+')
        sec = os.path.join(self.dir, 'section')
        with open(sec, 'w') as f:
            f.write('ASIS\n' if asis else section)
        cmd = [find_driver(), sec, self.sock]
        self.kind = 'libspf2-as-is' if asis else 'spfdrv'
        self.proc = subprocess.Popen(cmd, stdout=self.errlog, stderr=self.errlog)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                text = self.log_text()
                shutil.rmtree(self.dir, ignore_errors=True)
                raise SystemExit('%s exited: %s' % (self.kind, text))
            if os.path.exists(self.sock):
                try:
                    self.client().close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise SystemExit('%s did not start' % self.kind)

    def client(self):
        return Client(self.sock)

    def log_text(self):
        if self.pd:
            return self.pd.log_text()
        self.errlog.flush()
        with open(self.errlog.name) as f:
            return f.read()

    def stop(self):
        if self.pd:
            try:
                self.pd.stop()
            finally:
                self.pd.cleanup()
        elif self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Client:
    """One persistent policy-protocol connection."""

    def __init__(self, path, timeout=60):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b''

    def ask(self, attrs):
        msg = ''.join('%s=%s\n' % (k, v) for k, v in attrs.items()) + '\n'
        self.s.sendall(msg.encode('utf-8', 'surrogateescape'))
        while b'\n\n' not in self.buf:
            got = self.s.recv(65536)
            if not got:
                raise OSError('server closed the connection')
            self.buf += got
        resp, self.buf = self.buf.split(b'\n\n', 1)
        for line in resp.decode('utf-8', 'replace').split('\n'):
            if line.startswith('action='):
                return line[len('action='):]
        raise OSError('no action in %r' % resp)

    def close(self):
        self.s.close()


_seq = [0]


def req(**over):
    """A realistic Postfix RCPT request, overridable."""
    _seq[0] += 1
    r = {
        'request': 'smtpd_access_policy', 'protocol_state': 'RCPT', 'protocol_name': 'ESMTP',
        'client_address': '192.0.2.1', 'client_name': 'unknown', 'reverse_client_name': 'unknown',
        'helo_name': 'mail.example.net', 'sender': 'someone@example.com',
        'recipient': 'user@receiver.example', 'recipient_count': '0', 'queue_id': '',
        'instance': 'pdspf.%d.%d' % (os.getpid(), _seq[0]), 'size': '0', 'etrn_domain': '',
        'stress': '', 'sasl_method': '', 'sasl_username': '', 'sasl_sender': '',
        'ccert_subject': '', 'ccert_issuer': '', 'ccert_fingerprint': '',
        'encryption_protocol': '', 'encryption_cipher': '', 'encryption_keysize': '0',
        'policy_context': '', 'server_address': '127.0.0.1', 'server_port': '25',
    }
    r.update(over)
    return r


def result_of(action):
    """The SPF result an action stands for (the suite runner's mapping)."""
    if '5.7.23' in action:
        return 'fail'
    if '5.7.24' in action:
        return 'permerror'
    if action.startswith('DEFER') or action[:1] == '4':
        return 'temperror'
    if action.startswith('PREPEND Received-SPF:'):
        return action.split()[2].lower()
    return 'no-result(%s)' % action[:40]


def run(tests):
    """Run every test_* in the dict TESTS; print the count; exit 1 on failure."""
    failed = 0
    names = sorted(n for n in tests if n.startswith('test_'))
    for n in names:
        try:
            tests[n]()
            print('PASS', n)
        except Exception as e:  # noqa: BLE001 - report every failure
            failed += 1
            print('FAIL', n, '-', repr(e))
    print('%d passed, %d failed' % (len(names) - failed, failed))
    sys.exit(1 if failed else 0)
