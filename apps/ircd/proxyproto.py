"""The PROXY protocol, version 2: who a TCP balancer's client is.

A TCP balancer in front of the replicas (HAProxy in compose, `proxy/irc/`) opens its own
connection to a replica for each client, so the replica's peer is the balancer. With
`send-proxy-v2` the balancer starts that connection with a binary header saying the client's
address and port, whether the client came over TLS (the balancer took the TLS off) and the host
name it asked for (SNI); the client's own bytes follow. The specification is HAProxy's
`doc/proxy-protocol.txt`; this module parses what a replica needs of it (and builds headers for
the tests), nothing else: no version 1 (text), which HAProxy does not need here.

Only a listener meant for the balancer reads the header (IRC_PROXY_PORT), and only from a peer
in TRUSTED_PROXIES (apps/ircd/transport.py): on any other port, a client that writes a header
has written an unknown IRC command.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

#: The twelve bytes every version 2 header starts with.
SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: Signature, version and command, family and transport, length of the rest.
FIXED_SIZE = 16
#: The longest header read: addresses and the few TLVs a balancer sends (SSL, authority) fit
#: well within; a peer sending more is not the balancer we know, and is not buffered further.
MAX_SIZE = FIXED_SIZE + 2048

VERSION = 0x2
LOCAL, PROXY = 0x0, 0x1
AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX = 0x0, 0x1, 0x2, 0x3
STREAM = 0x1
#: Type-length-values this module reads: the host name the client asked for (SNI), and the
#: SSL one, whose first byte's PP2_CLIENT_SSL bit says the client came over TLS.
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_SSL = 0x20
PP2_CLIENT_SSL = 0x01
#: An address block's size per family: source, destination, source port, destination port.
_ADDRESS_SIZE = {AF_INET: 12, AF_INET6: 36, AF_UNIX: 216}


class ProxyError(ValueError):
    """The bytes received are not a PROXY protocol version 2 header this module accepts."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """What a header says. `size` is its length: the client's own stream starts after it."""

    size: int
    #: A LOCAL command: the balancer's own connection (a health check), no client behind it.
    local: bool = False
    #: The client's address and port; None when the header gives none (LOCAL, or a family
    #: other than IPv4 and IPv6): the peer is then the client.
    client: str | None = None
    client_port: int = 0
    #: The client spoke TLS to the balancer (the SSL TLV's PP2_CLIENT_SSL bit).
    tls: bool = False
    #: The host name the client asked the balancer for over TLS (SNI); empty without one.
    server_name: str = ""


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of `data`, or None if more bytes are needed to tell.

    Raises ProxyError as soon as the bytes cannot be a header: a plain IRC client (`NICK ...`)
    is refused at its first byte, never waited for."""
    start = data[:len(SIGNATURE)]
    if not SIGNATURE.startswith(start):
        raise ProxyError("no PROXY protocol v2 signature")
    if len(data) < FIXED_SIZE:
        return None
    version_command, family_transport, length = struct.unpack("!BBH", data[12:FIXED_SIZE])
    if version_command >> 4 != VERSION:
        raise ProxyError(f"PROXY protocol version {version_command >> 4}, not 2")
    command = version_command & 0x0F
    if command not in (LOCAL, PROXY):
        raise ProxyError(f"unknown PROXY command {command}")
    size = FIXED_SIZE + length
    if size > MAX_SIZE:
        raise ProxyError(f"a PROXY header of {size} bytes, over {MAX_SIZE}")
    if len(data) < size:
        return None
    body = data[FIXED_SIZE:size]
    if command == LOCAL:  # addresses, if any, are to be ignored (the specification says so)
        return ProxyHeader(size=size, local=True)
    family, transport = family_transport >> 4, family_transport & 0x0F
    address_size = _ADDRESS_SIZE.get(family, 0)
    if len(body) < address_size:
        raise ProxyError("PROXY header shorter than its addresses")
    client: str | None = None
    client_port = 0
    if family in (AF_INET, AF_INET6) and transport == STREAM:
        width = 4 if family == AF_INET else 16
        client = str(ipaddress.ip_address(body[:width]))
        client_port = struct.unpack("!H", body[2 * width:2 * width + 2])[0]
    tls, server_name = _tlvs(body[address_size:])
    return ProxyHeader(size=size, client=client, client_port=client_port, tls=tls,
                       server_name=server_name)


def _tlvs(data: bytes) -> tuple[bool, str]:
    """(the client came over TLS, the host name it asked for) from the header's TLVs."""
    tls, server_name = False, ""
    offset = 0
    while offset < len(data):
        if offset + 3 > len(data):
            raise ProxyError("a truncated TLV in the PROXY header")
        kind, length = data[offset], struct.unpack("!H", data[offset + 1:offset + 3])[0]
        value = data[offset + 3:offset + 3 + length]
        if len(value) != length:
            raise ProxyError("a truncated TLV in the PROXY header")
        if kind == PP2_TYPE_SSL and value:
            tls = bool(value[0] & PP2_CLIENT_SSL)
        elif kind == PP2_TYPE_AUTHORITY:
            server_name = value.decode("ascii", "replace")[:255]
        offset += 3 + length
    return tls, server_name


def encode(client: tuple[str, int] | None, server: tuple[str, int] = ("0.0.0.0", 0), *,
           tls: bool = False, server_name: str = "") -> bytes:
    """A version 2 header as a balancer sends it (for tests and tools): PROXY for `client`
    (an IPv4 or IPv6 address and a port, and `server` of the same family), or LOCAL when
    `client` is None; the SSL TLV when `tls`, the authority TLV when `server_name`."""
    if client is None:
        return SIGNATURE + bytes([VERSION << 4 | LOCAL, AF_UNSPEC << 4]) + b"\x00\x00"
    source, destination = ipaddress.ip_address(client[0]), ipaddress.ip_address(server[0])
    if source.version != destination.version:
        destination = ipaddress.ip_address("::" if source.version == 6 else "0.0.0.0")
    family = AF_INET if source.version == 4 else AF_INET6
    body = source.packed + destination.packed + struct.pack("!HH", client[1], server[1])
    if tls:
        # client flags, then a 32-bit verify result (0: the client's certificate, if any, checked)
        ssl = bytes([PP2_CLIENT_SSL]) + b"\x00\x00\x00\x00"
        body += bytes([PP2_TYPE_SSL]) + struct.pack("!H", len(ssl)) + ssl
    if server_name:
        name = server_name.encode("ascii")
        body += bytes([PP2_TYPE_AUTHORITY]) + struct.pack("!H", len(name)) + name
    return SIGNATURE + bytes([VERSION << 4 | PROXY, family << 4 | STREAM]) \
        + struct.pack("!H", len(body)) + body
