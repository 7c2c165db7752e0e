# exim_readsocket.py - real Exim (-bh) asks policyd through contrib/exim/policyd.acl
# SPDX-License-Identifier: BSD-2-Clause
"""Debian's exim4-daemon-light conflicts with postfix as a package, so this
test never installs it: it downloads the .debs with `apt-get download` into a
cache (/var/cache/policyd-tests/exim when writable, else $TMPDIR), unpacks
them with `dpkg -x`, and runs that exim with `-C CONF -bh 192.0.2.1` and an
SMTP dialogue on stdin. Exim looks up its compiled-in user "Debian-exim" at
start, and resolves the client's name; both are given to it privately in a
mount namespace (bind-mounted copies of /etc/passwd, /etc/group, /etc/hosts),
so the machine is left as it was. Skips (77) when the .debs cannot be had or
the namespace cannot be made (it needs root).
"""
import os
import re
import shutil
import subprocess
import tempfile
import time

import pdtest

TIMEOUT_S = 5  # the readsocket timeout the dialogue must stay far below
PKG = "exim4-daemon-light"
CONTRIB_ACL = os.path.join(pdtest.SRCDIR, "contrib", "exim", "policyd.acl")


def cache_dir():
    """Where downloaded and unpacked .debs are kept between runs."""
    for base in ("/var/cache/policyd-tests", os.path.join(os.environ.get("TMPDIR", "/tmp"), "policyd-tests-cache")):
        try:
            os.makedirs(os.path.join(base, "exim"), exist_ok=True)
            if os.access(os.path.join(base, "exim"), os.W_OK):
                return os.path.join(base, "exim")
        except OSError:
            continue
    pdtest.skip("no writable cache directory for the exim .debs")


def installed(pkg):
    """True if Debian package PKG is installed on this machine."""
    r = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", pkg], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.startswith("ii")


def missing_libs(exim, libdir):
    """Shared libraries the unpacked exim cannot find."""
    env = dict(os.environ, LD_LIBRARY_PATH=libdir)
    r = subprocess.run(["ldd", exim], capture_output=True, text=True, env=env)
    return [l.split()[0] for l in r.stdout.splitlines() if "not found" in l]


def download(cache, pkgs):
    """apt-get download PKGS into CACHE (those not there yet); skip on failure."""
    want = [p for p in pkgs if not [f for f in os.listdir(cache) if f.startswith(p + "_") and f.endswith(".deb")]]
    if not want:
        return
    if not shutil.which("apt-get"):
        pdtest.skip("apt-get not available to download %s" % " ".join(want))
    r = subprocess.run(["apt-get", "download", "-q"] + want, cwd=cache, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pdtest.skip("cannot download %s (no apt access?): %s" % (" ".join(want), r.stderr.strip()[-500:]))


def lib_depends(pkg):
    """The lib* packages PKG depends on."""
    r = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests", pkg], capture_output=True, text=True)
    deps = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("Depends:", "|Depends:") and parts[1].startswith("lib"):
            deps.append(parts[1].split(":")[0])
    return deps


def unpacked_exim():
    """(exim binary, its private library dir); downloads and unpacks once."""
    for tool in ("dpkg", "dpkg-query", "ldd", "unshare", "mount"):
        if not shutil.which(tool):
            pdtest.skip("%s not available" % tool)
    cache = cache_dir()
    root = os.path.join(cache, "root")
    exim = os.path.join(root, "usr", "sbin", "exim4")
    libdir = os.path.join(root, "usr", "lib", "x86_64-linux-gnu") + ":" + os.path.join(root, "lib", "x86_64-linux-gnu")
    if not os.path.exists(exim):
        download(cache, [PKG])
    if os.path.exists(exim) and not missing_libs(exim, libdir):
        return exim, libdir
    # the libraries exim needs that this machine lacks come from the cache too
    download(cache, [PKG] + [p for p in lib_depends(PKG) if not installed(p)])
    for deb in sorted(f for f in os.listdir(cache) if f.endswith(".deb")):
        r = subprocess.run(["dpkg", "-x", os.path.join(cache, deb), root], capture_output=True, text=True)
        if r.returncode != 0:
            pdtest.skip("dpkg -x %s failed: %s" % (deb, r.stderr.strip()))
    if not os.path.exists(exim):
        pdtest.skip("%s did not contain usr/sbin/exim4" % PKG)
    os.chmod(exim, 0o755)  # our private copy needs no setuid bit
    missing = missing_libs(exim, libdir)
    if missing:
        pdtest.skip("unpacked exim still lacks %s" % ", ".join(missing))
    return exim, libdir


def private_etc(dirname):
    """Copies of /etc/passwd, group, hosts with what exim needs; returns the bind pairs."""
    pairs = []
    for name, extra in (("passwd", "Debian-exim:x:64999:64999:Exim:/nonexistent:/usr/sbin/nologin\n"),
                        ("group", "Debian-exim:x:64999:\n"),
                        ("hosts", "192.0.2.1 client.example\n")):
        with open("/etc/" + name) as f:
            text = f.read()
        if not text.endswith("\n"):
            text += "\n"
        copy = os.path.join(dirname, name)
        with open(copy, "w") as f:
            f.write(text + extra)
        pairs.append((copy, "/etc/" + name))
    return pairs


def exim_config(dirname, port, options):
    """A minimal Exim config whose RCPT ACL is contrib/exim/policyd.acl; returns its path."""
    spool = os.path.join(dirname, "spool")
    os.makedirs(os.path.join(spool, "log"), exist_ok=True)
    conf = os.path.join(dirname, "exim.conf")
    with open(conf, "w") as f:
        f.write("POLICYD_SOCKET = inet:127.0.0.1:%d\n" % port)
        f.write("POLICYD_OPTIONS = %s\n" % options)
        f.write("POLICYD_FAIL = action=POLICYD_UNREACHABLE\n")  # shows up if a lookup failed or timed out
        f.write("primary_hostname = exim.test\n")
        f.write("spool_directory = %s\n" % spool)
        f.write("log_file_path = %s/log/%%slog\n" % spool)
        f.write("host_lookup = *\nhost_lookup_order = byname\nrfc1413_hosts =\nrfc1413_query_timeout = 0s\n")
        f.write("acl_smtp_rcpt = acl_check_rcpt\n\n")
        f.write("begin acl\n\nacl_check_rcpt:\n")
        f.write(".include %s\n" % CONTRIB_ACL)
        f.write("  accept\n")
    os.chmod(conf, 0o644)
    return conf


DIALOGUE = ("EHLO client.example\r\n"
            "MAIL FROM:<alice@sender.example>\r\n"
            "RCPT TO:<grey@example.test>\r\n"
            "RCPT TO:<policyblock@example.test>\r\n"
            "RCPT TO:<ok@example.test>\r\n"
            "QUIT\r\n")


def run_exim(d, options):
    """Run the SMTP dialogue through exim -bh against daemon D; (replies, stderr, seconds)."""
    # as root: exim is root too and drops to Debian-exim itself; a user
    # namespace (unshare -r) would not let it call setgroups()
    if os.geteuid() != 0:
        pdtest.skip("needs root: exim runs in a private mount namespace")
    exim, libdir = unpacked_exim()
    work = tempfile.mkdtemp(prefix="pdexim.")
    try:
        os.chmod(work, 0o755)
        conf = exim_config(work, d.port, options)
        mounts = " && ".join("mount --bind '%s' '%s'" % p for p in private_etc(work))
        script = "%s && LD_LIBRARY_PATH='%s' exec '%s' -C '%s' -bh 192.0.2.1" % (mounts, libdir, exim, conf)
        ns = ["unshare", "-m"]
        probe = subprocess.run(ns + ["true"], capture_output=True, text=True)
        if probe.returncode != 0:
            pdtest.skip("cannot make a private mount namespace: %s" % probe.stderr.strip())
        t0 = time.monotonic()
        r = subprocess.run(ns + ["sh", "-c", script], input=DIALOGUE, capture_output=True, text=True,
                           timeout=60)
        elapsed = time.monotonic() - t0
        print("exim -bh dialogue took %.3fs (readsocket timeout %ds)" % (elapsed, TIMEOUT_S))
        replies = [l for l in r.stdout.splitlines() if l[:3].isdigit()]
        # a worker restarted under the supervisor would still answer, late
        assert " died (" not in d.log_text(), "policyd's worker died:\n" + d.log_text()[-3000:]
        assert replies, "exim gave no SMTP replies (status %d):\n%s\n%s" % (r.returncode, r.stdout, r.stderr[-3000:])
        return replies, r.stderr, elapsed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def final_replies(replies):
    """The last line of each SMTP reply (multi-line EHLO folded)."""
    return [l for l in replies if len(l) < 4 or l[3] == " "]


def check_dialogue(d, options):
    replies, err, elapsed = run_exim(d, options)
    finals = final_replies(replies)
    # 220 greeting, 250 EHLO, 250 MAIL, then the three RCPTs, 221 QUIT
    assert len(finals) == 7, "unexpected replies %r\n%s" % (finals, err[-3000:])
    grey, block, ok = finals[3:6]
    assert not re.search(r"^>>>\s+= action=POLICYD_UNREACHABLE", err, re.M), \
        "a readsocket lookup failed or timed out:\n" + err[-3000:]
    assert grey.startswith("4"), "grey@: %r (want 4xx)" % grey
    assert "Greylisted" in grey and "4.2.0" in grey, grey
    assert block.startswith("5"), "policyblock@: %r (want 5xx)" % block
    assert "5.7.1" in block, block
    assert ok.startswith("250"), "ok@: %r (want 250)" % ok
    # a lookup that waited for the readsocket timeout would take TIMEOUT_S
    # seconds by itself (and fall back to POLICYD_FAIL, caught above)
    assert elapsed < TIMEOUT_S / 2, "dialogue took %.2fs: a lookup waited for the timeout" % elapsed
    log = d.wait_log("decision:", count=3)
    assert "client=unknown[192.0.2.1]" in log or "client=client.example[192.0.2.1]" in log, log[-2000:]
    assert "helo=client.example sender=<alice@sender.example> recipient=<grey@example.test>" in log, log[-2000:]
    return log


CONFIG = ('plugins = { "fake", "example" }\n'
          'fake {\n  trigger = "grey"\n  action = "DEFER_IF_PERMIT 4.2.0 Greylisted"\n}\n'
          'example {\n  marker = "policyblock"\n}\n')


def test_exim_readsocket_default():
    """Exim half-closes after the request (shutdown=yes): policyd answers and closes."""
    d = pdtest.daemon(CONFIG)
    check_dialogue(d, "%ds" % TIMEOUT_S)


def test_exim_readsocket_numeric_reply():
    """A plugin answering with a bare SMTP code: 450 -> 4xx, 554 -> 5xx with that code."""
    d = pdtest.daemon('plugins = { "fake", "fake2" }\n'
                      'fake {\n  trigger = "grey"\n  action = "450 4.2.0 Greylisted, try later"\n}\n'
                      'fake2 {\n  trigger = "policyblock"\n  action = "554 5.7.1 Blocked here"\n}\n')
    replies, err, elapsed = run_exim(d, "%ds" % TIMEOUT_S)
    finals = final_replies(replies)
    assert finals[3].startswith("450 4.2.0 Greylisted"), finals
    assert finals[4].startswith("554 5.7.1 Blocked here"), finals
    assert finals[5].startswith("250"), finals


def test_exim_readsocket_shutdown_no():
    """readsocket with shutdown=no never half-closes: a close_after_reply listener closes for it."""
    port = pdtest.free_port()
    d = pdtest.Daemon(CONFIG, listen=["inet:127.0.0.1:%d close_after_reply" % port])
    pdtest._daemons.append(d)
    d.port = port
    d.start()
    check_dialogue(d, "%ds:shutdown=no" % TIMEOUT_S)


def test_exim_shutdown_no_needs_close_after_reply():
    """The test can fail: without the flag, shutdown=no lookups wait for the timeout."""
    d = pdtest.daemon(CONFIG)
    replies, err, elapsed = run_exim(d, "1s:shutdown=no")
    assert re.search(r"^>>>\s+= action=POLICYD_UNREACHABLE", err, re.M) or elapsed >= 1, (elapsed, err[-2000:])
    assert final_replies(replies)[3].startswith("250"), replies  # fail open: the greylist answer never arrived


if __name__ == "__main__":
    pdtest.run(globals())
