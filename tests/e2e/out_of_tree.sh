#!/bin/sh
# out_of_tree.sh - a plugin built out of tree against the installed header and policyd.pc loads and answers
# SPDX-License-Identifier: BSD-2-Clause
#
# 1. make install DESTDIR=<tmp> of the build tree;
# 2. cc -shared -fPIC $(pkg-config --cflags policyd) oot_plugin.c -o oot.so
#    with PKG_CONFIG_PATH at the installed policyd.pc (and PKG_CONFIG_SYSROOT_DIR
#    relocates it into DESTDIR);
# 3. the installed policyd, with plugin_dir at the new .so, passes -t and
#    answers requests in -s mode: REJECT for the marker, DUNNO otherwise.
# Env (make check): PD_BUILDDIR, PD_SRCDIR.

set -u

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
pass() { echo "PASS: $*"; }

: "${PD_BUILDDIR:?PD_BUILDDIR must point at the build tree (set by make check)}"
: "${PD_SRCDIR:?PD_SRCDIR must point at the source tree (set by make check)}"
MAKE=${MAKE:-make}
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
for tool in "$MAKE" "$CC" "$PKG_CONFIG" timeout; do
	command -v "$tool" >/dev/null 2>&1 || skip "$tool not found (needed to build a plugin out of tree)"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pd-oot-XXXXXX") || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
dest=$tmp/root

# --- 1. install the build tree into a private DESTDIR ---------------------
# (MAKEFLAGS from the outer make check could carry -j/-n; keep only a plain install)
if ! MAKEFLAGS='' MFLAGS='' "$MAKE" -C "$PD_BUILDDIR" install DESTDIR="$dest" >"$tmp/install.log" 2>&1; then
	tail -30 "$tmp/install.log"
	fail "make install DESTDIR=$dest"
fi
pass "make install DESTDIR"
conf=$(find "$dest" -name policyd.conf -type f | head -n 1)
[ -n "$conf" ] && [ "$(stat -c %a "$conf")" = 640 ] || fail "installed policyd.conf ($conf) is not mode 0640"
pass "policyd.conf installed 0640 (it may hold redis_password or hash_key)"

pc=$(find "$dest" -name policyd.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || fail "no policyd.pc installed under $dest"
daemon=$(find "$dest" -type f -name policyd -perm -u+x | head -n 1)
[ -n "$daemon" ] || fail "no policyd binary installed under $dest"

# --- 2. build the plugin the way a third party would -----------------------
# the files sit under DESTDIR: pkg-config's sysroot maps the .pc's paths
# there (--define-prefix would guess the prefix from the .pc's location,
# which is wrong for multiarch libdirs such as Debian's)
PKG_CONFIG_PATH=$(dirname "$pc")
PKG_CONFIG_SYSROOT_DIR=$dest
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
cflags=$("$PKG_CONFIG" --cflags policyd) || fail "pkg-config --cflags policyd"
# the header must come from the install, not from the source tree or /usr/include
case " $cflags " in
*" -I$dest/"*) ;;
*) fail "pkg-config --cflags policyd = '$cflags' does not point into $dest" ;;
esac
# pkgconf applies the sysroot to variables too, the old pkg-config does not
in_dest() { case "$1" in "$dest"/*) echo "$1" ;; *) echo "$dest$1" ;; esac; }
plugindir=$(in_dest "$("$PKG_CONFIG" --variable=plugindir policyd)") || fail "pkg-config --variable=plugindir"
includedir=$(in_dest "$("$PKG_CONFIG" --variable=includedir policyd)") || fail "pkg-config --variable=includedir"
# #include <policyd/plugin.h> must resolve through -I$includedir
[ -f "$includedir/policyd/plugin.h" ] || {
	echo "installed headers:" >&2
	find "$dest" -name '*.h' >&2
	fail "plugin.h is not installed as \$(includedir)/policyd/plugin.h ($includedir/policyd/plugin.h)"
}
pass "pkg-config: cflags '$cflags', plugindir $plugindir"

mkdir -p "$tmp/plugins" "$tmp/state" || fail "mkdir"
# shellcheck disable=SC2086 # cflags is a word list
if ! "$CC" -shared -fPIC $cflags "$PD_SRCDIR/tests/e2e/oot_plugin.c" -o "$tmp/plugins/oot.so" \
	>"$tmp/cc.log" 2>&1; then
	cat "$tmp/cc.log"
	fail "cc -shared -fPIC \$(pkg-config --cflags policyd) oot_plugin.c"
fi
pass "plugin compiled out of tree: $tmp/plugins/oot.so"
nm -D --defined-only "$tmp/plugins/oot.so" | grep -q ' pd_plugin$' || fail "oot.so does not export pd_plugin"

# a third party's unit test on the installed mock host (pkg-config policyd-mockhost);
# a build under sanitizers (tools/run-tests' _build-asan) has them in the mock
# host too: the test program then needs their runtime first, as any program would
mockflags=$("$PKG_CONFIG" --cflags --libs policyd-mockhost) || fail "pkg-config --cflags --libs policyd-mockhost"
san=$(sed -n 's/^CFLAGS = //p' "$PD_BUILDDIR/Makefile" 2>/dev/null | tr ' ' '\n' | grep -- '^-fsanitize' | tr '\n' ' ')
mockflags="$mockflags $san"
# shellcheck disable=SC2086 # mockflags is a word list
if ! "$CC" $mockflags "$PD_SRCDIR/tests/e2e/oot_test.c" "$PD_SRCDIR/tests/e2e/oot_plugin.c" -o "$tmp/oot_test" \
	$mockflags >"$tmp/cc2.log" 2>&1; then
	cat "$tmp/cc2.log"
	fail "cc oot_test.c oot_plugin.c \$(pkg-config --cflags --libs policyd-mockhost)"
fi
libdir=$(in_dest "$("$PKG_CONFIG" --variable=libdir policyd-mockhost)")
if ! LD_LIBRARY_PATH="$libdir" "$tmp/oot_test" >"$tmp/oot_test.log" 2>&1; then
	cat "$tmp/oot_test.log"
	fail "the out-of-tree plugin's unit test on the mock host"
fi
pass "unit test on the installed mock host: $(tail -n 1 "$tmp/oot_test.log")"

# --- 3. the installed daemon loads it and answers ---------------------------
# installed shared libraries, if the daemon has any, live in DESTDIR too
LD_LIBRARY_PATH=$(dirname "$(dirname "$pc")")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH

# write_conf FILE SECTION: config loading oot (and the installed example) from plugin_dir
write_conf() {
	cat >"$1" <<EOF
# written by out_of_tree.sh
plugin_dir = "$tmp/plugins:$plugindir"
state_dir = "$tmp/state"
pidfile = "$tmp/policyd.pid"
listen = { "unix:$tmp/policyd.sock" }
plugins = { "oot" }
$2
EOF
}

# request RECIPIENT: one Postfix RCPT request, blank-line terminated
request() {
	printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n'
	printf 'client_address=192.0.2.10\nclient_name=client.example.test\n'
	printf 'reverse_client_name=client.example.test\nhelo_name=client.example.test\n'
	printf 'sender=sender@example.org\nrecipient=%s\nrecipient_count=0\n' "$1"
	printf 'queue_id=\ninstance=123.456.7.0\nsize=0\nsasl_method=\nsasl_username=\n'
	printf 'policy_context=\n\n'
}

# ask CONF RCPT...: send one request per RCPT on one -s connection; print the replies
ask() {
	conf=$1
	shift
	for r in "$@"; do request "$r"; done >"$tmp/req"
	timeout 20 "$daemon" -c "$conf" -s <"$tmp/req" >"$tmp/reply" 2>"$tmp/stderr"
	st=$?
	if [ "$st" -ne 0 ]; then
		cat "$tmp/stderr" >&2
		fail "policyd -s exited with $st"
	fi
	cat "$tmp/reply"
}

# expect CONF "RCPT=ACTION-PREFIX"...: every reply, in order, starts with its action
expect() {
	conf=$1
	shift
	rcpts=
	for pair in "$@"; do rcpts="$rcpts ${pair%%=*}"; done
	# shellcheck disable=SC2086 # recipients have no spaces
	ask "$conf" $rcpts >"$tmp/got" || exit 1
	# replies: "action=..." lines, each followed by an empty line
	grep -c '^action=' "$tmp/got" | grep -qx "$#" || {
		cat "$tmp/got"
		fail "expected $# replies from policyd -s"
	}
	i=0
	for pair in "$@"; do
		i=$((i + 1))
		want=${pair#*=}
		got=$(grep '^action=' "$tmp/got" | sed -n "${i}p")
		case "$got" in
		"action=$want"*) pass "${pair%%=*} -> $got" ;;
		*) fail "${pair%%=*}: want 'action=$want...', got '$got'" ;;
		esac
	done
	[ "$(sed -n '$p' "$tmp/got")" = "" ] || fail "reply not terminated by an empty line"
}

# default marker (no section at all)
write_conf "$tmp/a.conf" ""
timeout 20 "$daemon" -t -c "$tmp/a.conf" >"$tmp/t.log" 2>&1 || {
	cat "$tmp/t.log"
	fail "installed policyd -t rejects a config loading the out-of-tree plugin"
}
pass "policyd -t loads oot.so"
expect "$tmp/a.conf" \
	"oot-block@example.test=REJECT out-of-tree plugin refuses oot-block" \
	"user@example.test=DUNNO" \
	"x.oot-block.y@example.test=REJECT"

# the plugin's own option, set in its section, is honoured
write_conf "$tmp/b.conf" 'oot { marker = "custom-mark" }'
expect "$tmp/b.conf" \
	"oot-block@example.test=DUNNO" \
	"custom-mark@example.test=REJECT out-of-tree plugin refuses custom-mark"

# a typo in the plugin's section is an error with file and line
write_conf "$tmp/c.conf" 'oot {
  markr = "x"
}'
if timeout 20 "$daemon" -t -c "$tmp/c.conf" >"$tmp/t.log" 2>&1; then
	fail "policyd -t accepted an unknown option in the out-of-tree plugin's section"
fi
grep -q "c.conf:[0-9]" "$tmp/t.log" || {
	cat "$tmp/t.log"
	fail "the typo error does not name file:line"
}
pass "typo in the oot section refused: $(head -n 1 "$tmp/t.log")"

# the installed in-tree example plugin loads from the installed plugindir too
if [ -e "$plugindir/example.so" ]; then
	write_conf "$tmp/d.conf" ""
	sed -i 's/^plugins = .*/plugins = { "example", "oot" }/' "$tmp/d.conf"
	expect "$tmp/d.conf" \
		"policyblock@example.test=REJECT" \
		"oot-block@example.test=REJECT out-of-tree plugin refuses oot-block" \
		"user@example.test=DUNNO"
else
	fail "installed plugindir $plugindir has no example.so"
fi

echo "all out-of-tree checks passed"
exit 0
