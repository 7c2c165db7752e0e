# security.py - root never follows a symlink: the socket, the pidfile and state_dir; the pidfile goes at exit
# SPDX-License-Identifier: BSD-2-Clause
"""policyd starts as root, binds, then drops to its user. The directories it
writes as root may be writable by others (Postfix's private/ by user postfix,
a pidfile directory by the daemon's own user): nothing it does there as root
may follow a symlink or a second name into another file (issue 12.5)."""
import os
import pwd
import stat
import subprocess

import pdtest
from pdtest import req

EXAMPLE = 'plugins = { "example" }\n'


def need_root_and_nobody():
    if os.geteuid() != 0:
        pdtest.skip("needs root")
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pdtest.skip("no user nobody")


def victim_file(d, name="victim"):
    """A root-owned file with content, mode 0600: what an attacker would like changed."""
    path = os.path.join(d.dir, name)
    with open(path, "w") as f:
        f.write("precious\n")
    os.chmod(path, 0o600)
    return path, os.stat(path)


def unchanged(path, before):
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (before.st_uid, before.st_gid,
                                                               stat.S_IMODE(before.st_mode)), (path, st)
    assert open(path).read() == "precious\n", path


def start_fails(d, needle):
    """policyd -f with D's config exits 1 at start and logs NEEDLE."""
    p = subprocess.run([pdtest.POLICYD, "-f", "-c", d.conf], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and needle in p.stderr, p
    return p


def test_pidfile_symlink_and_hard_link_are_refused():
    """A pidfile that is a symlink or a second name of another file is not
    written (it was opened with O_TRUNC, following symlinks, and chown'd)."""
    d = pdtest.Daemon(EXAMPLE)
    pdtest._daemons.append(d)
    victim, before = victim_file(d)
    pidfile = os.path.join(d.dir, "policyd.pid")
    d.global_config = 'pidfile = "%s"\n' % pidfile
    d.write_config(EXAMPLE)
    os.symlink(victim, pidfile)
    start_fails(d, "symbolic link: refusing to follow it")
    unchanged(victim, before)
    os.unlink(pidfile)
    os.link(victim, pidfile)
    start_fails(d, "not a plain file with one name")
    unchanged(victim, before)


def test_socket_swapped_for_a_symlink_after_bind():
    """A user who may write the socket's directory swaps the fresh socket for a
    symlink right after bind() (bind_race.so plays that user): the file it
    points to keeps its mode and owner (policyd did chmod/chown by path)."""
    nobody = need_root_and_nobody()
    if pdtest.VALGRIND:
        pdtest.skip("LD_PRELOAD under valgrind would shim valgrind itself")
    shim = os.path.join(pdtest.BUILDDIR, "tests", "lib", ".libs", "bind_race.so")
    assert os.path.exists(shim), shim
    d = pdtest.Daemon(EXAMPLE, unix=True,
                      global_config='socket_mode = "0666"\nsocket_owner = "nobody"\nuser = "nobody"\n')
    pdtest._daemons.append(d)
    d.listen = ["unix:%s" % d.sock]
    d.write_config(EXAMPLE)
    victim, before = victim_file(d)
    env = dict(os.environ, LD_PRELOAD=shim, PD_RACE_VICTIM=victim, ASAN_OPTIONS="verify_asan_link_order=0")
    p = subprocess.Popen([pdtest.POLICYD, "-f", "-c", d.conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=env, text=True)
    try:
        out, _ = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    assert "bind_race: " in out, out  # the shim did swap it
    unchanged(victim, before)
    assert os.stat(victim).st_uid != nobody.pw_uid


def test_state_dir_symlink_or_foreign_owner_is_refused():
    """state_dir is chown'd to the daemon's user: never through a symlink, and
    never a directory that belongs to somebody else."""
    nobody = need_root_and_nobody()
    d = pdtest.Daemon(EXAMPLE, global_config='user = "nobody"\n')
    pdtest._daemons.append(d)
    target = os.path.join(d.dir, "elsewhere")
    os.mkdir(target, 0o700)
    os.symlink(target, d.state_dir)
    d.write_config(EXAMPLE)
    start_fails(d, "is a symbolic link")
    assert os.stat(target).st_uid == 0
    os.unlink(d.state_dir)
    os.mkdir(d.state_dir, 0o750)
    daemon_uid = pwd.getpwnam("daemon").pw_uid
    os.chown(d.state_dir, daemon_uid, 0)
    start_fails(d, "belongs to uid %d" % daemon_uid)
    assert os.stat(d.state_dir).st_uid == daemon_uid
    os.chown(d.state_dir, 0, 0)  # root's: handed over to the daemon's user
    d.start()
    assert os.stat(d.state_dir).st_uid == nobody.pw_uid
    assert d.ask(req(recipient="policyblock@x")).startswith("REJECT")
    d.stop()


def test_pidfile_removed_at_exit_without_supervision():
    """With supervise = false the one process drops privileges; it can still
    remove its pidfile at exit, because the directory policyd creates for it
    is the daemon user's (issue 12.13: the pidfile stayed behind)."""
    nobody = need_root_and_nobody()
    d = pdtest.Daemon(EXAMPLE)
    pdtest._daemons.append(d)
    pidfile = os.path.join(d.dir, "run", "policyd", "policyd.pid")
    d.global_config = 'user = "nobody"\nsupervise = false\npidfile = "%s"\n' % pidfile
    d.write_config(EXAMPLE)
    d.start()
    assert int(open(pidfile).read()) == d.proc.pid
    assert os.stat(os.path.dirname(pidfile)).st_uid == nobody.pw_uid
    assert os.stat(pidfile).st_uid == 0  # written as root, not handed to the daemon's user
    assert d.ask(req(recipient="policyblock@x")).startswith("REJECT")
    d.stop()
    assert not os.path.exists(pidfile), "pidfile left behind"
    assert "cannot remove" not in d.log_text()


def test_unsafe_plugin_is_refused_before_any_of_its_code_runs():
    """A plugin file (or its directory) that another user could change is
    refused before it is opened: its constructor never runs (issue 12.16: the
    check came after lt_dlopenext, which had run the constructors)."""
    import shutil
    d = pdtest.Daemon('plugins = { "ctor" }\n')
    pdtest._daemons.append(d)
    pdir = os.path.join(d.dir, "plugins")
    os.mkdir(pdir, 0o755)
    shutil.copy(os.path.join(pdtest.BUILDDIR, "tests", "plugins", ".libs", "ctor.so"), pdir)
    so = os.path.join(pdir, "ctor.so")
    text = open(d.conf).read().replace('plugin_dir = "', 'plugin_dir = "%s:' % pdir)
    with open(d.conf, "w") as f:
        f.write(text)
    mark = os.path.join(d.dir, "constructor-ran")
    env = dict(os.environ, PD_CTOR_MARK=mark)
    for mode, needle in ((0o664, "writable by its group"), (0o646, "writable by every user")):
        os.chmod(so, mode)
        p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30, env=env)
        assert p.returncode != 0 and "%s: %s" % (so, needle) in p.stderr, p
        assert not os.path.exists(mark), "the plugin's constructor ran"
    os.chmod(so, 0o644)
    os.chmod(pdir, 0o775)
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode != 0 and "plugin_dir %s: writable by its group" % pdir in p.stderr, p
    assert not os.path.exists(mark), "the plugin's constructor ran"
    os.chmod(pdir, 0o755)
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 0 and os.path.exists(mark), p  # safe: loaded, and its constructor ran


def test_config_unreadable_by_the_daemon_user_is_warned_about():
    """policyd.conf is installed 0640 (it may hold secrets); when the daemon's user
    cannot read it, start-up says that a reload will fail, and how to fix it."""
    need_root_and_nobody()
    d = pdtest.Daemon(EXAMPLE, global_config='user = "nobody"\n')
    pdtest._daemons.append(d)
    os.chmod(d.conf, 0o640)
    d.start()
    d.wait_log('is not readable by user "nobody": a reload (SIGHUP) after dropping privileges will fail')
    d.stop()
    os.chown(d.conf, 0, pwd.getpwnam("nobody").pw_gid)
    d.start()
    assert d.log_text().count("is not readable by user") == 1, d.log_text()
    d.reload()  # now it can
    d.stop()


if __name__ == "__main__":
    pdtest.run(globals())
