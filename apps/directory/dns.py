"""The directory's DNS interface, in the manner of Consul's: SRV and A records from its hashes.

Caddy's `dynamic srv` upstreams ask it which instances answer for a service; nothing else in
the gateway changes when instances come and go. Names, under DNS_DOMAIN (`canaduck`):

- `<service>.service.canaduck` SRV: one record per live instance (its URL's port, and a
  target name); A/AAAA: the instances' IP addresses.
- `_<port>._tcp.<service>.service.canaduck` SRV: the instances that announce that extra
  port in their entry's `meta.ports` (e.g. an IRC port); `_http._tcp` is the URL's port.
- `<hex>.addr.canaduck` A/AAAA: the address a target name stands for (`7f000001` is
  127.0.0.1), as Consul spells IP targets, since an SRV target must be a name.
- A/AAAA of any other name (an instance that advertises a host name, e.g. `calc-1` in
  compose) is looked up by this host's resolver, so that Caddy can dial it through us too.

Queries are answered from a snapshot kept in memory: a flood of queries never reaches Redis,
and a slow or broken entry never delays an answer. The snapshot (the index of service names,
then every service's hash: `Directory.hashes`) is read again every DNS_REFRESH seconds, and at
once when an instance registers or deregisters.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping

from dnslib import AAAA, QTYPE, RCODE, RR, SRV, A, DNSError, DNSLabel, DNSRecord

from apps.directory.routing import RoutingTable, Target, build_table
from apps.kit.clock import SYSTEM_CLOCK, Clock
from apps.kit.directory import RawHash

log = logging.getLogger("canaduck.dns")

Resolve = Callable[[str, int], Awaitable[list[str]]]
#: Reads the directory: service name -> its hash, as `Directory.hashes` returns it.
ReadDirectory = Callable[[], Awaitable[Mapping[str, RawHash]]]

#: Records carry TTL 0: a client that caches (Caddy) does so for its own refresh interval.
TTL = 0
#: The UDP answer size when the query carries no EDNS0 option (RFC 1035).
PLAIN_UDP_SIZE = 512


def target_name(target: Target, zone: DNSLabel) -> DNSLabel:
    """The SRV target of an instance: `<hex>.addr.<zone>` for an IP, else its host name."""
    ip = target.ip
    if ip is None:
        return DNSLabel(f"{target.host}.")
    return DNSLabel(f"{ip.packed.hex()}.addr.{zone}")


class Responder:
    """Builds the answer to one query from a routing table (pure: no I/O but `resolve`)."""

    def __init__(self, domain: str, resolve: Resolve) -> None:
        self.zone = DNSLabel(domain.strip(".") + ".")
        self._resolve = resolve

    async def answer(self, query: DNSRecord, table: RoutingTable) -> DNSRecord:
        reply = query.reply(ra=0)
        if query.header.opcode != 0 or len(query.questions) != 1:
            reply.header.rcode = RCODE.NOTIMP if query.header.opcode else RCODE.FORMERR
            return reply
        question = query.q
        name, qtype = question.qname, question.qtype
        if not name.matchSuffix(self.zone):
            if qtype in (QTYPE.A, QTYPE.AAAA):
                await self._forward(reply, name, qtype)
            else:
                reply.header.rcode = RCODE.REFUSED
            return reply
        labels = [label.decode(errors="replace").lower() for label in name.stripSuffix(self.zone).label]
        if len(labels) == 2 and labels[1] == "addr":
            self._addr(reply, name, qtype, labels[0])
        elif len(labels) == 2 and labels[1] == "service":
            self._service(reply, name, qtype, table.targets(labels[0]), "http")
        elif len(labels) == 4 and labels[1:4:2] == ["_tcp", "service"] and labels[0].startswith("_"):
            self._service(reply, name, qtype, table.targets(labels[2]), labels[0][1:])
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply

    def _service(self, reply: DNSRecord, name: DNSLabel, qtype: int, targets: list[Target],
                 port_name: str) -> None:
        routed = [(t, port) for t in targets if (port := t.port_for(port_name)) is not None]
        if not routed:
            reply.header.rcode = RCODE.NXDOMAIN
            return
        if qtype not in (QTYPE.SRV, QTYPE.ANY):
            ips = dict.fromkeys(t.ip for t, _ in routed if t.ip and t.ip.version == _family(qtype))
            for ip in ips:
                reply.add_answer(_address_record(name, ip))  # type: ignore[arg-type]
            return
        # Equal priority and weight: every instance is as good as the others.
        extras = {}
        for target, port in routed:
            where = target_name(target, self.zone)
            reply.add_answer(RR(name, QTYPE.SRV, ttl=TTL, rdata=SRV(1, 1, port, where)))
            if target.ip is not None:
                extras[str(where)] = _address_record(where, target.ip)
        for record in extras.values():
            reply.add_ar(record)

    def _addr(self, reply: DNSRecord, name: DNSLabel, qtype: int, hexed: str) -> None:
        try:
            ip = ipaddress.ip_address(bytes.fromhex(hexed))
        except ValueError:
            reply.header.rcode = RCODE.NXDOMAIN
            return
        if _family(qtype) == ip.version or qtype == QTYPE.ANY:
            reply.add_answer(_address_record(name, ip))

    async def _forward(self, reply: DNSRecord, name: DNSLabel, qtype: int) -> None:
        host = str(name).rstrip(".")
        try:
            addresses = await self._resolve(host, _family(qtype))
        except (TimeoutError, OSError, UnicodeError):
            addresses = []
        if not addresses:
            reply.header.rcode = RCODE.NXDOMAIN
        for address in addresses[:8]:
            reply.add_answer(_address_record(name, ipaddress.ip_address(address)))


def _family(qtype: int) -> int:
    return 6 if qtype == QTYPE.AAAA else 4


def _address_record(name: DNSLabel, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> RR:
    if ip.version == 4:
        return RR(name, QTYPE.A, ttl=TTL, rdata=A(str(ip)))
    return RR(name, QTYPE.AAAA, ttl=TTL, rdata=AAAA(str(ip)))


def pack_for_udp(query: DNSRecord, reply: DNSRecord) -> bytes:
    """The reply within the size the client accepts: additional records go first, and an
    answer that still does not fit is sent truncated (TC), so the client asks again over TCP."""
    limit = PLAIN_UDP_SIZE
    for record in query.ar:
        if record.rtype == QTYPE.OPT:
            limit = max(PLAIN_UDP_SIZE, min(int(record.rclass), 4096))
    packed = reply.pack()
    if len(packed) <= limit:
        return packed
    reply.ar = []
    reply.set_header_qa()
    packed = reply.pack()
    if len(packed) <= limit:
        return packed
    truncated = reply.truncate()
    truncated.add_question(query.q)
    return truncated.pack()


class HostResolver:
    """A/AAAA of host names outside our zone, through this host's resolver, cached briefly
    and bounded in time, so one unresolvable name costs its own queries a second at most."""

    def __init__(self, timeout: float = 1.0, ttl: float = 5.0, max_names: int = 256,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._timeout = timeout
        self._ttl = ttl
        self._max_names = max_names
        self._clock = clock
        self._cache: dict[tuple[str, int], tuple[float, list[str]]] = {}

    async def __call__(self, host: str, version: int) -> list[str]:
        key = (host.lower(), version)
        cached = self._cache.get(key)
        now = self._clock.now()
        if cached and cached[0] > now:
            return cached[1]
        family = socket.AF_INET6 if version == 6 else socket.AF_INET
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, None, family=family, type=socket.SOCK_STREAM), self._timeout)
            addresses = sorted({str(info[4][0]) for info in infos})
        except (TimeoutError, OSError, UnicodeError):
            addresses = []
        if len(self._cache) >= self._max_names:
            self._cache.clear()
        self._cache[key] = (now + (self._ttl if addresses else 1.0), addresses)
        return addresses


class DnsServer:
    """Serves the directory over DNS (UDP and TCP) from a snapshot refreshed from Redis."""

    def __init__(self, read_directory: ReadDirectory, domain: str, refresh: float,
                 max_entry_bytes: int = 4096, resolve: Resolve | None = None) -> None:
        self._read_directory = read_directory
        self._refresh = refresh
        self._max_entry_bytes = max_entry_bytes
        self.responder = Responder(domain, resolve or HostResolver())
        self.table = RoutingTable()
        self.queries = 0
        self._changed = asyncio.Event()
        self._skipped_seen: set[tuple[str, str]] = set()
        self._transports: list[asyncio.BaseTransport] = []
        self._tcp: asyncio.Server | None = None

    async def reload(self) -> RoutingTable:
        """Read the directory now and swap the snapshot in."""
        table = build_table(await self._read_directory(), self._max_entry_bytes)
        for skipped in table.skipped:
            key = (skipped.name, skipped.reason)
            if key not in self._skipped_seen:  # once per bad field, not every refresh
                log.warning("not routed: %s (%s)", skipped.name, skipped.reason)
        self._skipped_seen = {(s.name, s.reason) for s in table.skipped}
        self.table = table
        return table

    def on_event(self, data: bytes) -> None:
        """An event of the events channel: a (de)registration makes the next read come now."""
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            if json.loads(data).get("kind") in ("registered", "deregistered"):
                self._changed.set()

    async def keep_fresh(self) -> None:
        """Reload every `refresh` seconds, or sooner when an event says something changed.
        Redis being away keeps the last snapshot: routes stay as they were."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._refresh)
            self._changed.clear()
            try:
                await self.reload()
            except Exception as exc:  # Redis away or slow: the next round tries again
                log.debug("directory snapshot not refreshed: %s", exc)

    async def handle(self, data: bytes) -> DNSRecord | None:
        """The reply to one wire-format query, or None for something that is not a query."""
        self.queries += 1
        try:
            query = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError, struct.error, UnicodeError):
            return None
        if query.header.qr:  # a response, not a query: never answer (no reflection loops)
            return None
        return await self.responder.answer(query, self.table)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on UDP and TCP `host:port` (port 0: any free port, the same for both)."""
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._serve_tcp, host, port)
        bound = self._tcp.sockets[0].getsockname()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(host, bound[1]))
        self._transports.append(transport)
        return str(bound[0]), int(bound[1])

    async def stop(self) -> None:
        for transport in self._transports:
            transport.close()
        self._transports.clear()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
            self._tcp = None

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 10))[0]
                data = await asyncio.wait_for(reader.readexactly(size), 5)
                reply = await self.handle(data)
                if reply is None:
                    break
                packed = reply.pack()
                writer.write(struct.pack("!H", len(packed)) + packed)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        task = asyncio.ensure_future(self._reply(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        reply = await self._server.handle(data)
        if reply is None or self._transport is None or self._transport.is_closing():
            return
        query = DNSRecord.parse(data)
        self._transport.sendto(pack_for_udp(query, reply), addr)
