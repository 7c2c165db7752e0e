# fuzz.py - manual robustness run (not in make check): random SPF records must never break the server
# SPDX-License-Identifier: BSD-2-Clause
"""Usage (root): PD_BUILDDIR=<build dir> python3 tests/spf/fuzz.py [SEED] [COUNT]
Serves COUNT (default 1000) zones of random, mostly invalid SPF records built
from record fragments, macros and junk bytes, and asks the server about each;
any lost connection or server exit is a failure. Use SPFDRV=<an ASan build of
spfdrv> with PDSPF_USE_DRIVER=1 to run the plugin under AddressSanitizer."""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spftest  # noqa: E402

ATOMS = ['a', 'mx', 'ptr', 'all', 'include:', 'exists:', 'ip4:', 'ip6:', 'redirect=', 'exp=', 'x=', '%{d}',
         '%{i}', '%{ir}', '%{l1r-}', '%{d2}', '%{D9}', '%{s}', '%{o}', '%{h}', '%{v}', '%{p}', '%{c}', '%{r}',
         '%{t}', '%%', '%_', '%-', '%', '/', '//', '/0', '/32', '//128', '/33', ':', '.', 'example.com',
         'x.example', '1.2.3.4', '::1', '2001:db8::/32', '-', '+', '~', '?', '}', '{', 'foo', '..', ' ', '  ',
         '\t', 'v=spf1', '\x00', '\xff', 'e' * 70]
NAMES = ['x.example', 'example.com', 'foo.x.example', 'x.example.x.example']


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    spftest.in_netns(__file__)
    import spfzone
    rnd = random.Random(seed)
    dns = spfzone.ZoneServer()
    srv = spftest.Server('receiver = "mx.test"\ndns_timeout = 2\n')
    status = 0
    try:
        c = srv.client()
        for i in range(count):
            zone = {}
            for name in NAMES:
                recs = [{'TXT': 'v=spf1 ' + ''.join(rnd.choice(ATOMS) for _ in range(rnd.randint(0, 14)))}]
                if rnd.random() < .5:
                    recs.append({'A': '1.2.3.4'})
                if rnd.random() < .3:
                    recs.append({'MX': [10, rnd.choice(NAMES)]})
                zone[name] = recs
            dns.set_zone(zone)
            ip = rnd.choice(['1.2.3.4', '192.0.2.9', '2001:db8::1', '::ffff:1.2.3.4'])
            try:
                c.ask(spftest.req(client_address=ip, sender='u@x.example', helo_name='foo.x.example'))
            except OSError as e:
                print('FAIL case %d (%r, client %s): %r' % (i, zone, ip, e))
                print(srv.log_text()[-3000:])
                status = 1
                break
        else:
            print('%d random records, server still answering' % count)
        c.close()
    finally:
        srv.stop()
        dns.close()
    sys.exit(status)


if __name__ == '__main__':
    main()
