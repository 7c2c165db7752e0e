# report.py - turn the results of bench/run into doc/BENCHMARKS.md (tables, ratios, targets)
# SPDX-License-Identifier: BSD-2-Clause
"""usage: report.py RESULTS_DIR OUT.md  (called by bench/run)"""

import glob
import json
import os
import sys

RES, OUT = sys.argv[1], sys.argv[2]


def load(name):
    """One run's JSON result, or None when the run did not happen."""
    p = os.path.join(RES, name + ".json")
    if not os.path.exists(p):
        return None
    d = json.load(open(p))
    return None if "failed" in d else d


def machine():
    """The key=value lines of machine.txt."""
    m = {}
    for line in open(os.path.join(RES, "machine.txt")):
        k, _, v = line.rstrip("\n").partition("=")
        m[k] = v
    return m


def fmt(v, nd=0):
    """A number for a table cell."""
    if v is None:
        return "–"
    if nd == 0:
        return "{:,.0f}".format(v).replace(",", " ")
    return "{:.{}f}".format(v, nd)


def rate(d):
    return d["requests_per_second"] if d else None


def lat(d, k):
    return d["latency_us"][k] if d else None


def cpu(d):
    if d and "server_cpu_us_per_request" in d:
        return d["server_cpu_us_per_request"]
    return None


WORKLOADS = [
    # (result name, workload description)
    ("dunno-c64", "unique triplets, 64 connections"),
    ("dunno-c64-T2", "unique triplets, 64 connections, 2 generator threads"),
    ("dunno-c1", "one connection"),
    ("dunno-exim-c8", "connection per request (Exim style), 8 at a time"),
    ("policyd-empty-c64", "unique triplets, 64 connections"),
    ("policyd-empty-c1", "one connection"),
    ("policyd-empty-exim-c8", "connection per request (Exim style), 8 at a time"),
    ("policyd-gl-unique-c64", "greylist: every request a new triplet, 64 connections"),
    ("policyd-gl-retry-c64", "greylist: half new, half early retries, 20% IPv6, 64 connections"),
    ("policyd-gl-pass-c64", "greylist: known triplets (pass path), 64 connections"),
    ("policyd-gl-unique-c1", "greylist: new triplets, one connection"),
    ("policyd-gl-exim-c8", "greylist: connection per request, 8 at a time"),
    ("policyd-glr-unique-c64", "greylist on Redis: every request a new triplet, 64 connections"),
    ("policyd-glr-retry-c64", "greylist on Redis: half new, half early retries, 20% IPv6, 64 connections"),
    ("policyd-glr-pass-c64", "greylist on Redis: known triplets (pass path), 64 connections"),
    ("policyd-glr-unique-c1", "greylist on Redis: new triplets, one connection"),
    ("postgrey-unique-c64", "greylist: every request a new triplet, 64 connections"),
    ("postgrey-retry-c64", "greylist: half new, half early retries, 20% IPv6, 64 connections"),
    ("postgrey-pass-c64", "greylist: known triplets (pass path), 64 connections"),
    ("postgrey-unique-c1", "greylist: new triplets, one connection"),
    ("postgrey-exim-c8", "greylist: connection per request (`--exim`), 8 at a time"),
    ("sqlgrey-unique-c64", "greylist: every request a new triplet (writes), 64 connections"),
    ("sqlgrey-pass-c64", "greylist: known triplets (pass path), 64 connections"),
    ("sqlgrey-unique-c1", "greylist: new triplets, one connection"),
    ("spfpy-c8", "SPF, DNS on loopback, 8 connections = 8 processes, 20% IPv6"),
    ("policyd-spf-nocache-c64", "SPF, DNS on loopback, cache off, 64 connections, 20% IPv6"),
    ("policyd-spf-nocache-c8", "SPF, DNS on loopback, cache off, 8 connections, 20% IPv6"),
    ("policyd-spf-cached-c64", "SPF, answers cached (pool of 5000), outcomes remembered, 64 connections"),
    ("policyd-spf-dnscache-c64", "SPF, answers cached (pool of 5000), `result_cache_size = 0`: "
     "every check evaluated, 64 connections"),
    ("policyd-other-alone-c64", "issue 13: a second listener's empty chain, 64 connections offered "
     "a fixed rate (`--rate`), no spf load"),
    ("policyd-other-delayed-c64", "issue 13: the same beside 1,000 spf connections, the resolver "
     "answering after the delay (the reference)"),
    ("policyd-other-silent-c64", "issue 13: the same beside 1,000 spf connections, the resolver "
     "never answering"),
    ("policyd-other-delayed-open-c64", "issue 13: the same beside 1,000 spf connections offered a "
     "fixed rate (open loop), the resolver answering after the delay (the reference)"),
    ("policyd-other-silent-open-c64", "issue 13: the same beside 1,000 spf connections offered a "
     "fixed rate (open loop), the resolver never answering"),
    ("policyd-chains-base-c64", "empty chain, just before the chains row, recipients at 1.25M domains, "
     "64 connections"),
    ("policyd-chains-c64", "100 chains x 10,000 recipient domains (80% of requests take one, 20% fall "
     "through to the default), 64 connections"),
    ("policyd-access-base-c64", "empty chain, just before the access rows, 64 connections"),
    ("policyd-access-c64", "access: 1M cidr + 1M exact entries, no entry matches (both tables "
     "asked), 64 connections"),
    ("policyd-access-hits-c64", "access: 1M cidr + 1M exact entries, a new client per request, "
     "most in a listed /28 (DEFER_IF_PERMIT, a log line each), 64 connections"),
]


# the runs for the DNSBL, rate-limit and DNS-bound SPF work: their own table,
# with the DNS delay, the DNS queries per request and the ceiling
PEER_WORKLOADS = [
    ("dunno-c1000", "1,000 connections (2 s warm-up)"),
    ("postfwd-rate-prime", "rate limit: 10 users sent over 100 messages/hour, 8 connections"),
    ("postfwd-rate-over-c64", "rate limit: those 10 users (over the limit), 64 connections"),
    ("postfwd-rate-pass-c64", "rate limit: 100,000 users (under the limit), 64 connections"),
    ("postfwd-rate-pass-c1000", "rate limit: 100,000 users, 1,000 connections"),
    ("postfwd1-rate-prime", "rate limit: 10 users sent over 100 messages/hour, 8 connections"),
    ("postfwd1-rate-over-c64", "rate limit: those 10 users (over the limit), 64 connections"),
    ("postfwd1-rate-pass-c64", "rate limit: 100,000 users (under the limit), 64 connections"),
    ("postfwd1-rate-pass-c1000", "rate limit: 100,000 users, 1,000 connections"),
    ("ratelimit-rate-prime", "rate limit: 10 users sent over 100 recipients/hour, 8 connections"),
    ("ratelimit-rate-over-c64", "rate limit: those 10 users (over the limit), 64 connections"),
    ("ratelimit-rate-pass-c64", "rate limit: 100,000 users (under the limit), 64 connections"),
    ("ratelimit-rate-pass-c1000", "rate limit: 100,000 users, 1,000 connections"),
    ("policyd-rl-rate-prime", "rate limit: 10 users sent over 100 messages/hour, 8 connections"),
    ("policyd-rl-rate-over-c64", "rate limit: those 10 users (over the limit), 64 connections"),
    ("policyd-rl-rate-pass-c64", "rate limit: 100,000 users (under the limit), 64 connections"),
    ("policyd-rl-rate-pass-c1000", "rate limit: 100,000 users, 1,000 connections"),
    ("policyd-rlr-rate-prime", "rate limit on Redis: 10 users sent over 100 messages/hour, 8 connections"),
    ("policyd-rlr-rate-over-c64", "rate limit on Redis: those 10 users (over the limit), 64 connections"),
    ("policyd-rlr-rate-pass-c64", "rate limit on Redis: 100,000 users (under the limit), 64 connections"),
    ("policyd-rlr-rate-pass-c1000", "rate limit on Redis: 100,000 users, 1,000 connections"),
    ("policyd-rl-mem", "rate limit: 1,000,000 distinct SASL users, one message each, 64 connections"),
    ("weight-dnsbl-nodelay-c64", "DNSBL: a new client per request, 20% IPv6, 64 connections"),
    ("weight-dnsbl-nodelay-c1000", "DNSBL: a new client per request, 20% IPv6, 1,000 connections"),
    ("weight-dnsbl-delay-c64", "DNSBL: a new client per request, 20% IPv6, 64 connections"),
    ("weight-dnsbl-delay-c1000", "DNSBL: a new client per request, 20% IPv6, 1,000 connections"),
    ("weight-dnsbl4-delay-c256", "DNSBL, 4 zones: a new client per request, 20% IPv6, 256 connections"),
    ("policyd-dnsbl4-delay-c256", "DNSBL, 4 zones: a new client per request, 20% IPv6, 256 connections"),
    ("policyd-dnsbl4-cached-c64", "DNSBL, 4 zones: answers cached (762 addresses), 64 connections"),
    ("mtpolicyd-dnsbl-nodelay-c64", "DNSBL: a new client per request, 20% IPv6, 64 connections"),
    ("mtpolicyd-dnsbl-nodelay-c1000", "DNSBL: a new client per request, 20% IPv6, 1,000 connections"),
    ("mtpolicyd-dnsbl-delay-c64", "DNSBL: a new client per request, 20% IPv6, 64 connections"),
    ("mtpolicyd-dnsbl-delay-c1000", "DNSBL: a new client per request, 20% IPv6, 1,000 connections"),
    ("spfpy-c8", "SPF: 50 sender domains, 8 connections = 8 processes, 20% IPv6"),
    ("policyd-spf-uniq-nodelay-c1000", "SPF, defaults: a new sender domain and HELO per request, "
     "20% IPv6, 1,000 connections (the CPU bound)"),
    ("policyd-spf-uniq-delay-c64", "SPF, defaults: a new sender domain and HELO per request, "
     "20% IPv6, 64 connections"),
    ("policyd-spf-uniq-delay-c1000", "SPF, defaults: a new sender domain and HELO per request, "
     "20% IPv6, 1,000 connections"),
    ("policyd-spf-uniq-delay-nocache-c1000", "SPF, the same with `dns { cache_size = 0 }` and "
     "`result_cache_size = 0` (where the memory goes; not the defaults)"),
    ("policyd-spf-delayed-c1000", "SPF, the same at 1,000 connections beside another chain's load "
     "(the reference of the silent run)"),
    ("policyd-spf-silent-c1000", "SPF, 1,000 connections, a resolver that never answers, beside "
     "another chain's load"),
    ("policyd-spf-delayed-open-c1000", "SPF, 1,000 connections offered a fixed rate (open loop) "
     "beside another chain's load (the reference of the silent run)"),
    ("policyd-spf-silent-open-c1000", "SPF, 1,000 connections offered a fixed rate (open loop), a "
     "resolver that never answers, beside another chain's load"),
    ("spfpy-uniq-nodelay-c8", "SPF: a new sender domain and HELO per request, 8 processes"),
    ("spfpy-uniq-delay-c8", "SPF: a new sender domain and HELO per request, 8 processes"),
    ("spfpy-uniq-delay-c64", "SPF: a new sender domain and HELO per request, 64 processes "
     "(6 s warm-up)"),
    ("spfpy-uniq-delay-c1000", "SPF: a new sender domain and HELO per request, 1,000 "
     "connections (40 s warm-up)"),
]


def qpr_cell(d):
    """DNS queries per request: a range when the requests in flight at the
    end (which may or may not have made their queries) move it by over 5%."""
    lo, hi = d.get("dns_queries_per_request"), d.get("dns_queries_per_request_max")
    if lo is None:
        return "–"
    if hi and hi > lo * 1.05:
        return "%s–%s" % (fmt(lo, 2), fmt(hi, 2))
    return fmt(lo, 2)


def peers_table(lines):
    """The DNSBL / rate-limit / DNS-bound rows, with their ceilings."""
    rows = [(n, w, load(n)) for n, w in PEER_WORKLOADS]
    rows = [r for r in rows if r[2]]
    if not rows:
        return
    lines.append("## DNSBL, rate limiting, SPF with a resolver's delay: the peers")
    lines.append("")
    lines.append("Ceiling: for a run whose DNS server answered after a delay, connections ÷ "
                 "(DNS queries per request × delay), i.e. what the connections could do if "
                 "each request waited for its lookups one after the other and for nothing "
                 "else; otherwise the DUNNO server at the same number of connections (the "
                 "machine's ceiling), where it was measured. *Answered*: connections that got "
                 "a counted reply (a server that serves fewer connections at once than it "
                 "accepts leaves the others waiting). DNS queries per request: from the DNS "
                 "server's counters before and after the run, over the requests answered "
                 "(warm-up included) and, for the lower bound, those still in flight at the "
                 "end; the ceiling is computed with the lower bound, so it is generous. The policyd rows come with the plugins.")
    lines.append("")
    lines.append("| server | workload | DNS delay ms | requests/s | p50 ms | p99 ms | answered "
                 "| errors | unfinished | actions | server CPU µs/req | DNS queries/req "
                 "| ceiling requests/s | of the ceiling |")
    lines.append("|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|")
    for name, what, d in rows:
        ceil, how = None, ""
        if d.get("dns_ceiling_rps"):
            ceil, how = d["dns_ceiling_rps"], " (DNS)"
        elif not name.startswith("dunno"):
            ref = load("dunno-c%d" % d["connections"])
            if ref:
                ceil, how = rate(ref), " (DUNNO)"
        delay = d.get("dns_delay_ms")
        acts = ", ".join("%s %d" % kv for kv in d["actions"].items())
        lines.append("| %s | %s | %s | %s | %s | %s | %s of %d | %d | %d | %s | %s | %s | %s | %s |" % (
            d["label"], what, fmt(delay) if delay is not None else "–", fmt(rate(d)),
            fmt(lat(d, "p50") / 1e3, 1), fmt(lat(d, "p99") / 1e3, 1),
            d.get("connections_answered", "?"), d["connections"], d["errors"],
            d.get("unfinished", 0), acts, fmt(cpu(d), 0),
            qpr_cell(d),
            (fmt(ceil) + how) if ceil else "–",
            ("%.0f%%" % (100 * rate(d) / ceil)) if ceil else "–"))
    lines.append("")
    samples = [(n, d) for n, _, d in rows if d.get("samples")]
    if samples:
        lines.append("### Sample replies")
        lines.append("")
        lines.append("`policyd-bench --show`: the first reply of each kind in each run and the "
                     "request it answered (abridged): the peers answer as configured.")
        lines.append("")
        lines.append("```")
        for n, d in samples:
            lines.append("%s:" % n)
            for smp in d["samples"]:
                lines.append("  " + smp[:400])
        lines.append("```")
        lines.append("")


def results_table(lines):
    lines.append("| server | workload | requests/s | p50 µs | p95 µs | p99 µs | max µs "
                 "| server CPU µs/req | client CPU µs/req | other load (cores) | actions "
                 "| errors | repetitions (requests/s) |")
    lines.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|---|")
    for name, what in WORKLOADS:
        d = load(name)
        if d is None:
            continue
        c = cpu(d)
        acts = ", ".join("%s %d" % kv for kv in d["actions"].items())
        err = d["errors"]
        other = None
        if "machine_busy_cores" in d and d["seconds"] > 0:
            srv = ((c or 0) + d.get("extra_cpu_us_per_request", 0)) * d["requests"] / 1e6
            other = max(0.0, d["machine_busy_cores"] -
                        (d["client_cpu_seconds"] + srv) / d["seconds"])
        srv_cell = fmt(c, 1)
        if "extra_cpu_us_per_request" in d:  # the Redis rows: redis-server's CPU apart
            srv_cell += " + %s redis-server" % fmt(d["extra_cpu_us_per_request"], 1)
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |" % (
            d["label"], what, fmt(rate(d)), fmt(lat(d, "p50")), fmt(lat(d, "p95")),
            fmt(lat(d, "p99")), fmt(lat(d, "max")), srv_cell,
            fmt(d["client_cpu_us_per_request"], 1), fmt(other, 2), acts, err,
            ", ".join(fmt(r) for r in d.get("repetitions", []))))


def target_rows():
    """(target, measured, required, verdict) for each target of issue 5."""
    rows = []

    def add(target, measured, required, ok):
        if ok is None:
            verdict = "not measured"
        else:
            verdict = "**met**" if ok else "**not met**"
        rows.append((target, measured, required, verdict))

    def ratio_row(target, a, b, need, what="requests/s"):
        da, db = load(a), load(b)
        if da and db and rate(db):
            r = rate(da) / rate(db)
            add(target, "%.1f× (%s vs %s %s)" % (r, fmt(rate(da)), fmt(rate(db)), what),
                "≥ %g×" % need, r >= need)
        else:
            missing = [n for n, d in ((a, da), (b, db)) if not d]
            add(target, "missing: " + ", ".join(missing), "≥ %g×" % need, None)

    for mix, label in (("unique", "new triplet"), ("retry", "early retries"),
                       ("pass", "known triplets")):
        a = "policyd-gl-%s-c64" % mix
        ratio_row("greylist (GDBM), %s, 64 conns: vs postgrey" % label, a,
                  "postgrey-%s-c64" % mix, 50)
        d = load(a)
        c = cpu(d)
        add("greylist, %s: server CPU per request" % label,
            "%.1f µs" % c if c is not None else "missing: " + a, "≤ 10 µs",
            None if c is None else c <= 10)
        add("greylist, %s: p99" % label,
            "%.0f µs" % lat(d, "p99") if d else "missing: " + a, "≤ 2000 µs",
            None if not d else lat(d, "p99") <= 2000)
    for a in ("policyd-gl-unique-c1", "policyd-empty-c1"):
        da, db = load(a), load("dunno-c1")
        if da and db:
            r = lat(da, "p50") / lat(db, "p50")
            add("one connection, median round trip (%s) vs DUNNO server" % a,
                "%.2f× (%.1f vs %.1f µs)" % (r, lat(da, "p50"), lat(db, "p50")), "≤ 1.5×",
                r <= 1.5)
        else:
            add("one connection, median round trip (%s) vs DUNNO server" % a,
                "missing: " + (a if not da else "dunno-c1"), "≤ 1.5×", None)
    ratio_row("connection per request: greylist vs postgrey --exim",
              "policyd-gl-exim-c8", "postgrey-exim-c8", 10)
    ratio_row("connection per request: empty chain vs postgrey --exim",
              "policyd-empty-exim-c8", "postgrey-exim-c8", 10)
    ratio_row("core with an empty chain, 64 conns: vs DUNNO server",
              "policyd-empty-c64", "dunno-c64", 0.75)
    ratio_row("spf, DNS on loopback (cache off, 64 conns): vs policyd-spf (Python) × 8 "
              "processes", "policyd-spf-nocache-c64", "spfpy-c8", 10)
    d = load("policyd-spf-cached-c64")
    add("spf with answers cached", "%s requests/s" % fmt(rate(d)) if d else
        "missing: policyd-spf-cached-c64", "≥ 50 000 requests/s",
        None if not d else rate(d) >= 50000)
    # issue 15: dnsbl with 4 zones after a 30 ms delay at 256 connections
    d = load("policyd-dnsbl4-delay-c256")
    if d and d.get("dns_delay_ms"):
        need = 0.8 * d["connections"] / (d["dns_delay_ms"] / 1000.0)
        add("dnsbl, 4 zones, %g ms resolver delay, 256 conns: ≥ 80%% of 256 ÷ delay" % d["dns_delay_ms"],
            "%s requests/s (%.0f%% of %s)" % (fmt(rate(d)), 100 * rate(d) / (need / 0.8), fmt(need / 0.8)),
            "≥ %s requests/s" % fmt(need), rate(d) >= need)
        rss = d.get("server_rss_kb_after", -1)
        add("dnsbl, 4 zones, 256 conns: resident memory", "%.1f MB" % (rss / 1024) if rss > 0 else "missing",
            "≤ 100 MB", None if rss <= 0 else rss <= 100 * 1024)
    else:
        add("dnsbl, 4 zones, resolver delay, 256 conns", "missing: policyd-dnsbl4-delay-c256",
            "≥ 80% of 256 ÷ delay", None)
    ratio_row("dnsbl, 4 zones, delay, 256 conns: vs policyd-weight (the ratio)",
              "policyd-dnsbl4-delay-c256", "weight-dnsbl4-delay-c256", 0)
    ratio_row("dnsbl, 4 zones, answers cached, 64 conns: vs DUNNO server",
              "policyd-dnsbl4-cached-c64", "dunno-c64", 0.5)
    p = os.path.join(RES, "idle.json")
    idle = json.load(open(p)) if os.path.exists(p) and os.path.getsize(p) else None
    if idle and idle.get("server_rss_kb_held", -1) > 0:
        mb = idle["server_rss_kb_held"] / 1024
        add("10 000 idle connections held: resident memory",
            "%.1f MB (%d held, %d answered, %d/%d sampled alive after the hold)" % (
                mb, idle["idle_connections"], idle["answered"], idle["sample_alive"],
                idle["sample_tried"]), "≤ 100 MB",
            mb <= 100 and idle["idle_connections"] == 10000)
    else:
        add("10 000 idle connections held: resident memory", "missing", "≤ 100 MB", None)
    r1, r10 = load("rss-1m"), load("rss-10m")
    if r1 and r10 and r1.get("server_rss_kb_after", -1) > 0:
        a, b = r1["server_rss_kb_after"], r10["server_rss_kb_after"]
        n10 = r1["requests"] + r10["requests"]
        ch = (b - a) / a * 100
        add("resident memory flat from 1M to 10M requests",
            "%d kB after %s → %d kB after %s requests (%+.1f%%)" % (
                a, fmt(r1["requests"]), b, fmt(n10), ch), "± 5%",
            abs(ch) <= 5 and n10 >= 10e6 * 0.99)
    else:
        add("resident memory flat from 1M to 10M requests", "missing", "± 5%", None)
    # issue 14 part 3: the ratelimit plugin against the faster of postfwd (postfwd2, Debian's default)
    # and policyd-rate-limit on the same rate_set workload (postfwd1's rows are in the table)
    for tag, store, need in (("policyd-rl", "GDBM", 20), ("policyd-rlr", "Redis", 10)):
        for w in ("rate-over-c64", "rate-pass-c64", "rate-pass-c1000"):
            peers = [(p, load("%s-%s" % (p, w))) for p in ("postfwd", "ratelimit")]
            peers = [(p, d) for p, d in peers if d and rate(d)]
            best = max(peers, key=lambda pd: rate(pd[1]))[0] if peers else "postfwd"
            ratio_row("ratelimit (%s), %s: vs the faster of postfwd and policyd-rate-limit (%s)" % (store, w, best),
                      "%s-%s" % (tag, w), "%s-%s" % (best, w), need)
    ratio_row("100 chains x 10,000 recipient domains, 64 conns: vs the empty chain (issue 17)",
              "policyd-chains-c64", "policyd-chains-base-c64", 0.9)
    da, db = load("policyd-chains-c64"), load("policyd-chains-base-c64")
    ca, cb = (cpu(da), cpu(db)) if da and db else (None, None)
    if ca is not None and cb is not None:
        add("chain choice, 100 chains x 10,000 domains: server CPU added per request (issue 17)",
            "%.2f µs (%.1f vs %.1f µs)" % (ca - cb, ca, cb), "≤ 1 µs", ca - cb <= 1)
    else:
        add("chain choice, 100 chains x 10,000 domains: server CPU added per request (issue 17)",
            "missing", "≤ 1 µs", None)
    p = os.path.join(RES, "route-bench.out")
    kv = dict(t.split("=", 1) for t in open(p).read().split() if "=" in t) if os.path.exists(p) else {}
    if "added_ns" in kv:
        ns = float(kv["added_ns"])
        add("chain choice alone (bench/route-bench, pd_route over 100,000 requests): ns added per request",
            "%.0f ns (%s vs %s ns)" % (ns, kv["route_ns_with_rules"], kv["route_ns_without"]), "≤ 1000 ns",
            ns <= 1000)
    else:
        add("chain choice alone (bench/route-bench): ns added per request", "missing", "≤ 1000 ns", None)
    ratio_row("access with 1M cidr + 1M exact entries, 64 conns, no entry matches: vs the empty "
              "chain (issue 16)", "policyd-access-c64", "policyd-access-base-c64", 0.7)
    p = os.path.join(RES, "access-ready.out")
    kv = dict(t.split("=", 1) for t in open(p).read().split() if "=" in t) if os.path.exists(p) else {}
    if float(kv.get("ready_ms", -1)) >= 0:
        ms = float(kv["ready_ms"])
        add("access: start-up with the 2M entries loaded, exec to the first answer (issue 16)",
            "%.0f ms" % ms, "≤ 2000 ms", ms <= 2000)
    else:
        add("access: start-up with the 2M entries loaded, exec to the first answer (issue 16)",
            "missing", "≤ 2000 ms", None)
    if int(kv.get("rss_kb", -1)) > 0:
        rows.append(("access: resident memory with the 2M entries loaded (issue 16)",
                     "%.1f MB (master and worker)" % (int(kv["rss_kb"]) / 1024), "reported", "reported"))
    else:
        add("access: resident memory with the 2M entries loaded (issue 16)", "missing", "reported", None)
    p = os.path.join(RES, "ready.out")
    ready = None
    if os.path.exists(p):
        for tok in open(p).read().split():
            if tok.startswith("ready_ms="):
                ready = float(tok[9:])
    if ready is not None and ready >= 0:
        add("ready to serve after start", "%.1f ms" % ready, "≤ 100 ms", ready <= 100)
    else:
        add("ready to serve after start", "missing", "≤ 100 ms", None)
    return rows


def other_load(d):
    """cores that other processes kept busy during run d (the machine's busy
    cores less the server's and the generator's CPU), or None"""
    if not d or "machine_busy_cores" not in d or not d.get("seconds"):
        return None
    srv = ((cpu(d) or 0) + d.get("extra_cpu_us_per_request", 0)) * d["requests"] / 1e6
    return max(0.0, d["machine_busy_cores"] - (d["client_cpu_seconds"] + srv) / d["seconds"])


def busy_note(*runs):
    """'; other load A, B cores' for the runs given (None skipped)"""
    v = [other_load(d) for d in runs if d]
    v = [x for x in v if x is not None]
    if not v:
        return ""
    return "; other load %s core%s" % (", ".join("%.2f" % x for x in v),
                                      "" if len(v) == 1 and v[0] == 1 else "s")


def target_rows_13(m):
    """(target, measured, required, verdict) for each target of issue 13:
    the spf plugin as it comes behind a resolver with a delay, a silent
    resolver, and the ratios to the DUNNO server of the same run."""
    rows = []

    def add(target, measured, required, ok):
        if ok is None:
            verdict = "not measured"
        elif ok == "reported":
            verdict = "reported"
        else:
            verdict = "**met**" if ok else "**not met**"
        rows.append((target, measured, required, verdict))

    def ratio_row(target, a, b, need, note=""):
        da, db = load(a), load(b)
        req = "≥ %g×%s" % (need, note)
        if da and db and rate(db):
            r = rate(da) / rate(db)
            add(target, "%.2f× (%s vs %s requests/s%s)" % (r, fmt(rate(da)), fmt(rate(db)),
                                                          busy_note(da, db)), req, r >= need)
        else:
            add(target, "missing: " + ", ".join(n for n, d in ((a, da), (b, db)) if not d), req, None)

    def lat_bound(d):
        """connections / (DNS queries per request × delay), with the run's figures"""
        q, ms = d.get("dns_queries_per_request"), d.get("dns_delay_ms")
        if not q or not ms:
            return None, ""
        return d["connections"] / (q * ms / 1e3), "%d ÷ (%.2f queries × %g ms)" % (d["connections"], q, ms)

    def rss_mb(d):
        kb = d.get("server_rss_kb_max") if d else None
        return kb / 1024.0 if kb else None

    delay = float(m.get("dns_delay", "30"))
    # 64 connections, after the delay: the latency bound, and the Python peer
    d = load("policyd-spf-uniq-delay-c64")
    b, how = lat_bound(d) if d else (None, "")
    if d and b:
        add("spf, %g ms delay, unique domains, 64 conns: ≥ 90%% of the latency bound" % delay,
            "%s requests/s = %.0f%% of %s (%s%s)" % (fmt(rate(d)), 100 * rate(d) / b, fmt(b), how,
                                                    busy_note(d)),
            "≥ %s requests/s" % fmt(0.9 * b), rate(d) >= 0.9 * b)
    else:
        add("spf, %g ms delay, unique domains, 64 conns: ≥ 90%% of the latency bound" % delay,
            "missing: policyd-spf-uniq-delay-c64" + ("" if not d else " (no DNS counts)"),
            "≥ 90% of 64 ÷ (queries × delay)", None)
    # the stricter bound: the lookups of a request that go out together cost
    # one round trip; the round trips from the median latency (at least 1)
    if d and d.get("dns_delay_ms"):
        rt = max(1, round(lat(d, "p50") / 1e3 / d["dns_delay_ms"]))
        b2 = d["connections"] / (rt * d["dns_delay_ms"] / 1e3)
        add("spf, %g ms delay, 64 conns: ≥ 90%% of connections ÷ (round trips × delay) (stricter)" % delay,
            "%s requests/s = %.0f%% of %s (p50 %.1f ms: %d round trip%s of %g ms)" % (
                fmt(rate(d)), 100 * rate(d) / b2, fmt(b2), lat(d, "p50") / 1e3, rt,
                "" if rt == 1 else "s", d["dns_delay_ms"]),
            "≥ %s requests/s" % fmt(0.9 * b2), rate(d) >= 0.9 * b2)
    ratio_row("spf, %g ms delay, unique domains, 64 conns: vs policyd-spf (Python), a process "
              "per connection" % delay, "policyd-spf-uniq-delay-c64", "spfpy-uniq-delay-c64", 1.0)
    # 1,000 connections: the lesser of the latency bound and the CPU bound
    d, dn = load("policyd-spf-uniq-delay-c1000"), load("policyd-spf-uniq-nodelay-c1000")
    b, how = lat_bound(d) if d else (None, "")
    t = "spf, %g ms delay, unique domains, 1,000 conns: ≥ 80%% of the lesser of the latency " \
        "bound and the CPU bound" % delay
    if d and b and dn:
        cpu_b = rate(dn)
        lim = min(b, cpu_b)
        add(t, "%s requests/s = %.0f%% of %s (latency bound %s = %s; CPU bound %s: the same at "
            "1,000 conns, resolver without delay; server CPU %.0f and %.0f µs per request%s)" % (
                fmt(rate(d)), 100 * rate(d) / lim, fmt(lim), fmt(b), how, fmt(cpu_b),
                cpu(d) or 0, cpu(dn) or 0, busy_note(d, dn)),
            "≥ %s requests/s" % fmt(0.8 * lim), rate(d) >= 0.8 * lim)
    else:
        miss = [n for n, x in (("policyd-spf-uniq-delay-c1000", d),
                               ("policyd-spf-uniq-nodelay-c1000", dn)) if not x]
        add(t, "missing: " + (", ".join(miss) if miss else "DNS counts"),
            "≥ 80% of min(latency bound, CPU bound)", None)
    # its p99: twice the lookups' time, plus the queueing that Little's law
    # gives (mean time in the server less the lookups' time)
    if d and d.get("dns_queries_per_request"):
        q = d["dns_queries_per_request"]
        dns_ms = q * delay
        mean_ms = d["connections"] / rate(d) * 1e3 if rate(d) else 0
        queue_ms = max(0.0, mean_ms - dns_ms)
        need = 2 * dns_ms + queue_ms
        p99 = lat(d, "p99") / 1e3
        add("spf, %g ms delay, 1,000 conns: p99 ≤ 2 × (lookups × delay) + queueing" % delay,
            "p99 %.1f ms (p50 %.1f ms, max %.1f ms)" % (p99, lat(d, "p50") / 1e3, lat(d, "max") / 1e3),
            "≤ %.1f ms = 2 × %.2f × %g ms + %.1f ms queueing (1,000 ÷ rate = %.1f ms mean, less "
            "the lookups)" % (need, q, delay, queue_ms, mean_ms), p99 <= need)
    else:
        add("spf, %g ms delay, 1,000 conns: p99 ≤ 2 × (lookups × delay) + queueing" % delay,
            "missing: policyd-spf-uniq-delay-c1000", "≤ 2 × lookups × delay + queueing", None)
    mb = rss_mb(d)
    mbn = rss_mb(dn)
    mbc = rss_mb(load("policyd-spf-uniq-delay-nocache-c1000"))
    add("spf, 1,000 conns: resident memory of policyd (master + worker VmRSS, sampled during the run)",
        ("%.1f MB with the delay (largest sample)%s%s" % (
            mb, "; %.1f MB without the delay (CPU-bound run)" % mbn if mbn else "",
            "; %.1f MB with the delay and both caches off (not the defaults)" % mbc if mbc else ""))
        if mb else
        "missing: policyd-spf-uniq-delay-c1000 (sampled RSS)", "≤ 100 MB",
        None if mb is None else mb <= 100)
    # the Python peer at 1,000 connections: one process per connection
    py = load("spfpy-uniq-delay-c1000")
    py64 = load("spfpy-uniq-delay-c64")
    smp = py64.get("rss_sampled") if py64 else None
    if py and rss_mb(py):
        add("policyd-spf (Python) at 1,000 connections: what its processes need",
            "%.0f MB (sampled, %d processes)" % (rss_mb(py), py["rss_sampled"]["procs"]),
            "reported (policyd: %s)" % ("%.1f MB" % mb if mb else "–"), "reported")
    elif smp and smp.get("procs", 0) > 1 and smp.get("root_rss_kb") is not None:
        per = (smp["rss_kb"] - smp["root_rss_kb"]) / (smp["procs"] - 1) / 1024.0
        pss = smp.get("pss_kb", 0) / smp["procs"] / 1024.0
        add("policyd-spf (Python) at 1,000 connections: what its processes need",
            "%.1f MB RSS per process (%d processes sampled during spfpy-uniq-delay-c64; PSS %.1f MB "
            "each) × 1,000 = %.1f GB RSS" % (per, smp["procs"] - 1, pss, per * 1000 / 1024),
            "reported (policyd at 1,000 conns: %s)" % ("%.1f MB" % mb if mb else "–"), "reported")
    else:
        add("policyd-spf (Python) at 1,000 connections: what its processes need",
            "missing: spfpy-uniq-delay-c64 (sampled RSS)", "reported", None)
    # DNS on loopback: the ratios to the DUNNO server of the same run
    ratio_row("spf, DNS on loopback, cache off, 64 conns: vs DUNNO server (no regression)",
              "policyd-spf-nocache-c64", "dunno-c64", 0.13, " (earlier 18 000 vs 140 000)")
    ratio_row("spf, DNS on loopback, answers cached, 64 conns: vs DUNNO server (no regression)",
              "policyd-spf-cached-c64", "dunno-c64", 0.39, " (earlier 55–58 000 vs 140 000)")
    ratio_row("core with an empty chain, 64 conns: vs DUNNO server", "policyd-empty-c64",
              "dunno-c64", 0.8)
    # a silent resolver: every spf request answered within dns_timeout + 1 s,
    # and another chain beside it; closed loop (1,000 connections as fast as
    # answered), then open loop (the spf load offered a fixed rate)
    to = float(m.get("spf_dns_timeout", "5"))
    for sfx, how in (("", "closed loop"),
                     ("-open", "open loop, spf offered %s requests/s" % m.get("spf_open_rate", "?"))):
        d = load("policyd-spf-silent%s-c1000" % sfx)
        t = "silent resolver, spf at 1,000 conns (%s): every request answered within " \
            "dns_timeout + 1 s" % how
        if d:
            mx = lat(d, "max") / 1e3
            acts = ", ".join("%s %d" % kv for kv in d["actions"].items())
            add(t, "%s answered (%s), max %.2f s, p50 %.2f s, %d errors (%d timeouts at the client's "
                "30 s), %d in flight at the end; %d connections answered" % (
                    fmt(d["requests"]), acts or "none", mx / 1e3, lat(d, "p50") / 1e6, d["errors"],
                    d.get("timeouts", 0), d.get("unfinished", 0), d.get("connections_answered", 0)),
                "max ≤ %g s, no errors" % (to + 1),
                d["requests"] > 0 and d["errors"] == 0 and mx <= (to + 1) * 1e3)
        else:
            add(t, "missing: policyd-spf-silent%s-c1000" % sfx, "max ≤ %g s, no errors" % (to + 1), None)
        ds, dd, da = (load("policyd-other-silent%s-c64" % sfx), load("policyd-other-delayed%s-c64" % sfx),
                      load("policyd-other-alone-c64"))
        t = "silent resolver (%s): another chain's requests (empty chain, second listener): p99 vs " \
            "the same run with the resolver answering" % how
        if ds and dd:
            r = lat(ds, "p99") / lat(dd, "p99") if lat(dd, "p99") else float("inf")
            add(t, "p99 %.2f ms beside the silent resolver vs %.2f ms beside the answering one (%.2f×); "
                "%s vs %s requests/s of %s offered, %d and %d errors" % (
                    lat(ds, "p99") / 1e3, lat(dd, "p99") / 1e3, r, fmt(rate(ds)), fmt(rate(dd)),
                    m.get("other_rate", "?"), ds["errors"], dd["errors"]),
                "≤ 2× the reference, no errors", r <= 2 and ds["errors"] == 0)
        else:
            add(t, "missing: " + ", ".join(n for n, x in (("policyd-other-silent%s-c64" % sfx, ds),
                                                           ("policyd-other-delayed%s-c64" % sfx, dd))
                                           if not x), "≤ 2× the reference, no errors", None)
        # the reference above is itself slowed by the spf load beside it (the
        # resolver answering, the checks take the CPU): the other chain alone
        # is the stricter bar
        t = "silent resolver (%s): another chain's p99 vs the same load alone, no spf load " \
            "(stricter)" % how
        if ds and da:
            r = lat(ds, "p99") / lat(da, "p99") if lat(da, "p99") else float("inf")
            add(t, "p99 %.2f ms vs %.2f ms alone (%.1f×); p95 %.2f vs %.2f ms, p50 %.2f vs %.2f ms" % (
                lat(ds, "p99") / 1e3, lat(da, "p99") / 1e3, r, lat(ds, "p95") / 1e3,
                lat(da, "p95") / 1e3, lat(ds, "p50") / 1e3, lat(da, "p50") / 1e3), "≤ 2×", r <= 2)
        else:
            add(t, "missing: " + ", ".join(n for n, x in (("policyd-other-silent%s-c64" % sfx, ds),
                                                           ("policyd-other-alone-c64", da)) if not x),
                "≤ 2×", None)
    return rows


def main():
    m = machine()
    L = []
    L.append("# policyd benchmarks")
    L.append("")
    L.append("Generated by `bench/run` on %s; do not edit by hand, run it again. "
             "Each load run is bounded by %s s (and a request count); all servers run on "
             "this machine, on loopback, one after the other, with `policyd-bench` (one "
             "thread, so one core for the generator and the rest for the server) as the "
             "load generator. Each load run was repeated %s times and the fastest "
             "repetition is shown (the machine is shared: the *other load* column says how "
             "many cores other processes kept busy during the run shown; load average before "
             "the run: %s). The whole run took %s s." % (
                 m["date"], m["duration"], m.get("repeat", "1"), m.get("load_before", "?"),
                 m["elapsed"]))
    L.append("")
    if m.get("quick") == "1":
        L.append("**This is a `--quick` run (1 s runs, 1/10 of the memory tests): for "
                 "trying the script, not for comparison.**")
        L.append("")
    others = []
    for name, _ in WORKLOADS:
        d = load(name)
        if d and "machine_busy_cores" in d and d["seconds"] > 0:
            srv = ((cpu(d) or 0) + d.get("extra_cpu_us_per_request", 0)) * d["requests"] / 1e6
            others.append(max(0.0, d["machine_busy_cores"] -
                              (d["client_cpu_seconds"] + srv) / d["seconds"]))
    if others:
        others.sort()
        med = others[len(others) // 2]
        if med > 0.3:
            L.append("**Warning: the machine was not quiet.** During the median run other "
                     "processes kept %.2f of the %s cores busy (see *other load* below; "
                     "load average %s before the run). Servers measured at different "
                     "moments got different shares of the CPU, so the ratios below are "
                     "rough; run `bench/run` again on an idle machine for figures to "
                     "compare." % (med, m.get("nproc", "?"), m.get("load_before", "?")))
            L.append("")
    L.append("## Machine and versions")
    L.append("")
    for k, label in (("nproc", "cores (nproc)"), ("cpu", "CPU"), ("kernel", "kernel"),
                     ("os", "system"), ("mem", "memory"), ("cc", "compiler"),
                     ("policyd", "policyd"), ("commit", "policyd commit"),
                     ("postgrey", "postgrey (Debian)"), ("sqlgrey", "sqlgrey (Debian)"),
                     ("spfpy", "postfix-policyd-spf-python (Debian)"), ("perl", "perl"),
                     ("python", "python3"), ("redis", "redis-server (Debian)"),
                     ("postfwd", "postfwd (Debian)"), ("ratelimit", "policyd-rate-limit (Debian)"),
                     ("weight", "policyd-weight (Debian)"), ("mtpolicyd", "mtpolicyd (Debian)"),
                     ("dns_delay", "DNS delay of the delayed runs (ms)")):
        L.append("- %s: %s" % (label, m.get(k, "?")))
    L.append("")
    notes = open(os.path.join(RES, "notes.txt")).read().strip()
    if notes:
        L.append("## What this run could not measure")
        L.append("")
        for n in notes.splitlines():
            L.append("- " + n)
        L.append("")
    L.append("## Targets (issue 5, and issue 16 where marked)")
    L.append("")
    L.append("| target | measured | required | verdict |")
    L.append("|---|---|---|---|")
    for t in target_rows():
        L.append("| %s | %s | %s | %s |" % t)
    L.append("")
    t13 = target_rows_13(m)
    L.append("## Targets (issue 13)")
    L.append("")
    L.append("The spf plugin as it comes (no thread tuning, its default caches; `dns { resolv_conf }` "
             "naming the DNS server), every request a new HELO name and sender domain "
             "(`--domains unique`, every lookup a miss), 20%% IPv6, the resolver answering after "
             "%s ms unless said otherwise. Latency bound: connections ÷ (DNS queries per request × "
             "delay), the queries counted by the DNS server over the run (the lower count, so the "
             "bound is the higher one). CPU bound: the same workload at 1,000 connections with the "
             "resolver answering at once, in the same run. Memory: master + worker VmRSS, sampled "
             "every 0.2 s during the run (`bench/rss-sample.py`), the largest sample of any "
             "repetition. Silent resolver: `spf-dns -s` (drops every query); the other chain is "
             "an empty chain on a second listener, 64 connections offered %s requests/s in all "
             "(`--rate`), measured while 1,000 spf connections wait, against the same pair with the "
             "resolver answering after the delay." % (m.get("dns_delay", "30"), m.get("other_rate", "?")))
    L.append("")
    L.append("| target | measured | required | verdict |")
    L.append("|---|---|---|---|")
    for t in t13:
        L.append("| %s | %s | %s | %s |" % t)
    L.append("")
    L.append("## All runs")
    L.append("")
    L.append("Latencies are round trips seen by the client (request written to reply "
             "read). Server CPU is utime+stime+cutime+cstime from `/proc/PID/stat` of the "
             "server process and its live descendants (a supervising master and its "
             "worker, the Python SPF listener and its 8 children) before and after the run, divided by the requests answered (the clock tick is 10 ms, so "
             "short runs of slow servers are coarse). Other load: cores busy on the "
             "whole machine (/proc/stat) less the server's and the generator's CPU; for "
             "the SPF rows it includes the DNS server. Client CPU is the generator's own; "
             "against the DUNNO server it is about equal to the server's, i.e. on 2 "
             "cores the generator and the minimal server each use up one core.")
    L.append("")
    results_table(L)
    L.append("")
    peers_table(L)
    d1, d2 = load("dunno-c64"), load("dunno-c64-T2")
    if d1 and d2:
        L.append("**Is the generator the bottleneck?** Against the minimal DUNNO server "
                 "at 64 connections one generator thread reached %s requests/s using "
                 "%.1f µs of CPU per request, the server %s µs; with two generator "
                 "threads %s requests/s. The generator costs no more per request than the "
                 "cheapest possible server (both are mostly kernel time in send/recv on "
                 "loopback TCP), so any server that spends more CPU per request than the "
                 "DUNNO server is the limit, not the generator." % (
                     fmt(rate(d1)), d1["client_cpu_us_per_request"], fmt(cpu(d1), 1),
                     fmt(rate(d2))))
        L.append("")
    profs = sorted(glob.glob(os.path.join(RES, "*.profile")) +
                   glob.glob(os.path.join(RES, "*.dso")) +
                   glob.glob(os.path.join(RES, "*.syscalls")))
    if profs:
        L.append("## Profiles")
        L.append("")
        L.append("`perf record -F 499 -g -p PID` for 3 s during a run of the named workload "
                 "(64 connections; the spf delay one at 1,000): top "
                 "entries by self time (shared object, symbol). Then `strace -c -f -p PID` "
                 "over 20 000 requests of the same run: system calls per request.")
        L.append("")
        for p in profs:
            base = os.path.basename(p)
            kind = {"profile": "perf (self time)", "dso": "perf (self time by shared object)",
                    "syscalls": "system calls per request"}[base.rsplit(".", 1)[1]]
            L.append("### %s: %s" % (base.rsplit(".", 1)[0], kind))
            L.append("")
            L.append("```")
            L.extend(line.rstrip() for line in open(p))
            L.append("```")
            L.append("")
    L.append("## Peers: how they were run")
    L.append("")
    L.append("- postgrey: `postgrey --inet=127.0.0.1:PORT --dbdir=DIR --user=postgrey "
             "--group=postgrey --delay=300 --auto-whitelist-clients=0 "
             "--whitelist-clients=EMPTY --whitelist-recipients=EMPTY -q` (`--delay=1` for "
             "the pass path, `--exim` for the connection-per-request run). Auto-whitelisting "
             "is off so that every request really goes through the triplet database.")
    L.append("- sqlgrey: SQLite (`db_type = SQLite`, `libdbd-sqlite3-perl`), "
             "`greymethod = full`, `optmethod = none`, `db_prepare_cache = 1`, "
             "empty whitelists, `reconnect_delay = 5` (minutes; 0 for the pass path), "
             "domain auto-whitelisting effectively off (`group_domain_level = 1000000`).")
    L.append("- policyd-spf (Python): `/usr/bin/policyd-spf` on stdin/stdout behind a "
             "forking loopback listener (one process per connection, as Postfix's spawn "
             "does; 8 connections = 8 processes), in a private mount namespace whose "
             "`/etc/resolv.conf` points at `bench/spf-dns` on 127.0.0.153:53 (a one-thread C "
             "UDP server that gives every name the same SPF TXT record, standing in for a "
             "local caching resolver). Its CPU is that of the listener and its children.")
    L.append("- policyd spf: `spf { resolv_conf = \"FILE\" }` with FILE pointing at the "
             "same DNS server; `cache_size = 0` for the uncached rows. The cached rows first "
             "send each of the 5 000 (client, HELO, sender) once (answers from the DNS server), "
             "then load the pool for the run: with the defaults the plugin remembers each "
             "outcome that the DNS cache answered whole until its first answer expires "
             "(`result_cache_size`, the target row); with `result_cache_size = 0` every check is "
             "evaluated from the DNS cache (libspf2 runs each time).")
    L.append("- policyd spf, issue 13 (`--only spfdelay`): `plugins = { \"spf\" }` and `dns { "
             "resolv_conf = \"FILE\" }` and nothing else (the plugin's and the core's defaults: "
             "threads, caches, timeouts), FILE naming the DNS server at once (the CPU bound) or after "
             "the delay; `policyd-bench -m unique --domains unique -6 20`: every request a new HELO "
             "name and sender domain, so every lookup misses every cache. The resident memory is "
             "sampled during the runs by `bench/rss-sample.py` (VmRSS and Pss of master and worker "
             "every 0.2 s, the largest kept); the caches-off row (`dns { cache_size = 0 }`, "
             "`result_cache_size = 0`) shows what the caches hold. Silent resolver: `bench/spf-dns -s "
             "127.0.0.155 53` (counts and drops every query), policyd with a second listener for "
             "`chain \"other\" { plugins = { } listen = { ... } }` and `spf { dns_timeout = %s }` (the "
             "default, written out); two policyd-bench at once: 1,000 spf connections for 14 s (client "
             "timeout 30 s), and from 1 s later 64 connections to the other listener offered %s "
             "requests/s (`--rate`, 2 s warm-up, 9 s counted); the same pair with the delayed "
             "resolver is the reference, and the other listener's load alone before it. Then both "
             "pairs with the spf load open-loop (`--rate %s` over the 1,000 connections: too few "
             "to back up behind %s s timeouts; the silent one on a fresh instance): a resolver "
             "that fails fast once it is known dead lets a closed-loop generator send a flood of "
             "requests, which the open loop cannot."
             % (m.get("spf_dns_timeout", "5"), m.get("other_rate", "?"), m.get("spf_open_rate", "?"),
                m.get("spf_dns_timeout", "5")))
    L.append("- policyd greylist on Redis: a private `redis-server --port PORT --bind 127.0.0.1 "
             "--save \"\" --appendonly no` (no persistence) and `greylist { backend = \"redis\" "
             "redis_server = \"127.0.0.1:PORT\" ... }` with the same other options as on GDBM "
             "(`redis_prefix = \"pass:\"` and `delay = 1` for the pass path). One round trip "
             "(EVALSHA) per request. The server CPU column shows policyd's CPU + "
             "redis-server's (from `/proc/PID/stat` before and after each run), per request.")
    L.append("- postfwd2 and postfwd1 (Debian postfwd): `postfwd2 -f FILE --interface 127.0.0.1 "
             "--port PORT --cache_socket unix::DIR/cache.socket --user postfw --group postfw "
             "--pidfile FILE` (postfwd1: `-d` and no cache socket), rules: `id=RATE_SASL; "
             "protocol_state==END-OF-MESSAGE; sasl_username=~^.; action=rate(sasl_username/100/"
             "3600/450 4.7.1 ...)` and the same by `sender` where `sasl_username=!!(^.)`: 100 "
             "messages an hour per SASL user, else per sender. postfwd2 is a master, a cache "
             "daemon (the rate counters) and a prefork policy server of 10 to 100 children, "
             "each serving one connection at a time; postfwd1 one multiplexing process. Both "
             "daemonize (no foreground server mode): their PID is read from the pidfile.")
    L.append("- policyd-rate-limit (Debian): `policyd-rate-limit -f FILE`, SQLite in its own "
             "dir, `limits: [[100, 3600]]`, `limit_by_sasl: True`, `limit_by_sender: True`, "
             "`debug: False`. It counts RCPT requests (recipients), not messages, and "
             "answers every other protocol state with its success action; one select() "
             "loop, so at most some 1,000 connections (FD_SETSIZE).")
    L.append("- policyd-weight (Debian): `policyd-weight -f FILE -D start` in a private mount "
             "namespace whose `/etc/resolv.conf` names the DNS server (without or with the "
             "delay); `@dnsbl_score = ('zen.test', 4.35, -1.5, 'ZEN_TEST')`, `$dnsbl_checks_only "
             "= 1`, `$MAXDNSBLHITS = 0` (one listing rejects), no RHSBL, its result caches on "
             "(defaults; every client is new), `$MAX_PROC = 50` children (default). Its "
             "cache process outlives a SIGTERM to the master: every process of its tree is "
             "stopped by PID.")
    L.append("- mtpolicyd (Debian): `mtpolicyd -f -c FILE` in the same kind of mount namespace, "
             "one VirtualHost with one RBL plugin (`domain = \"zen.test\"`, `mode = \"reject\"`), "
             "`SessionCache` `None` (no memcached), prefork of 4 to 50 children "
             "(`max_servers = 50`), `keepalive_timeout = 300`. It checks IPv4 clients only "
             "and looks up the TXT record of a listed address too.")
    L.append("- The DNS servers: `bench/spf-dns -z zen.test=127.0.0.2:30 127.0.0.153 53` (at "
             "once) and the same with `-D %s` on 127.0.0.154 (every answer after %s ms, "
             "thousands in flight): SPF TXT for every name, A/AAAA/MX for HELO and sender "
             "checks, 30%% of the names under zen.test listed by a hash of the name "
             "(NXDOMAIN with the zone's SOA for the rest)." % (m.get("dns_delay", "30"),
                                                            m.get("dns_delay", "30")))
    L.append("- policyd access: `access { table \"clients\" { attribute = \"client_address\" "
             "file = \"DIR/clients\" match = \"cidr\" } table \"senders\" { attribute = "
             "\"sender\" file = \"DIR/senders\" match = \"exact\" } }` over files that bench/run "
             "generates (1,000,000 entries each: IPv4 hosts, /28 networks and IPv6 /64s; "
             "user@domain, @domain and user@ keys; every value checked at load). Its baseline "
             "is an empty chain measured just before it. Start-up: `policyd-bench --ready -d 20 "
             "-- policyd -f -c policyd.conf` with those tables (fastest of the repetitions), and "
             "the resident memory of master and worker half a second after the first answer.")
    L.append("- DUNNO server: `bench/dunno-server` (one thread, epoll), the ceiling.")
    L.append("- policyd: `policyd -f -c policyd.conf` with `listen = { \"inet:127.0.0.1:PORT\" }`, "
             "stderr to /dev/null, otherwise the defaults (so a supervising master process "
             "and one worker process; CPU and memory are summed over both).")
    L.append("")
    L.append("## Exact commands")
    L.append("")
    L.append("The script: `sudo bench/run` (options: `-d SECONDS` per run, `-r REPEAT`, `-o FILE`, `--quick`, `--keep`, "
             "`--no-install`; `PD_BUILDDIR=DIR` to use an existing build). Each run:")
    L.append("")
    L.append("```")
    for name, _ in WORKLOADS + [("postgrey-prime", ""), ("sqlgrey-prime", ""),
                                ("policyd-gl-prime", ""), ("policyd-glr-prime", ""), ("policyd-spf-prime", ""), ("rss-1m", ""), ("rss-10m", "")]:
        p = os.path.join(RES, name + ".json")
        if os.path.exists(p):
            d = json.load(open(p))
            L.append("%-24s %s" % (name, d["command"]))
    for name, _ in PEER_WORKLOADS:
        p = os.path.join(RES, name + ".json")
        if name in dict(WORKLOADS):
            continue
        if os.path.exists(p):
            d = json.load(open(p))
            L.append("%-26s %s" % (name, d["command"]))
    L.append("%-24s %s" % ("idle", "policyd-bench -t 127.0.0.1:PORT --idle 10000 --hold 2 "
                           "-d 120 -p PID"))
    L.append("%-24s %s" % ("ready", "policyd-bench -t 127.0.0.1:PORT --ready -d 10 -- "
                           "policyd -f -c policyd.conf"))
    L.append("```")
    L.append("")
    L.append("`-p PID` (the server's PID, for CPU and RSS) and `--json` were added to each. "
             "Pass path: a `-m pool:N -s 4242 -n N` run primes N triplets, the server's "
             "delay passes, then the same pool is asked again.")
    L.append("")
    open(OUT, "w").write("\n".join(L))


main()
