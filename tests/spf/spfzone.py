# spfzone.py - test DNS server (python3-dnslib) serving RFC 7208 test-suite style zone data
# SPDX-License-Identifier: BSD-2-Clause
"""A small authoritative-looking DNS server for the spf tests.

Zone data uses the RFC 7208 test suite's YAML form: {name: [{TYPE: value}, ...]}
with the suite driver's conventions (see python3-spf's testspf.py): SPF records
also serve as TXT when a name has no TXT; "TIMEOUT" (for a name or a type)
means no answer at all; an unknown name starting with "error." times out.
Modes: "normal", "silent" (never answers), "servfail" (answers SERVFAIL),
"wrongq" (answers with another question: a spoofed reply a resolver must
drop). Every UDP query's (source port, ID, name) is noted in .peers, and a
UDP answer longer than .tc_over bytes (default 4096) is sent truncated
(TC), so the resolver must ask again over TCP (.tcp_queries counts those).
"""
import socket
import socketserver
import struct
import threading

from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, SOA, TXT, A, DNSRecord, DNSLabel


def _strings(v):
    """TXT value(s) to a list of byte strings of at most 255 bytes."""
    if isinstance(v, str):
        v = [v]
    out = []
    for s in v:
        b = s.encode('utf-8') if isinstance(s, str) else bytes(s)
        if not b:
            out.append(b'')
        while b:
            out.append(b[:255])
            b = b[255:]
    return out


def load_zone(zonedata):
    """Suite zonedata to {lowercase name: [(TYPE, value) or 'TIMEOUT']}."""
    zone = {}
    for name, recs in (zonedata or {}).items():
        items = []
        has_txt = any(isinstance(r, dict) and 'TXT' in r for r in recs or [])
        gen = []
        for r in recs or []:
            if not isinstance(r, dict):
                items.append(r)  # 'TIMEOUT'
                continue
            for t, v in r.items():
                if t in ('TXT', 'SPF') and v == 'NONE':
                    continue
                items.append((t, v))
                if t == 'SPF' and not has_txt:
                    gen.append(('TXT', v))
        zone[name.lower().rstrip('.')] = items + gen
    return zone


class ZoneServer:
    """UDP and TCP DNS server on ADDR:PORT in background threads."""

    def __init__(self, addr='127.0.0.1', port=53, ttl=0):
        self.zone = {}
        self.ttl = ttl
        self.mode = 'normal'
        self.queries = 0
        self.log = []
        self.peers = []
        self.tc_over = 4096
        self.tcp_queries = 0
        self.lock = threading.Lock()
        srv = self

        class UDPHandler(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                srv.note_peer(self.client_address, data)
                out = srv.answer(data)
                if out is not None:
                    if len(out) > srv.tc_over:
                        out = srv.truncated(data)
                    sock.sendto(out, self.client_address)

        class TCPHandler(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    hdr = self._read(2)
                    data = self._read(struct.unpack('!H', hdr)[0])
                except (OSError, ValueError):
                    return
                with srv.lock:
                    srv.tcp_queries += 1
                out = srv.answer(data)
                if out is not None:
                    self.request.sendall(struct.pack('!H', len(out)) + out)

            def _read(self, n):
                buf = b''
                while len(buf) < n:
                    got = self.request.recv(n - len(buf))
                    if not got:
                        raise ValueError('eof')
                    buf += got
                return buf

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

    def note_peer(self, addr, data):
        try:
            req = DNSRecord.parse(data)
            name = b'.'.join(req.q.qname.label).decode('latin-1').lower()
        except Exception:
            return
        with self.lock:
            self.peers.append((addr[1], req.header.id, name))

    def set_zone(self, zonedata):
        with self.lock:
            self.zone = load_zone(zonedata)

    def close(self):
        for s in (self.udp, self.tcp):
            s.shutdown()
            s.server_close()

    def truncated(self, data):
        req = DNSRecord.parse(data)
        r = req.reply()
        r.header.tc = 1
        return r.pack()

    def _rdata(self, t, v):
        if t == 'A':
            return QTYPE.A, A(v)
        if t == 'AAAA':
            return QTYPE.AAAA, AAAA(v)
        if t in ('TXT', 'SPF'):
            return getattr(QTYPE, t), TXT(_strings(v))
        if t == 'MX':
            return QTYPE.MX, MX(v[1], v[0])
        if t == 'PTR':
            return QTYPE.PTR, PTR(v)
        if t == 'CNAME':
            return QTYPE.CNAME, CNAME(v)
        return None, None

    def lookup(self, name, qt, level=0):
        """('timeout'|'nx'|'ok', [(name, TYPE, value)])"""
        recs = self.zone.get(name)
        if recs is None:
            return ('timeout' if name.startswith('error.') else 'nx'), []
        out = []
        seen = False
        for r in recs:
            if r == 'TIMEOUT':
                if not seen:
                    return 'timeout', []
                continue
            t, v = r
            if t == qt:
                seen = True
                if v == 'TIMEOUT':
                    return 'timeout', []
                out.append((name, t, v))
            elif t == 'CNAME' and qt != 'CNAME':
                out.append((name, t, v))
                if not level:  # like the suite's driver: one level
                    st, more = self.lookup(str(v).lower().rstrip('.'), qt, 1)
                    out += [m for m in more if m[1] == qt]
        return 'ok', out

    def answer(self, data):
        with self.lock:
            self.queries += 1
            mode, zone = self.mode, self.zone
        try:
            req = DNSRecord.parse(data)
        except Exception:
            return None
        if mode == 'silent':
            return None
        reply = req.reply()
        reply.header.ra = 1
        if mode == 'servfail':
            reply.header.rcode = RCODE.SERVFAIL
            return reply.pack()
        if mode == 'wrongq':
            reply.q.qname = DNSLabel('spoofed.' + str(req.q.qname))
            reply.add_answer(RR(reply.q.qname, req.q.qtype, rdata=A('192.0.2.66') if req.q.qtype == QTYPE.A
                                else TXT([b'spoofed']), ttl=300))
            return reply.pack()
        q = req.q
        name = b'.'.join(q.qname.label).decode('latin-1').lower()
        qt = QTYPE.get(q.qtype)
        with self.lock:
            self.log.append((name, qt))
            status, recs = self.lookup(name, qt)
        if status == 'timeout':
            return None
        if status == 'nx':
            reply.header.rcode = RCODE.NXDOMAIN
        for owner, t, v in recs:
            rt, rd = self._rdata(t, v)
            if rd is None:
                continue
            try:
                reply.add_answer(RR(q.qname if owner == name else DNSLabel(owner), rt,
                                    rdata=rd, ttl=self.ttl))
            except Exception:
                continue
        if self.ttl and not reply.rr:
            reply.add_auth(RR(DNSLabel(name), QTYPE.SOA, ttl=self.ttl, rdata=SOA(
                'ns.test.', 'root.test.', (1, 3600, 600, 86400, self.ttl))))
        try:
            return reply.pack()
        except Exception:
            reply = req.reply()
            reply.header.rcode = RCODE.SERVFAIL
            return reply.pack()
