#!/bin/sh
# test-bench.sh - make check: policyd-bench against the DUNNO server over a unix socket (counts, not timings)
# SPDX-License-Identifier: BSD-2-Clause
B=${PD_BUILDDIR:-.}
T=$(mktemp -d /tmp/pd-benchtest.XXXXXX) || exit 1
SRV=""
pass=0; fail=0
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
# check NAME FILE PATTERN: the output FILE holds PATTERN
check() {
	if grep -q -- "$3" "$2"; then pass=$((pass + 1)); else
		fail=$((fail + 1)); echo "FAIL: $1: no '$3' in:"; cat "$2"; fi
}
"$B/bench/dunno-server" "unix:$T/s" & SRV=$!
i=0; while [ ! -S "$T/s" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
"$B/policyd-bench" -t "unix:$T/s" -c 4 -n 1000 -d 60 -m retry:10 -6 50 --json >"$T/a" 2>&1
check persistent "$T/a" '"requests":1000,"errors":0'
check actions "$T/a" '"actions":{"DUNNO":1000}'
check no-unfinished "$T/a" '"unfinished":0'
"$B/policyd-bench" -t "$T/s" -c 3 -n 200 -d 60 --exim -a minimal -p "$SRV" >"$T/b" 2>&1
check exim "$T/b" 'requests     200 in'
check exim-actions "$T/b" 'actions      DUNNO 200$'
check exim-pid "$T/b" 'server rss'
"$B/policyd-bench" -t "unix:$T/s" --idle 50 --hold 0.1 -p "$SRV" >"$T/c" 2>&1
check idle "$T/c" '50 connections held (50 answered.* 50 of 50 sampled'
# message mode: RCPT requests, then END-OF-MESSAGE counted apart; --show
"$B/policyd-bench" -t "unix:$T/s" -c 3 -n 400 -d 60 -M 5:2 --show --json >"$T/e" 2>"$T/e2"
check messages "$T/e" '"requests":400,"errors":0'
check messages-eom "$T/e" '"EOM:DUNNO":'
check messages-show "$T/e2" 'first EOM:DUNNO reply, to request [0-9]*: protocol_state=END-OF-MESSAGE'
"$B/policyd-bench" -t "unix:$T/s" -c 2 -n 100 -d 60 --domains unique --clients unique -6 30 >"$T/f" 2>&1
check unique-names "$T/f" 'a sender domain and a HELO name per triplet, a new IPv4 address per triplet'
# bench/rss-sample.py (bench/run RSS_WATCH): the server's memory sampled while it runs
SRCB=$(cd "$(dirname "$0")" && pwd)
if command -v python3 >/dev/null 2>&1; then
	python3 "$SRCB/rss-sample.py" "$SRV" "$T/r" 0.05 & RP=$!
	sleep 0.5; kill "$RP"; wait "$RP"
	check rss-sample "$T/r" '"procs": 1, "root_rss_kb": [1-9]'
	check rss-sample-count "$T/r" '"samples": [2-9]'
fi
kill "$SRV"; wait "$SRV" 2>/dev/null; SRV=""
# a dead target: every request is an error and the exit status says so
"$B/policyd-bench" -t "unix:$T/s" -n 5 -d 10 >"$T/d" 2>&1; rc=$?
check dead-target "$T/d" '5 errors'
[ $rc = 1 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: exit status $rc, want 1"; }
# the benchmarks' DNS server (records, DNSBL zone, delay, silent mode)
if command -v python3 >/dev/null 2>&1; then
	python3 "$SRCB/test-dns.py" "$B/bench/spf-dns" >"$T/g" 2>&1
	cat "$T/g" | grep -v ' passed, ' 
	p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$T/g")
	f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$T/g")
	[ -n "$p" ] || { p=0; f=1; echo "FAIL: test-dns.py:"; cat "$T/g"; }
	pass=$((pass + p)); fail=$((fail + f))
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
