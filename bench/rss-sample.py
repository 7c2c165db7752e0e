# rss-sample.py - the resident memory of a process tree during a benchmark run (bench/run RSS_WATCH)
# SPDX-License-Identifier: BSD-2-Clause
"""usage: rss-sample.py PID OUT.json [INTERVAL_S]

Every INTERVAL_S seconds (default 0.2) until SIGTERM or until PID is gone:
sums VmRSS (and Pss, from smaps_rollup) over PID and its descendants
(/proc/P/task/P/children, as policyd-bench -p does) and keeps the sample
with the largest RSS sum. OUT.json is rewritten at each new maximum:
{"rss_kb": sum, "pss_kb": sum, "procs": n, "root_rss_kb": PID's own,
"samples": samples taken}.  One Python process reads /proc directly: a
shell loop forking awk per process would load a 2-core machine itself.
"""

import json
import os
import signal
import sys
import time

PID, OUT = int(sys.argv[1]), sys.argv[2]
INTERVAL = float(sys.argv[3]) if len(sys.argv) > 3 else 0.2


def tree(pid, depth=0):
    out = [pid]
    if depth > 4:
        return out
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return out
    for k in kids:
        out += tree(k, depth + 1)
    return out


def field(path, key):
    """the kB value of a 'Key:   N kB' line, or None"""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)
best = None
n = 0
while not stop:
    if not os.path.exists("/proc/%d" % PID):
        break
    rss = pss = procs = 0
    root = None
    for p in tree(PID):
        r = field("/proc/%d/status" % p, "VmRSS:")
        if r is None:
            continue
        if p == PID:
            root = r
        rss += r
        pss += field("/proc/%d/smaps_rollup" % p, "Pss:") or 0
        procs += 1
    n += 1
    if procs and (best is None or rss > best["rss_kb"]):
        best = {"rss_kb": rss, "pss_kb": pss, "procs": procs, "root_rss_kb": root}
    if best:
        best["samples"] = n
        if best["rss_kb"] == rss or n % 25 == 0:
            tmp = OUT + ".tmp"
            with open(tmp, "w") as f:
                json.dump(best, f)
            os.replace(tmp, OUT)
    t = time.time()
    while not stop and time.time() - t < INTERVAL:
        time.sleep(min(0.05, INTERVAL))
if best:
    best["samples"] = n
    with open(OUT + ".tmp", "w") as f:
        json.dump(best, f)
    os.replace(OUT + ".tmp", OUT)
