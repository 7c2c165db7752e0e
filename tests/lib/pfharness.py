# pfharness.py - run a private Postfix instance on loopback for end-to-end tests
# SPDX-License-Identifier: BSD-2-Clause
"""Start a private Postfix (Debian's postfix 3.x) under a temp directory.

The instance has its own config, queue and data directories, listens only on
127.0.0.1:<free port> (inet_interfaces = loopback-only, one smtpd in
master.cf, outside delivery disabled), asks a policy service at RCPT time
(smtpd_recipient_restrictions = reject_unauth_destination,
check_policy_service TARGET, permit) and delivers mail for example.test
into one Maildir under the temp directory; virtual(8)'s Delivered-To header
tells recipients apart.  It logs to <dir>/maillog (maillog_file).

The system's Postfix configuration is neither read nor changed: postfix(1)
run by root accepts any "-c DIR"; only the set-gid commands (postdrop,
postqueue) require DIR in alternate_config_directories of the default
main.cf, and these tests use neither (mail arrives over SMTP).

    import pfharness
    pfharness.require()        # exit 77 (SKIP) unless root with postfix + swaks
    with pfharness.Postfix(policy=pfharness.policy_inet(port)) as pf:
        rc, transcript = pf.send("user@example.test", subject="hello")
        pfharness.smtp_reply(transcript, "RCPT TO")   # ['250 2.1.5 Ok']
        msg = pf.wait_delivery("user@example.test", "hello")

Targets: policy_inet(port[, context=NAME]), policy_unix(abs_path),
policy_spawn(argv, user[, service]) (a master.cf spawn service; sets
<service>_time_limit, i.e. policy_time_limit by default).
stop() runs "postfix -c DIR stop", waits for master (pid/master.pid) and its
process group to exit (SIGKILL by PID after a bounded wait) and removes the
directory; PF_KEEP=1 keeps it for debugging.
"""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77  # automake's "test skipped" exit status
DOMAIN = "example.test"
POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
SWAKS = "/usr/bin/swaks"
MAIL_UID = 65534  # "nobody": owner of delivered mail (virtual_uid_maps)
MAIL_GID = 65534


def skip(msg):
    """Print why the test is skipped and exit with automake's SKIP status."""
    print("SKIP: " + msg, flush=True)
    sys.exit(SKIP)


def require():
    """Skip the calling test unless it runs as root with postfix and swaks."""
    if os.geteuid() != 0:
        skip("end-to-end Postfix tests need root (a private postfix instance)")
    for prog in (POSTFIX, POSTCONF, SWAKS):
        if not os.access(prog, os.X_OK):
            skip("%s not installed (Debian packages postfix and swaks)" % prog)
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        skip("user 'postfix' does not exist (is Debian's postfix installed?)")
    if not os.path.isdir(daemon_directory()):
        skip("postfix daemon directory %s missing" % daemon_directory())
    # make check's timeout or ^C: unwind, so every with-block stops its Postfix
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)


def _exit_on_signal(signum, frame):
    """Turn a termination signal into SystemExit so cleanups run."""
    raise SystemExit(128 + signum)


def daemon_directory():
    """Postfix's compiled-in daemon directory (where master, smtpd... live)."""
    try:
        out = subprocess.run([POSTCONF, "-dh", "daemon_directory"], capture_output=True,
                             text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out or "/usr/lib/postfix/sbin"


def free_port():
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def policy_inet(port, host="127.0.0.1", context=None):
    """check_policy_service target for a TCP policy server.

    CONTEXT sets Postfix's policy_context attribute (Postfix 3.1+ syntax
    "{ inet:host:port, policy_context=NAME }")."""
    target = "inet:%s:%d" % (host, port)
    return "{ %s, policy_context=%s }" % (target, context) if context else target


def policy_unix(path):
    """check_policy_service target for a unix-socket policy server (absolute path)."""
    if not os.path.isabs(path):
        raise ValueError("policy socket path must be absolute: %r" % path)
    return "unix:" + path


def policy_spawn(argv, user="nobody", service="policy"):
    """Policy service run by Postfix's spawn(8): (target, master.cf line, service).

    ARGV is the command (e.g. [".../policyd", "-s", "-c", conf]); Postfix runs
    one per connection as USER, talking the protocol on stdin/stdout.  The
    spawn limit is main.cf's SERVICE_time_limit (policy_time_limit for the
    default name)."""
    return ("unix:private/" + service,
            "%s unix - n n - 0 spawn user=%s argv=%s" % (service, user, " ".join(argv)),
            service)


def can_reach_as(user, path, request=None, timeout=10):
    """Connect to unix socket PATH as USER (runuser); send REQUEST if given.

    Returns (ok, reply_or_error). Used to prove that user postfix can reach the
    policy socket, not just root."""
    code = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM); s.settimeout(%d)\n"
        "s.connect(sys.argv[1])\n"
        "req=sys.stdin.buffer.read()\n"
        "buf=b''\n"
        "if req:\n"
        "  s.sendall(req)\n"
        "  while not buf.endswith(b'\\n\\n'):\n"
        "    d=s.recv(4096)\n"
        "    if not d: break\n"
        "    buf+=d\n"
        "sys.stdout.write(buf.decode('utf-8','replace'))\n" % timeout)
    try:
        p = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-c", code, path],
                           input=(request or "").encode(), capture_output=True,
                           timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        return False, "timeout"
    if p.returncode != 0:
        return False, p.stderr.decode("utf-8", "replace").strip()[-500:]
    return True, p.stdout.decode("utf-8", "replace")


class SocketDir:
    """A temp directory (mode 0755) for unix sockets that user postfix can reach."""

    def __init__(self, prefix="pfsock-"):
        """Create it now."""
        self.path = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.path, 0o755)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        return False


def run(tests):
    """Run every test_* callable in TESTS (a globals() dict) in order.

    Prints one line per test and "N passed, N failed"; exits 1 on failure."""
    import traceback
    passed = failed = 0
    only = os.environ.get("PD_TEST_ONLY")  # run only the tests whose name contains it
    for name, fn in list(tests.items()):
        if not name.startswith("test_") or not callable(fn) or (only and only not in name):
            continue
        t0 = time.monotonic()
        try:
            fn()
        except Exception:
            failed += 1
            print("FAIL: %s" % name, flush=True)
            traceback.print_exc()
        else:
            passed += 1
            print("PASS: %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed or not passed else 0)


def _hexaddr(h):
    """Address text of a /proc/net/{tcp,udp}[6] hex address (host byte order words)."""
    raw = bytes.fromhex(h)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    fam = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return socket.inet_ntop(fam, words)


def run_as(user, argv, stdin="", timeout=20):
    """Run ARGV as USER (runuser) with STDIN; return (exit 0?, stdout or error text)."""
    try:
        p = subprocess.run(["runuser", "-u", user, "--"] + list(argv), input=stdin.encode(),
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, "timeout after %ds" % timeout
    if p.returncode != 0:
        return False, "exit %d: %s" % (p.returncode,
                                       p.stderr.decode("utf-8", "replace").strip()[-1000:])
    return True, p.stdout.decode("utf-8", "replace")


def _pgrp_members(pgid):
    """PIDs of live processes whose process group is PGID (from /proc)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        # fields[0] is state, fields[2] the process group
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            pids.append(int(name))
    return pids


def _alive(pid):
    """True if PID exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


class Postfix:
    """One private Postfix instance; use as a context manager."""

    def __init__(self, policy=None, policy_time_limit=60, extra_main=None, port=None,
                 keep=None):
        """POLICY is policy_inet()/policy_unix()/policy_spawn() or None.

        POLICY_TIME_LIMIT only matters for spawn: it becomes
        <service>_time_limit (policy_time_limit), the limit spawn(8) puts on
        one policyd -s run."""
        self.spawn_line = self.spawn_service = None
        if isinstance(policy, tuple):
            policy, self.spawn_line, self.spawn_service = policy
        self.policy = policy
        self.policy_time_limit = policy_time_limit
        self.extra_main = dict(extra_main or {})
        self.port = port or free_port()
        self.keep = os.environ.get("PF_KEEP") == "1" if keep is None else keep
        self.dir = None
        self.master_pid = None
        self.started = False

    # -- layout -------------------------------------------------------

    def _paths(self):
        """Compute the instance's directory names under self.dir."""
        self.conf = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "spool")
        self.data = os.path.join(self.dir, "data")
        self.mail = os.path.join(self.dir, "mail")
        self.maillog = os.path.join(self.dir, "maillog")

    def main_cf(self):
        """Return the text of main.cf for this instance."""
        restrictions = ["reject_unauth_destination"]
        if self.policy:
            restrictions.append("check_policy_service " + self.policy)
        restrictions.append("permit")
        p = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "mx." + DOMAIN,
            "mydomain": DOMAIN,
            "myorigin": DOMAIN,
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.dir,
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "relayhost": "",
            "default_transport": "error:outside delivery disabled in tests",
            "relay_transport": "error:outside delivery disabled in tests",
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": self.mail,
            # regexp tables may not substitute here: one shared Maildir, and
            # virtual(8)'s Delivered-To header tells recipients apart
            "virtual_mailbox_maps": "static:inbox/",
            "virtual_uid_maps": "static:%d" % MAIL_UID,
            "virtual_gid_maps": "static:%d" % MAIL_GID,
            "virtual_minimum_uid": "100",
            "smtpd_banner": "$myhostname ESMTP pfharness",
            "smtpd_tls_security_level": "none",
            "smtp_tls_security_level": "none",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_recipient_restrictions": ", ".join(restrictions),
            "smtpd_policy_service_timeout": "30s",
            "smtpd_policy_service_max_idle": "30s",
            "smtputf8_enable": "no",
            "biff": "no",
            "append_dot_mydomain": "no",
            "readme_directory": "no",
            "html_directory": "no",
            "delay_warning_time": "0h",
            "maximal_queue_lifetime": "1h",
            "bounce_queue_lifetime": "1h",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
        }
        if self.spawn_line:
            # $servicename_time_limit: only valid beside that spawn service
            p[self.spawn_service + "_time_limit"] = "%ds" % self.policy_time_limit
        p.update(self.extra_main)
        return "".join("%s = %s\n" % kv for kv in p.items())

    def master_cf(self):
        """Return master.cf: one loopback smtpd and the internal services only."""
        lines = [
            "127.0.0.1:%d inet n - n - - smtpd" % self.port,
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "proxywrite unix - - n - 1 proxymap",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "virtual unix - n n - - virtual",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        if self.spawn_line:
            lines.append(self.spawn_line)
        return "\n".join(lines) + "\n"

    def _write(self, path, text, mode=0o644):
        """Write TEXT to PATH with MODE."""
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    # -- lifecycle -----------------------------------------------------

    def _postfix(self, *args, timeout=60):
        """Run postfix -c CONF ARGS; return the CompletedProcess."""
        return subprocess.run([POSTFIX, "-c", self.conf] + list(args), capture_output=True,
                              text=True, timeout=timeout)

    def start(self, timeout=30, attempts=3):
        """Create the instance, start it and wait until smtpd answers.

        The port was free when chosen; if another test took it meanwhile,
        start again (bounded) on a new one."""
        for attempt in range(attempts):
            try:
                return self._start_once(timeout)
            except RuntimeError as e:
                if "Address already in use" not in str(e) or attempt + 1 == attempts:
                    raise
                self.port = free_port()
        return self

    def _start_once(self, timeout):
        """One try of start(): build the directories and configs, postfix start."""
        self.dir = tempfile.mkdtemp(prefix="pfharness-")
        # user postfix must traverse to the queue; nobody to the mail base
        os.chmod(self.dir, 0o755)
        self._paths()
        try:
            os.mkdir(self.conf, 0o755)
            os.mkdir(self.queue, 0o755)  # root-owned, as postfix check wants
            os.mkdir(self.data, 0o700)
            pw = pwd.getpwnam("postfix")
            os.chown(self.data, pw.pw_uid, pw.pw_gid)
            os.mkdir(self.mail, 0o700)
            os.chown(self.mail, MAIL_UID, MAIL_GID)
            self._write(os.path.join(self.conf, "main.cf"), self.main_cf())
            self._write(os.path.join(self.conf, "master.cf"), self.master_cf())
            open(self.maillog, "a").close()
            self.started = True  # from here on stop() runs "postfix stop" and reaps
            # "start" runs postfix-script check-fatal (post-install
            # create-missing makes the queue subdirectories) before master
            r = self._postfix("start")
            if r.returncode != 0:
                raise RuntimeError("postfix start failed: %s%s\n%s"
                                   % (r.stdout, r.stderr, self.log_text()[-3000:]))
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _read_master_pid(self):
        """PID from the queue's pid/master.pid, or None."""
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _wait_ready(self, timeout):
        """Wait (bounded) for master.pid and for smtpd's 220 banner."""
        deadline = time.monotonic() + timeout
        last = "no master.pid"
        while time.monotonic() < deadline:
            pid = self._read_master_pid()
            if pid and _alive(pid):
                self.master_pid = pid
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                        banner = s.recv(512).decode("ascii", "replace")
                        s.sendall(b"QUIT\r\n")
                    if banner.startswith("220"):
                        return
                    last = "banner %r" % banner
                except OSError as e:
                    last = "connect: %s" % e
            time.sleep(0.1)
        raise RuntimeError("postfix did not become ready within %ds (%s); log:\n%s"
                           % (timeout, last, self.log_text()[-3000:]))

    def stop(self, timeout=20):
        """Stop the instance, make sure every process of it is gone, remove the dir."""
        try:
            if self.started:
                pid = self._read_master_pid() or self.master_pid
                try:
                    self._postfix("stop", timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
                if pid:
                    self._reap(pid, timeout)
                self.started = False
        finally:
            if self.dir and not self.keep:
                shutil.rmtree(self.dir, ignore_errors=True)
            elif self.dir:
                print("pfharness: kept %s" % self.dir, file=sys.stderr)

    def _reap(self, master, timeout):
        """Wait for master PID and its process group to exit; KILL leftovers by PID."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(master) and not _pgrp_members(master):
                return
            time.sleep(0.1)
        for pid in set([master] + _pgrp_members(master)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        print("pfharness: postfix processes had to be killed", file=sys.stderr)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def processes(self):
        """PIDs of the running instance (master's process group)."""
        return _pgrp_members(self.master_pid) if self.master_pid else []

    def inet_listeners(self):
        """(address, port) of every TCP/UDP socket of the instance that listens.

        Found from the sockets the instance's processes hold (/proc/PID/fd)
        and the kernel's tables (/proc/net/{tcp,tcp6,udp,udp6})."""
        inodes = set()
        for pid in self.processes():
            fddir = "/proc/%d/fd" % pid
            try:
                fds = os.listdir(fddir)
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(os.path.join(fddir, fd))
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        found = []
        for table, listen_state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
            try:
                with open("/proc/net/" + table) as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                col = row.split()
                if len(col) > 9 and col[9] in inodes and col[3] == listen_state:
                    addr_hex, port_hex = col[1].split(":")
                    found.append((table, _hexaddr(addr_hex), int(port_hex, 16)))
        return found

    def log_text(self):
        """The instance's maillog so far ('' if none)."""
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except (OSError, AttributeError):
            return ""

    # -- mail ------------------------------------------------------------

    def send(self, to, sender="sender@" + DOMAIN, subject="pfharness test", body=None,
             helo="client.example.test", timeout=60, extra=()):
        """Send one message with swaks; return (exit status, SMTP transcript)."""
        args = [SWAKS, "--server", "127.0.0.1", "--port", str(self.port),
                "--to", to, "--from", sender, "--helo", helo,
                "--h-Subject", subject, "--timeout", "30",
                "--body", body if body is not None else "Test message: %s\n" % subject]
        args += list(extra)
        try:
            p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"")
            if isinstance(out, bytes):
                out = out.decode("utf-8", "replace")
            return -1, out + "\n[pfharness: swaks timed out]"
        return p.returncode, p.stdout + p.stderr

    def messages(self, rcpt=None):
        """Texts of the messages delivered so far (to RCPT only, if given)."""
        out = []
        new = os.path.join(self.mail, "inbox", "new")
        try:
            names = sorted(os.listdir(new))
        except OSError:
            return out
        for name in names:
            try:
                with open(os.path.join(new, name), errors="replace") as f:
                    msg = f.read()
            except OSError:
                continue
            if rcpt is None or rcpt.lower() in [v.lower() for v in header(msg, "Delivered-To")]:
                out.append(msg)
        return out

    def wait_delivery(self, rcpt, subject, timeout=30):
        """Poll the Maildir (bounded) for a message to RCPT with SUBJECT; return it."""
        deadline = time.monotonic() + timeout
        while True:
            for msg in self.messages(rcpt):
                if subject in header(msg, "Subject"):
                    return msg
            if time.monotonic() >= deadline:
                raise AssertionError("no message %r for %s within %ds; log:\n%s"
                                     % (subject, rcpt, timeout, self.log_text()[-3000:]))
            time.sleep(0.1)


def header(msg, name):
    """Values of header NAME (case-insensitive) in message text MSG (unfolded)."""
    head = msg.replace("\r\n", "\n").split("\n\n", 1)[0]
    head = re.sub(r"\n[ \t]+", " ", head)
    vals = []
    for line in head.split("\n"):
        k, sep, v = line.partition(":")
        if sep and k.strip().lower() == name.lower():
            vals.append(v.strip())
    return vals


def smtp_replies(transcript, command):
    """Server replies swaks logged after each client line starting with COMMAND.

    COMMAND is e.g. "RCPT TO" or "DATA"; returns one list of reply lines
    ("NNN ...") per time the client sent it."""
    out = []
    lines = transcript.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(" -> ") and line[4:].upper().startswith(command.upper()):
            reply = []
            for nxt in lines[i + 1:]:
                m = re.match(r"^(?:<-|<~|<\*\*) +(\d{3}[ -].*)$", nxt)
                if not m:
                    break
                reply.append(m.group(1))
            out.append(reply)
    return out


def smtp_reply(transcript, command):
    """Reply lines to the first client line starting with COMMAND ([] if none)."""
    replies = smtp_replies(transcript, command)
    return replies[0] if replies else []
