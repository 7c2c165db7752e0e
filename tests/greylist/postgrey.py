# postgrey.py - policyd's greylist and Debian's postgrey, same settings, same stream of requests: 0 disagreements
# SPDX-License-Identifier: BSD-2-Clause
"""postgrey (Debian package postgrey, installed by tools/install-deps) is
started privately on a free loopback port with its own database directory
and empty whitelists, stopped by its PID; skipped when it is not installed.
Both get the same settings (delay 3 s, auto-whitelist after 5 deliveries
counted once an hour per client address, IPv4 /24 and IPv6 /64 triplets,
retry window 2 days, lifetime 35 days) and the same stream of requests:
BATV, VERP and +extension senders, the null sender, /24 and /64
neighbours, messages with two recipients, retries before and after the
delay, then an auto-whitelist phase over hours. The stream runs in real time
(about 12 s); each request is judged by both at the same second: policyd's
wall clock is pinned to it (libfaketime, an absolute time rewritten as the
stream goes on), postgrey gets it as policy_test_time (its own test hook).
Every answer pair is compared (DEFER text with its seconds, DUNNO, or the
PREPEND of X-Greylist with the seconds delayed) and any disagreement is
printed. Classes excluded on purpose (policyd's choices, documented in
policyd-greylist(5) "COMPARED WITH POSTGREY"): senders whose local part has
a long hex word (policyd folds it like a number) and SRS senders (policyd
folds them to the original sender)."""
import os
import random
import time

import pdpostgrey
import pdtest
from pdtest import req

os.environ["TZ"] = "UTC"  # policyd's pinned clock is written as a UTC date
DELAY = 3


def Postgrey():
    """A private postgrey with the settings of the comparison (tests/lib/pdpostgrey.py)."""
    return pdpostgrey.Postgrey(["--delay=%d" % DELAY, "--auto-whitelist-clients=5", "--ipv4cidr=24",
                                "--ipv6cidr=64", "--retry-window=2", "--max-age=35",
                                "--greylist-text=Greylisted, please retry in %s seconds"])


def pin(d, t):
    """Set policyd's wall clock to T, standing still."""
    with open(d.clock + ".new", "w") as f:
        f.write(time.strftime("%Y-%m-%d %H:%M:%S\n", time.gmtime(t)))
    os.rename(d.clock + ".new", d.clock)


CLIENTS = ["192.0.2.10", "192.0.2.11", "192.0.2.200",          # one /24
           "198.51.100.5", "198.51.100.6",                     # another
           "2001:db8:a:b::1", "2001:db8:a:b:ffff:ffff:ffff:2",  # one /64
           "2001:db8:a:c::1"]                                  # the next /64
# each sender is a list of spellings of one sender: a message picks one at random
SENDERS = [["alice@s.example"],
           ["prvs=0123456789=bob@s.example", "prvs=9876543210=bob@s.example"],  # BATV
           ["bounce-123-456@lists.example", "bounce-789-1@lists.example"],      # VERP numbers
           ["carol+tag1@s.example", "carol+other@s.example", "carol@s.example"],  # +extension
           [""],                                                                # null sender
           ["Dan@S.Example", "dan@s.example"]]
# the excluded classes (see the docstring): policyd folds these, postgrey does not; sent now and
# then (they change the state both keep), never compared
EXCLUDED_SENDERS = [["ret-4f3a9b1c2d@m.example", "ret-0a1b2c3d4e@m.example"],
                    ["srs0=ab12=tt=orig.example=erin@fwd.example", "srs0=cd34=uu=orig.example=erin@fwd.example"]]
EXCLUDED = ("ret-", "srs0=")
RCPTS = ["r1@example.test", "r2@example.test", "R1@Example.TEST"]


def stream(seed=14):
    """The requests: (offset in seconds, attributes), in time order."""
    rnd = random.Random(seed)
    ev = []
    for m in range(60):
        client = rnd.choice(CLIENTS)
        sender = rnd.choice(EXCLUDED_SENDERS if rnd.random() < 0.1 else SENDERS)
        rcpts = rnd.sample(RCPTS[:2], rnd.choice((1, 1, 2)))
        if rnd.random() < 0.2:
            rcpts = [RCPTS[2]] + rcpts[1:]
        start = rnd.randint(0, 7)
        retries = sorted(rnd.sample((1, 2, 3, 4, 5), rnd.randint(1, 4)))
        for k, off in enumerate([0] + retries):
            s = rnd.choice(sender)
            for r in rcpts:
                ev.append((start + off, dict(client_address=client, sender=s, recipient=r,
                                             instance="m%d.%d" % (m, k))))
    # the auto-whitelist over hours: one address delivering an hour apart (whitelisted at the
    # fifth), and a bot of one /24 retrying at once (each address counted once, never five)
    t = 20
    for h in range(6):
        t += 3700
        for k, off in enumerate((0, DELAY + 1)):
            ev.append((t + off, dict(client_address="203.0.113.50", sender="m%d@good.example" % h,
                                     recipient="v@example.test", instance="awl%d.%d" % (h, k))))
    ev.append((t + 10, dict(client_address="203.0.113.50", sender="new@good.example",
                            recipient="w@example.test", instance="awl-new")))
    ev.append((t + 10, dict(client_address="203.0.113.51", sender="new@good.example",
                            recipient="w@example.test", instance="awl-next")))
    t += 100
    for b in range(8):
        for k, off in enumerate((0, DELAY, DELAY + 1)):
            ev.append((t + b + off, dict(client_address="203.0.113.%d" % (60 + b % 3), sender="bot%d@x.example" % b,
                                         recipient="v@example.test", instance="bot%d.%d" % (b, k))))
    ev.append((t + 30, dict(client_address="203.0.113.60", sender="fresh@x.example",
                            recipient="v@example.test", instance="bot-new")))
    ev.sort(key=lambda e: e[0])
    return ev


def norm(answer):
    """An answer with the parts that differ by design cut: the X-Greylist header's text."""
    if answer.startswith("PREPEND X-Greylist: delayed "):
        return " ".join(answer.split()[:5])  # PREPEND X-Greylist: delayed N seconds
    return answer


def test_same_answers_as_postgrey():
    pg = Postgrey()
    d = pdtest.Daemon('plugins = { "greylist" }\ngreylist {\n  delay = %d\n  auto_whitelist = 5\n'
                      '  auto_whitelist_interval = 1h\n  ipv4_prefix = 24\n  ipv6_prefix = 64\n'
                      '  retry_window = 2d\n  lifetime = 35d\n}\n' % DELAY, clock=True, verbose=0)
    pdtest._daemons.append(d)
    base = int(time.time()) + 1
    pin(d, base)
    d.start()
    c, p = d.client(), pg.client()
    ev = stream()
    assert 250 <= len(ev) <= 450, len(ev)
    compared, excluded, differ, bad = 0, 0, 0, []
    kinds = {"DEFER": 0, "PREPEND": 0, "DUNNO": 0}
    pinned = None
    by_instance = {}
    t_start = time.time()
    try:
        for off, attrs in ev:
            t = base + off
            if off < 20:  # the real-time part: wait for that second
                while time.time() < t:
                    time.sleep(min(0.05, t - time.time() + 0.001))
            if t != pinned:
                pin(d, t)
                pinned = t
            a = norm(c.ask(req(**attrs)))
            b = norm(p.ask(req(policy_test_time=t, **attrs)))
            by_instance[attrs["instance"]] = a
            if attrs["sender"].startswith(EXCLUDED):
                excluded += 1
                differ += a != b
                continue
            compared += 1
            kind = a.split()[0].split("_")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
            if a != b:
                bad.append((off, attrs["client_address"], attrs["sender"], attrs["recipient"], attrs["instance"],
                            "policyd: " + a, "postgrey: " + b))
    finally:
        c.close()
        p.close()
    took = time.time() - t_start
    for x in bad:
        print("DISAGREE +%ss %s <%s> <%s> %s | %s | %s" % x)
    print("%d requests compared (%s), %d of the excluded classes (%d of them answered otherwise), %.1f s"
          % (compared, kinds, excluded, differ, took))
    assert not bad, "%d disagreements of %d" % (len(bad), compared)
    # the stream exercised every kind of answer, and the auto-whitelist on both sides
    assert kinds["DEFER"] >= 50 and kinds["PREPEND"] >= 20 and kinds["DUNNO"] >= 20, kinds
    # the auto-whitelist phase decided what it should, on both sides (they agree)
    assert by_instance["awl-new"] == "DUNNO" and by_instance["awl-next"].startswith("DEFER"), by_instance
    assert by_instance["bot-new"].startswith("DEFER"), by_instance
    assert "client 203.0.113.50/32 auto-whitelisted after 5 deliveries" in d.log_text(), d.log_text()[-3000:]
    d.stop()
    pg.stop()


if __name__ == "__main__":
    try:
        pdtest.run(globals())
    finally:
        pdpostgrey.cleanup_all()
