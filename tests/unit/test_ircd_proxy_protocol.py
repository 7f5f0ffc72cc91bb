"""The PROXY protocol listener: who a client behind the TCP balancer is, and who may say so."""

from __future__ import annotations

import asyncio
import struct

import pytest

from apps.ircd import proxyproto, transport
from apps.ircd.proxyproto import ProxyError, ProxyHeader, encode, parse
from tests.unit.ircd_support import LineClient, commands, running_gateway
from tests.unit.test_ircd_shared_port import free_port

# -- the header -------------------------------------------------------------------------------


@pytest.mark.parametrize(("client", "server"), [
    (("203.0.113.9", 40000), ("172.18.0.5", 6667)),
    (("2001:db8::7", 51000), ("2001:db8::1", 6697)),
])
def test_a_header_gives_the_clients_address_and_port(client, server):
    header = encode(client, server)
    parsed = parse(header + b"NICK alice\r\n")
    assert parsed == ProxyHeader(size=len(header), client=client[0], client_port=client[1])


def test_the_ssl_and_authority_tlvs_say_tls_and_the_name_asked_for():
    header = encode(("198.51.100.7", 1234), tls=True, server_name="irc.example.org")
    parsed = parse(header)
    assert parsed is not None and parsed.tls and parsed.server_name == "irc.example.org"
    assert parse(encode(("198.51.100.7", 1234))).tls is False  # type: ignore[union-attr]
    # An SSL TLV whose client bit is not set (HAProxy sends it for every connection): not TLS.
    body = bytes(12) + bytes([proxyproto.PP2_TYPE_SSL, 0, 5, 0, 0, 0, 0, 0])
    plain = proxyproto.SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body
    assert parse(plain) == ProxyHeader(size=len(plain), client="0.0.0.0", client_port=0)


def test_a_local_header_is_the_balancers_own_connection():
    assert parse(encode(None)) == ProxyHeader(size=16, local=True)


def test_more_bytes_are_waited_for_until_the_header_is_whole():
    header = encode(("203.0.113.9", 40000), tls=True)
    for cut in (0, 5, 12, 15, 16, len(header) - 1):
        assert parse(header[:cut]) is None, cut
    assert parse(header) is not None


@pytest.mark.parametrize(("data", "why"), [
    (b"NICK alice\r\n", "signature"),                          # a plain IRC client: at once
    (b"N", "signature"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "signature"),      # version 1 is not read
    (proxyproto.SIGNATURE + b"\x11\x11\x00\x00", "version 1"),
    (proxyproto.SIGNATURE + b"\x22\x11\x00\x00", "command"),
    (proxyproto.SIGNATURE + b"\x21\x11\xff\xff", "over"),       # longer than any balancer sends
    (proxyproto.SIGNATURE + b"\x21\x11\x00\x04" + bytes(4), "shorter than its addresses"),
    (proxyproto.SIGNATURE + b"\x21\x11\x00\x0e" + bytes(12) + b"\x20\x00", "truncated TLV"),
    (proxyproto.SIGNATURE + b"\x21\x11\x00\x10" + bytes(12) + b"\x02\x00\x05a", "truncated TLV"),
])
def test_what_is_not_a_v2_header_is_refused(data: bytes, why: str):
    with pytest.raises(ProxyError, match=why):
        parse(data)


def test_a_unix_or_unspecified_family_names_no_client():
    body = bytes(216)
    unix = proxyproto.SIGNATURE + bytes([0x21, 0x31]) + struct.pack("!H", len(body)) + body
    assert parse(unix) == ProxyHeader(size=len(unix))


# -- the listener -----------------------------------------------------------------------------


async def through_balancer(port: int, header: bytes) -> LineClient:
    """A connection to the PROXY listener that starts with `header`, as HAProxy's does."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(header)
    return LineClient(reader, writer)


async def read_to_the_end(client: LineClient) -> bytes:
    """Everything the gateway sends before it closes the connection (a reset ends it too)."""
    try:
        return await asyncio.wait_for(client.reader.read(), 3)
    except ConnectionError:
        return b""


async def whois_line(client: LineClient, nick: str) -> list[str]:
    await client.send(f"WHOIS {nick}")
    return await client.sync()


async def test_a_client_behind_the_balancer_is_known_by_its_own_address():
    async with running_gateway(irc_proxy_port=free_port()) as gateway:
        client = await through_balancer(gateway.ports["irc_proxy"], encode(("203.0.113.9", 40000)))
        assert "001" in commands(await client.register("behind"))
        whois = " ".join(await whois_line(client, "behind"))
        assert " 311 behind behind ~behind 203.0.113.9 " in whois
        assert " 671 " not in whois  # came in plain
        await client.close()


async def test_tls_taken_off_by_the_balancer_is_a_secure_connection():
    async with running_gateway(irc_proxy_port=free_port()) as gateway:
        header = encode(("2001:db8::7", 51000), tls=True, server_name="irc.example.org")
        client = await through_balancer(gateway.ports["irc_proxy"], header)
        assert "001" in commands(await client.register("secure"))
        whois = await whois_line(client, "secure")
        assert " 311 secure secure ~secure 2001:db8::7 " in " ".join(whois)
        assert "671" in commands(whois)  # RPL_WHOISSECURE
        await client.close()


async def test_the_header_may_come_in_pieces_or_with_the_first_lines():
    async with running_gateway(irc_proxy_port=free_port()) as gateway:
        port = gateway.ports["irc_proxy"]
        header = encode(("198.51.100.1", 1))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for piece in (header[:3], header[3:14], header[14:]):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.02)
        slow = LineClient(reader, writer)
        assert "001" in commands(await slow.register("slow"))
        eager = await through_balancer(port, encode(("198.51.100.2", 2)) + b"NICK eager\r\nUSER e 0 * :E\r\n")
        lines = await eager.sync()
        assert "001" in commands(lines) and ":eager!~e@198.51.100.2" not in " ".join(lines)
        whois = " ".join(await whois_line(eager, "eager"))
        assert " 311 eager eager ~e 198.51.100.2 " in whois
        await slow.close(), await eager.close()


async def test_connections_per_address_count_the_client_not_the_balancer():
    async with running_gateway(irc_proxy_port=free_port(), max_connections_per_ip=1) as gateway:
        port = gateway.ports["irc_proxy"]
        first = await through_balancer(port, encode(("203.0.113.9", 1)))
        assert "001" in commands(await first.register("first"))
        again = await through_balancer(port, encode(("203.0.113.9", 2)))
        assert any("too many connections" in line for line in await again.sync_closed())
        other = await through_balancer(port, encode(("203.0.113.10", 3)))  # same balancer
        assert "001" in commands(await other.register("other"))
        await first.close(), await other.close()


async def test_a_local_header_the_balancers_health_check_is_closed_quietly():
    async with running_gateway(irc_proxy_port=free_port()) as gateway:
        check = await through_balancer(gateway.ports["irc_proxy"], encode(None))
        assert await read_to_the_end(check) == b""
        assert not gateway.roster.connections


async def test_a_peer_that_is_not_a_trusted_proxy_cannot_name_its_address():
    # The attack: reach the PROXY listener directly and claim another address. Only the
    # balancer's network is trusted here, and loopback is not in it: closed, nothing read.
    async with running_gateway(irc_proxy_port=free_port(), trusted_proxies="10.0.0.0/8") as gateway:
        spoof = await through_balancer(gateway.ports["irc_proxy"],
                                       encode(("192.0.2.66", 6666)) + b"NICK spoof\r\nUSER s 0 * :S\r\n")
        assert await read_to_the_end(spoof) == b""
        assert not gateway.roster.connections


async def test_a_header_sent_to_the_plain_port_names_nobody():
    # The same attack on the ordinary IRC port: a PROXY header there is bytes of IRC, never
    # read as a header (its signature even holds a QUIT line, which ends the connection).
    async with running_gateway(irc_proxy_port=free_port()) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["irc"])
        spoof = LineClient(reader, writer)
        writer.write(encode(("192.0.2.66", 6666)))
        await spoof.send("NICK spoof", "USER s 0 * :S")
        lines = await spoof.sync_closed()
        assert "001" not in commands(lines) and "192.0.2.66" not in " ".join(lines)
        witness = LineClient(*await asyncio.open_connection("127.0.0.1", gateway.ports["irc"]))
        assert "001" in commands(await witness.register("witness"))
        assert "192.0.2.66" not in " ".join(await whois_line(witness, "spoof"))
        await witness.close()


async def test_plain_irc_on_the_proxy_port_is_closed_at_its_first_bytes():
    async with running_gateway(irc_proxy_port=free_port()) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["irc_proxy"])
        writer.write(b"NICK plain\r\nUSER p 0 * :P\r\n")
        assert await read_to_the_end(LineClient(reader, writer)) == b""
        assert not gateway.roster.connections


async def test_a_connection_that_sends_no_header_is_closed(monkeypatch):
    monkeypatch.setattr(transport, "PROXY_HEADER_TIMEOUT", 0.2)
    async with running_gateway(irc_proxy_port=free_port()) as gateway:
        silent = await through_balancer(gateway.ports["irc_proxy"], proxyproto.SIGNATURE[:6])
        assert await read_to_the_end(silent) == b""
        assert not gateway.roster.connections


async def test_no_proxy_listener_unless_asked():
    async with running_gateway() as gateway:
        assert "irc_proxy" not in gateway.ports
