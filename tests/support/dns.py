"""A DNS server on loopback that answers TXT queries from a dict, for DKIM key lookups.

It answers over UDP (and TCP, for answers too long for a datagram) on a thread, authoritative
for the names it holds and NXDOMAIN for the rest.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from tests.support.ports import free_port


def txt_strings(value: str) -> list[str]:
    """A TXT value as DNS carries it: strings of at most 255 octets."""
    return [value[i : i + 255] for i in range(0, len(value), 255)] or [""]


@dataclass
class Zone:
    """Names (without the final dot, any case) and their TXT values."""

    records: dict[str, str] = field(default_factory=dict)

    def answer(self, query: bytes) -> bytes:
        request = dns.message.from_wire(query)
        response = dns.message.make_response(request)
        response.flags |= dns.flags.AA
        for question in request.question:
            value = self.records.get(question.name.to_text(omit_final_dot=True).lower())
            if value is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                continue
            if question.rdtype == dns.rdatatype.TXT:
                quoted = " ".join(f'"{part}"' for part in txt_strings(value))
                response.answer.append(
                    dns.rrset.from_text(question.name, 60, dns.rdataclass.IN, dns.rdatatype.TXT, quoted)
                )
        return response.to_wire()


class _Udp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(self.server.zone.answer(data), self.client_address)  # type: ignore[attr-defined]


class _Tcp(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        (length,) = struct.unpack("!H", self.rfile.read(2))
        reply = self.server.zone.answer(self.rfile.read(length))  # type: ignore[attr-defined]
        self.wfile.write(struct.pack("!H", len(reply)) + reply)


class _UdpServer(socketserver.ThreadingUDPServer):
    allow_reuse_address = True
    daemon_threads = True


class _TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@contextmanager
def dns_server(zone: Zone, host: str = "127.0.0.1", port: int = 0) -> Iterator[tuple[str, int]]:
    """Serve `zone` on (host, port) over UDP and TCP (port 0: a spare one); yields the address."""
    chosen = port or free_port(host)
    udp = _UdpServer((host, chosen), _Udp)
    tcp = _TcpServer((host, chosen), _Tcp)
    udp.zone = zone  # type: ignore[attr-defined]
    tcp.zone = zone  # type: ignore[attr-defined]
    threads = [
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        for s in (udp, tcp)
    ]
    for thread in threads:
        thread.start()
    try:
        yield host, chosen
    finally:
        for server in (udp, tcp):
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(5)


def can_bind_port_53(host: str) -> bool:
    """Whether this process may serve DNS on the standard port (root, or CAP_NET_BIND_SERVICE)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 53))
    except OSError:
        return False
    return True
