# bench.py - manual benchmark (not in make check): cached SPF checks per second through the daemon
# SPDX-License-Identifier: BSD-2-Clause
"""Usage (root, from the build dir): PD_BUILDDIR=$PWD python3 ../tests/spf/bench.py [N] [CONNECTIONS]
Sends N messages per connection (default 2500 x 4) for a domain whose record
needs 3 lookups (TXT, A of an a: term, TXT of an include), with TTL 300, so
after the first messages every check is answered from the plugin's cache.
Prints checks/s and the DNS queries the server saw."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spftest  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2500
    conns = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    spftest.in_netns(__file__)
    import spfzone
    dns = spfzone.ZoneServer(ttl=300)
    dns.set_zone({'pass.example': [{'TXT': 'v=spf1 a:mail.pass.example include:inc.example -all'}],
                  'mail.pass.example': [{'A': '192.0.2.200'}],
                  'inc.example': [{'TXT': 'v=spf1 ip4:192.0.2.0/24 -all'}]})
    srv = spftest.Server('receiver = "mx.test"\nhelo_check = false\n')
    errors = []

    def worker():
        c = srv.client()
        try:
            for i in range(n):
                a = c.ask(spftest.req(sender='u%d@pass.example' % i,
                                      client_address='192.0.2.%d' % (1 + i % 100)))
                if not a.startswith('PREPEND Received-SPF: pass'):
                    errors.append(a)
        finally:
            c.close()
    try:
        t0 = time.time()
        ts = [threading.Thread(target=worker) for _ in range(conns)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(600)
        el = time.time() - t0
    finally:
        srv.stop()
        dns.close()
    print('%s: %d checks on %d connections in %.2f s = %.0f checks/s; %d DNS queries; %d wrong'
          % (srv.kind, n * conns, conns, el, n * conns / el, dns.queries, len(errors)))
    sys.exit(1 if errors else 0)


if __name__ == '__main__':
    main()
