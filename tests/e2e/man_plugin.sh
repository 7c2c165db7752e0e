#!/bin/sh
# man_plugin.sh - the code of policyd-plugin(3) compiles and works: its plugin, its mock-host test, its fragments, its config
# SPDX-License-Identifier: BSD-2-Clause
#
# Every .EX block of doc/policyd-plugin.3 is extracted (groff escapes undone):
# hello.c is built as a module (-Wall -Wextra -Werror) and loaded by the
# build's policyd with the page's configuration, which answers a request;
# test_hello.c is linked with hello.c and the build's mock host and run;
# the fragments (the DNS check, the escape call, the update function) are
# compiled inside a small wrapper each.
# Env (make check): PD_BUILDDIR, PD_SRCDIR.

set -u

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "PASS: $*"; }
skip() { echo "SKIP: $*"; exit 77; }

: "${PD_BUILDDIR:?PD_BUILDDIR must point at the build tree (set by make check)}"
: "${PD_SRCDIR:?PD_SRCDIR must point at the source tree (set by make check)}"
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
for tool in "$CC" "$PKG_CONFIG" awk sed timeout; do
	command -v "$tool" >/dev/null 2>&1 || skip "$tool not found"
done
page=$PD_SRCDIR/doc/policyd-plugin.3
libtool=$PD_BUILDDIR/libtool
[ -f "$page" ] || fail "no $page"
[ -x "$libtool" ] || skip "no libtool script in $PD_BUILDDIR"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pd-man-XXXXXX") || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
cd "$tmp" || fail "cd $tmp"

# the blocks, one file each: block1.txt, block2.txt ...
awk '/^\.EX/ { n++; out = sprintf("block%d.txt", n); printf "" > out; next }
     /^\.EE/ { out = ""; next }
     out != "" { print > out }' "$page"
for f in block*.txt; do
	sed -e 's/\\e/\x01/g' -e 's/\\(aq/'"'"'/g' -e 's/\\(ha/^/g' -e 's/\\(dq/"/g' -e 's/\\(ti/~/g' \
		-e 's/\\(ga/`/g' -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\x01/\\/g' "$f" >"$f.c"
done
# block FIRST-LINE-PATTERN: the file of the block whose first line matches
block() {
	for f in block*.txt.c; do
		if head -n 1 "$f" | grep -q -- "$1"; then
			echo "$f"
			return
		fi
	done
	fail "policyd-plugin.3 has no code block starting with $1"
}

san=$(sed -n 's/^CFLAGS = //p' "$PD_BUILDDIR/Makefile" 2>/dev/null | tr ' ' '\n' | grep -- '^-fsanitize' | tr '\n' ' ')
confuse=$("$PKG_CONFIG" --cflags libconfuse 2>/dev/null) || confuse=
confuse_libs=$("$PKG_CONFIG" --libs libconfuse 2>/dev/null) || confuse_libs=-lconfuse
cflags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I$PD_SRCDIR/include $confuse $san"

# --- the plugin of EXAMPLES, as a module the build's policyd loads --------
cp "$(block '^/\* hello.c ')" hello.c
mkdir -p plugins state
# shellcheck disable=SC2086 # cflags is a word list
"$CC" $cflags -shared -fPIC hello.c -o plugins/hello.so >cc.log 2>&1 || { cat cc.log; fail "hello.c does not compile"; }
chmod 755 plugins
pass "EXAMPLES: hello.c compiles as a module"
{
	printf 'plugin_dir = "%s:%s/plugins/greylist/.libs"\nstate_dir = "%s/state"\npidfile = ""\n' "$tmp/plugins" "$PD_BUILDDIR" "$tmp"
	printf 'listen = { "unix:%s/sock" }\n' "$tmp"
	[ "$(id -u)" = 0 ] && printf 'user = "root"\n'
	cat "$(block '^plugins = ')"
} >policyd.conf
timeout 30 "$PD_BUILDDIR/policyd" -t -c policyd.conf >t.log 2>&1 || { cat t.log; fail "policyd -t refuses the page's configuration"; }
printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\nsender=a@example.org\nrecipient=xyz@example.net\n\n' >req
timeout 30 "$PD_BUILDDIR/policyd" -c policyd.conf -s <req >reply 2>s.log || { cat s.log; fail "policyd -s with hello.so"; }
grep -q '^action=REJECT 5.7.1 no xyz here (1 this hour)$' reply || { cat reply s.log; fail "hello.so's answer"; }
pass "the page's configuration loads hello.so; it answers $(head -n 1 reply)"

# --- the mock-host test, with the build's mock host ------------------------
cp "$(block '^/\* test_hello.c ')" test_hello.c
# shellcheck disable=SC2086
"$libtool" --mode=link --tag=CC "$CC" $cflags test_hello.c hello.c "$PD_BUILDDIR/mockhost/libpolicyd-mockhost.la" \
	$confuse_libs -o test_hello >link.log 2>&1 || { cat link.log; fail "test_hello.c does not build against the mock host"; }
"$libtool" --mode=execute ./test_hello >test.log 2>&1 || { cat test.log; fail "test_hello fails"; }
grep -q '^PASS$' test.log || { cat test.log; fail "test_hello did not say PASS"; }
pass "UNIT TESTING: test_hello.c builds against the mock host and passes"

# --- fragments, each in a wrapper -------------------------------------------
f=$(block '^static int check(')
{ printf '#include <string.h>\n#include <policyd/plugin.h>\n'; cat "$f"
  printf 'const pd_plugin_desc pd_plugin = {PD_PLUGIN_HEADER, .name = "f", .check = check};\n'; } >frag_dns.c
f=$(block '^char esc\[')
{ printf '#include <policyd/plugin.h>\nvoid f(pd_instance *inst, const char *rcpt);\n'
  printf 'void f(pd_instance *inst, const char *rcpt)\n{\nconst pd_host *h = inst->host;\n'; cat "$f"; printf '}\n'; } >frag_esc.c
f=$(block '^static int first_rcpt(')
{ printf '#include <string.h>\n#include <policyd/plugin.h>\n'; sed -n '1,/^}/p' "$f"
  printf 'int g(pd_instance *inst, const char *client, const char *rcpt);\n'
  printf 'int g(pd_instance *inst, const char *client, const char *rcpt)\n{\nconst pd_host *h = inst->host;\n'
  sed -n '/in check()/,$p' "$f"; printf 'return done;\n}\n'; } >frag_upd.c
for c in frag_dns.c frag_esc.c frag_upd.c; do
	# shellcheck disable=SC2086
	"$CC" $cflags -c "$c" -o "${c%.c}.o" >cc.log 2>&1 || { cat "$c" cc.log; fail "the fragment in $c does not compile"; }
done
pass "the fragments (DNS check, escape, store_update) compile"
exit 0
