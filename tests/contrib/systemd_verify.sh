#!/bin/sh
# systemd_verify.sh - check contrib/systemd units with systemd-analyze (verify, offline security)
# SPDX-License-Identifier: BSD-2-Clause
# Skips (77) where systemd-analyze is missing. The unit template is filled in
# with the build tree's policyd so that verify can check ExecStart= paths.
set -u
srcdir=${PD_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${PD_BUILDDIR:-$srcdir}
max_exposure=${PD_MAX_EXPOSURE:-4.0}   # systemd-analyze security scale: 0 safe .. 10 exposed

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze not available"
	exit 77
fi
if [ ! -x "$builddir/policyd" ]; then
	echo "SKIP: $builddir/policyd not built"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pdsystemd.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# fill_unit IN OUT - the template with this build tree's paths
fill_unit() {
	sed -e "s|@SBINDIR@|$builddir|g" -e "s|@SYSCONFDIR@|$tmp|g" "$1" > "$2"
}

fail=0
for in in "$srcdir"/contrib/systemd/*.in; do
	unit="$tmp/$(basename "$in" .in)"
	fill_unit "$in" "$unit"
	if grep -q '@[A-Z]*@' "$unit"; then
		echo "FAIL: $unit: unreplaced placeholder: $(grep -o '@[A-Z]*@' "$unit" | sort -u | tr '\n' ' ')"
		fail=1
	fi
	# --man=no: the man pages need not be installed for this check. verify
	# also loads units of the machine that share our name's prefix (Debian's
	# policyd-rate-limit.service, say): their warnings are not ours. Only
	# lines about our own files, or about no file, count.
	rc=0
	out=$(systemd-analyze verify --man=no "$unit" 2>&1) || rc=$?
	ours=$(printf '%s\n' "$out" | grep -v '^$' | grep -v -E '^/[^:]*:' ; printf '%s\n' "$out" | grep -F "$tmp/")
	printf '%s\n' "$out" | grep -E '^/[^:]*:' | grep -v -F "$tmp/" | sed 's/^/note: not our unit, ignored: /'
	if [ "$rc" = 0 ] && [ -z "$ours" ]; then
		echo "PASS: systemd-analyze verify $(basename "$unit")"
	else
		echo "FAIL: systemd-analyze verify $(basename "$unit") (exit $rc):"
		echo "$ours"
		fail=1
	fi
	case $unit in
	*.service)
		# the hardening must stay: fail if the exposure score rises
		if sec=$(systemd-analyze security --offline=yes "$unit" 2>&1); then
			score=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
			if [ -z "$score" ]; then
				echo "FAIL: no exposure score in:"
				printf '%s\n' "$sec" | tail -5
				fail=1
			elif awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }'; then
				echo "PASS: exposure $score <= $max_exposure"
			else
				echo "FAIL: exposure $score > $max_exposure:"
				printf '%s\n' "$sec" | grep '✗'
				fail=1
			fi
		else
			echo "note: systemd-analyze security --offline not supported here; skipped the score"
		fi
		;;
	esac
done
exit $fail
