#!/bin/sh
# quickstart.sh - the README's first command, as a new non-root user: build, install under ./local, start, ask, stop
# SPDX-License-Identifier: BSD-2-Clause
# Needs root (to make the throwaway user) and the packages of tools/install-deps;
# exits 77 (skipped) otherwise. Run by .ci/run, not by make check (it builds everything).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to create a throwaway user"; exit 77; }
command -v git >/dev/null 2>&1 || { echo "SKIP: needs git"; exit 77; }
user="pdqs$$"
home=$(mktemp -d /tmp/pdqs.XXXXXX)
fail() { echo "FAIL: $*"; status=1; }
cleanup() {
	if [ -f "$home/src/local/var/run/policyd/policyd.pid" ]; then
		kill "$(cat "$home/src/local/var/run/policyd/policyd.pid")" 2>/dev/null
		sleep 1
	fi
	pkill -u "$user" 2>/dev/null
	userdel "$user" 2>/dev/null
	rm -rf "$home"
}
trap cleanup EXIT
status=0
useradd -M -d "$home" -s /bin/sh "$user" || { echo "SKIP: useradd failed"; exit 77; }
mkdir "$home/src"
git -C "$top" archive HEAD | tar -x -C "$home/src" || { echo "FAIL: git archive"; exit 1; }
chown -R "$user" "$home"
if ! su "$user" -c "cd $home/src && tools/quickstart" >"$home/quickstart.log" 2>&1; then
	tail -30 "$home/quickstart.log"
	echo "FAIL: tools/quickstart as user $user"
	exit 1
fi
echo "PASS: tools/quickstart as a non-root user"
grep -q "policyd runs as pid" "$home/quickstart.log" || fail "quickstart did not report the daemon"
out=$(printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.7\nsender=a@example.net\nrecipient=policyblock@example.com\n\n' |
	python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",10023),timeout=10); s.sendall(sys.stdin.buffer.read()); s.shutdown(socket.SHUT_WR); print(s.recv(1000).decode().strip())')
case "$out" in
"action=REJECT 5.7.1"*) echo "PASS: the started daemon answers: $out" ;;
*) fail "unexpected answer from 127.0.0.1:10023: $out" ;;
esac
pidfile="$home/src/local/var/run/policyd/policyd.pid"
owner=$(stat -c %U "/proc/$(cat "$pidfile")" 2>/dev/null)
[ "$owner" = "$user" ] && echo "PASS: it runs as $user" || fail "daemon runs as '$owner', not $user"
[ -f "$home/src/local/var/lib/policyd/state.db" ] || fail "no state database (greylist) under ./local"

# every command quickstart printed works as printed, run as the user from the
# checkout: "ask it" answers, "stop" stops the daemon (issue 12.18: it printed
# a pidfile path that did not exist)
as_user() { su "$user" -c "cd $home/src && $1" 2>&1; }
ask=$(sed -n 's/^  ask it: *//p' "$home/quickstart.log")
stop=$(sed -n 's/^  stop: *//p' "$home/quickstart.log")
[ -n "$ask" ] && [ -n "$stop" ] || fail "quickstart printed no ask/stop command"
out=$(as_user "$ask")
case "$out" in
*"action=REJECT 5.7.1"*) echo "PASS: the printed ask command: $out" ;;
*) fail "the printed ask command ($ask) gave: $out" ;;
esac
# the README's look at the greylist database
out=$(as_user "local/bin/policyd-greylist -d local/var/lib/policyd/greylist.db stats")
case "$out" in
*greylisted:*) echo "PASS: the README's policyd-greylist stats command" ;;
*) fail "policyd-greylist stats as the README prints it gave: $out" ;;
esac
pid=$(cat "$pidfile")
out=$(as_user "$stop")
[ -z "$out" ] || fail "the printed stop command ($stop) said: $out"
for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then fail "the printed stop command did not stop pid $pid"; else echo "PASS: the printed stop command stopped it"; fi
[ ! -e "$pidfile" ] || fail "pidfile left behind after the stop command"
[ "$status" = 0 ] && echo "1 passed, 0 failed"
exit $status
