#!/bin/sh
# deb_install.sh - build the .debs from a clean copy, install them, run the installed policyd, purge
# SPDX-License-Identifier: BSD-2-Clause
#
# For CI (not make check: it installs packages on the machine). Needs root,
# dpkg-buildpackage and the Build-Depends of debian/control; skips (77)
# without them, and when a policyd package is installed already (it never
# touches an admin's installation). Steps: dpkg-buildpackage -us -uc -b in a
# temp copy; dpkg -i; policyd -t on /etc/policyd/policyd.conf; a plugin
# built against policyd-dev with pkg-config; the installed daemon started
# as its init would start it (forking, user policyd) on a copy of the
# installed config with a free port, asked one request, stopped; then
# dpkg --purge, and the policyd user removed if this script created it.
# PD_DEB_CHECK=1 also runs make check inside the package build.
set -u
srcdir=${PD_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}

skip() {
	echo "SKIP: $*"
	exit 77
}
fail() {
	echo "FAIL: $*"
	exit 1
}

[ "$(id -u)" = 0 ] || skip "needs root to install packages"
for tool in dpkg-buildpackage dh dpkg-checkbuilddeps python3 pkg-config cc; do
	command -v "$tool" >/dev/null 2>&1 || skip "$tool not available (install devscripts debhelper build-essential)"
done
if dpkg-query -W -f='${db:Status-Abbrev}' policyd 2>/dev/null | grep -q '^i'; then
	skip "a policyd package is installed already; not touching it"
fi
if ! missing=$(cd "$srcdir" && dpkg-checkbuilddeps 2>&1); then
	skip "build dependencies missing: $missing"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pddeb.XXXXXX") || exit 1
chmod 755 "$tmp"
user_existed=no
getent passwd policyd >/dev/null && user_existed=yes
installed=no
pkgs=
daemon_pid=

# cleanup - stop what we started, purge what we installed, leave the machine as found
cleanup() {
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill -TERM "$daemon_pid"
		sleep 1
		kill -0 "$daemon_pid" 2>/dev/null && kill -KILL "$daemon_pid"
	fi
	if [ "$installed" = yes ]; then
		# shellcheck disable=SC2086
		dpkg --purge $pkgs >"$tmp/purge.log" 2>&1 || cat "$tmp/purge.log"
		if [ "$user_existed" = no ] && getent passwd policyd >/dev/null; then
			deluser --system --quiet policyd >/dev/null 2>&1 || userdel policyd
			getent group policyd >/dev/null && { delgroup --system --quiet policyd >/dev/null 2>&1 || groupdel policyd; }
		fi
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# a clean copy of the source: what git has, or the tree minus build output
src="$tmp/policyd-src"
mkdir -p "$src"
if git -C "$srcdir" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$srcdir" archive --format=tar HEAD | tar -x -C "$src" || fail "git archive"
else
	(cd "$srcdir" && tar --exclude='./_build*' --exclude=./.git -cf - .) | tar -x -C "$src" || fail "copy source"
fi

echo "building the packages in $src"
opts=nocheck
[ "${PD_DEB_CHECK:-0}" = 1 ] && opts=
if ! (cd "$src" && DEB_BUILD_OPTIONS=$opts dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
	tail -40 "$tmp/build.log"
	fail "dpkg-buildpackage"
fi
ls "$tmp"/*.deb
# everything make install puts in debian/tmp must land in a package (a new
# plugin needs its stanza in debian/control and its .install file)
if grep 'dh_missing: warning:.*not installed' "$tmp/build.log"; then
	fail "files built but in no package (see debian/control for adding a plugin package)"
fi

# every binary package but the debug symbols
debs=$(ls "$tmp"/*.deb | grep -v -- '-dbgsym_')
pkgs=$(for d in $debs; do dpkg-deb -f "$d" Package; done | tr '\n' ' ')
echo "installing: $pkgs"
installed=yes
# shellcheck disable=SC2086
dpkg -i $debs >"$tmp/install.log" 2>&1 || {
	cat "$tmp/install.log"
	fail "dpkg -i"
}
echo "PASS: dpkg -i"

/usr/sbin/policyd -t -c /etc/policyd/policyd.conf || fail "policyd -t on the installed config"
echo "PASS: policyd -t -c /etc/policyd/policyd.conf"
/usr/sbin/policyd -t || fail "policyd -t with the compiled-in config path"
getent passwd policyd >/dev/null || fail "postinst did not create user policyd"
[ "$(stat -c %U:%G /var/lib/policyd)" = policyd:policyd ] || fail "/var/lib/policyd not owned by policyd"
# the config may hold redis_password/hash_key: root and the daemon's group only
[ "$(stat -c %a:%U:%G /etc/policyd/policyd.conf)" = 640:root:policyd ] ||
	fail "/etc/policyd/policyd.conf is $(stat -c %a:%U:%G /etc/policyd/policyd.conf), not 640:root:policyd"
for unit in policyd.service policyd.socket; do
	[ -f /lib/systemd/system/$unit ] || fail "$unit not installed"
	! grep -q '@[A-Z]*@' /lib/systemd/system/$unit || fail "placeholders left in the installed $unit"
done
if command -v systemd-analyze >/dev/null 2>&1; then
	systemd-analyze verify --man=no /lib/systemd/system/policyd.service /lib/systemd/system/policyd.socket ||
		fail "systemd-analyze verify on the installed units"
fi
echo "PASS: user policyd, /var/lib/policyd, systemd unit"
if grep -q '"greylist"' /etc/policyd/policyd.conf; then
	[ -x /usr/bin/policyd-greylist ] || fail "policyd-greylist admin command not installed"
fi

# policyd-dev: the example plugin builds against the installed header with
# pkg-config, and the installed daemon loads it
mkdir -p "$tmp/plugins"
# shellcheck disable=SC2046
cc -shared -fPIC -o "$tmp/plugins/example.so" "$srcdir/plugins/example/example.c" \
	$(pkg-config --cflags --libs policyd) || fail "building a plugin with pkg-config policyd"
plugindir=$(pkg-config --variable=plugindir policyd)
[ -f "$plugindir/syslog.so" ] || fail "pkg-config plugindir $plugindir has no syslog.so"
printf 'plugin_dir = "%s"\nplugins = { "example" }\n' "$tmp/plugins" >"$tmp/dev.conf"
/usr/sbin/policyd -t -c "$tmp/dev.conf" | grep -q "$tmp/plugins/example.so" || fail "installed policyd did not load the plugin built with policyd-dev"
echo "PASS: plugin built with policyd-dev loads"

# the installed daemon, started as the unit starts it, on a free port
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s|^listen = .*|listen = { \"inet:127.0.0.1:$port\" }|" \
	-e "s|^pidfile = .*|pidfile = \"$tmp/run/policyd.pid\"|" /etc/policyd/policyd.conf >"$tmp/policyd.conf"
grep -q "^pidfile = \"$tmp/run/policyd.pid\"" "$tmp/policyd.conf" || fail "installed config has no pidfile line"
/usr/sbin/policyd -c "$tmp/policyd.conf" || fail "installed policyd did not start"
daemon_pid=$(cat "$tmp/run/policyd.pid") || fail "no pidfile"
# the process that serves (the pidfile's, or with supervise = true its
# worker child) runs as policyd
users=$( (ps -o user= -p "$daemon_pid"; ps -o user= --ppid "$daemon_pid") | tr -d ' ' | sort -u | tr '\n' ' ')
case " $users" in
*" policyd "*) echo "PASS: serving process runs as policyd (process users: $users)" ;;
*) fail "no policyd process runs as user policyd (users: $users)" ;;
esac
# ask RECIPIENT - one request to the installed daemon; prints the reply line
ask() {
	python3 - "$port" "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\n"
           "client_name=mail.example.org\nsender=a@example.org\nrecipient=%s\n\n" % sys.argv[2]).encode())
buf = b""
while b"\n\n" not in buf:
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
print(buf.decode().strip())
EOF
}
reply=$(ask policyblock@example.test)
case $reply in
"action=REJECT"*) echo "PASS: installed daemon (user policyd) answered: $reply" ;;
*) fail "installed daemon answered '$reply', want REJECT" ;;
esac
# the greylist plugin of the default chain keeps its state in /var/lib/policyd
if grep -q '^plugins = .*"greylist"' "$tmp/policyd.conf"; then
	reply=$(ask new@example.test)
	case $reply in
	"action=DEFER"*) echo "PASS: greylisted a new triplet: $reply" ;;
	*) fail "greylist answered '$reply' for a new triplet, want DEFER..." ;;
	esac
	owned=$(find /var/lib/policyd -mindepth 1 -user policyd | head -1)
	[ -n "$owned" ] || fail "greylist wrote no state owned by policyd in /var/lib/policyd: $(ls -la /var/lib/policyd)"
	echo "PASS: greylist state $owned owned by policyd"
fi
kill -TERM "$daemon_pid"
for _ in 1 2 3 4 5 6 7 8 9 10; do
	kill -0 "$daemon_pid" 2>/dev/null || break
	sleep 0.5
done
kill -0 "$daemon_pid" 2>/dev/null && fail "installed daemon did not stop on SIGTERM"
daemon_pid=
echo "PASS: installed daemon stopped"
exit 0
