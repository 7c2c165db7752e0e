# blzone.py - a DNS server (python3-dnslib) serving DNSBL-style zones for the dnsbl and helo tests
# SPDX-License-Identifier: BSD-2-Clause
"""Zones by suffix: each has a mode and its listings.

    srv = BLZone()                      # UDP+TCP on 127.0.0.1:53 (inside a netns)
    srv.zone('bl.test', {'2.0.0.127': '127.0.0.2', '10.2.0.192': '127.0.0.2'})
    srv.zone('wild.test', mode='wildcard', answer='127.0.0.2')
    srv.zone('dead.test', mode='silent')
    srv.host('mail.example', a=['192.0.2.10'])      # plain A/AAAA names (helo tests)

A zone's listings map the name below the zone to one address or a list;
canary=True (the default) adds the RFC 5782 test entries (2.0.0.127 and
TEST listed as 127.0.0.2, 1.0.0.127 and INVALID absent). Modes: normal,
wildcard (every name under the zone answers ANSWER), silent (no answer),
servfail. Unknown names are NXDOMAIN. queries(name) counts the questions
for NAME; queries_under(zone) for every name in it.
"""
import socketserver
import struct
import threading

from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSRecord


class BLZone:
    def __init__(self, addr='127.0.0.1', port=53, ttl=0):
        self.ttl = ttl
        self.zones = {}
        self.hosts = {}
        self.servfail = set()
        self.silent = set()
        self.log = []
        self.lock = threading.Lock()
        srv = self

        class UDPHandler(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                out = srv.answer(data)
                if out is not None:
                    sock.sendto(out, self.client_address)

        class TCPHandler(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    n = struct.unpack('!H', self.request.recv(2))[0]
                    data = self.request.recv(n)
                except (OSError, struct.error):
                    return
                out = srv.answer(data)
                if out is not None:
                    self.request.sendall(struct.pack('!H', len(out)) + out)

        class UDP(socketserver.ThreadingUDPServer):
            daemon_threads = True
            allow_reuse_address = True

        class TCP(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.udp = UDP((addr, port), UDPHandler)
        self.tcp = TCP((addr, port), TCPHandler)
        for s in (self.udp, self.tcp):
            threading.Thread(target=s.serve_forever, daemon=True).start()

    def zone(self, name, listings=None, mode='normal', answer='127.0.0.2', canary=True):
        """Add or replace zone NAME."""
        recs = {}
        if canary:
            recs['2.0.0.127'] = ['127.0.0.2']
            recs['test'] = ['127.0.0.2']
        for k, v in (listings or {}).items():
            recs[k.lower()] = [v] if isinstance(v, str) else list(v)
        with self.lock:
            self.zones[name.lower()] = {'mode': mode, 'answer': answer, 'recs': recs}

    def host(self, name, a=(), aaaa=(), mode='normal'):
        """Plain name NAME with A and AAAA records (mode servfail or silent: that answer)."""
        with self.lock:
            self.hosts[name.lower().rstrip('.')] = {'A': list(a), 'AAAA': list(aaaa), 'mode': mode}

    def close(self):
        for s in (self.udp, self.tcp):
            s.shutdown()
            s.server_close()

    def queries(self, name):
        with self.lock:
            return sum(1 for n, _ in self.log if n == name.lower())

    def queries_under(self, zone):
        z = zone.lower()
        with self.lock:
            return sum(1 for n, _ in self.log if n == z or n.endswith('.' + z))

    def _find(self, name):
        for z, spec in self.zones.items():
            if name == z or name.endswith('.' + z):
                return z, spec
        return None, None

    def answer(self, data):
        try:
            req = DNSRecord.parse(data)
        except Exception:
            return None
        q = req.q
        name = str(q.qname).rstrip('.').lower()
        qt = QTYPE.get(q.qtype)
        reply = req.reply()
        reply.header.ra = 1
        with self.lock:
            self.log.append((name, qt))
            z, spec = self._find(name)
            host = self.hosts.get(name)
        if spec is not None:
            if spec['mode'] == 'silent':
                return None
            if spec['mode'] == 'servfail':
                reply.header.rcode = RCODE.SERVFAIL
                return reply.pack()
            if spec['mode'] == 'wildcard' and name != z:
                addrs = [spec['answer']]
            else:
                addrs = spec['recs'].get(name[:-len(z) - 1] if name != z else '')
            if addrs is None:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply.pack()
            if qt == 'A':
                for a in addrs:
                    reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(a), ttl=self.ttl))
            return reply.pack()
        if host is not None:
            if host['mode'] == 'silent':
                return None
            if host['mode'] == 'servfail':
                reply.header.rcode = RCODE.SERVFAIL
                return reply.pack()
            for a in host.get(qt, []) if qt in ('A', 'AAAA') else []:
                reply.add_answer(RR(q.qname, getattr(QTYPE, qt), rdata=(A if qt == 'A' else AAAA)(a),
                                    ttl=self.ttl))
            return reply.pack()
        reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()
