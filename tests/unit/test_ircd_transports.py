"""The gateway's other doors: the IRCv3 WebSocket route, IRC over TLS, and /metrics."""

from __future__ import annotations

import asyncio
import gc
import logging
import ssl
from pathlib import Path

import pytest

from apps.ircd.app import create_app
from apps.ircd.settings import IrcdSettings
from apps.ircd.websocket import choose_subprotocol
from tests.unit.ircd_support import LineClient, commands, running_gateway


def settings(**overrides: object) -> IrcdSettings:
    return IrcdSettings(service_name="ircd", instance_id="ws-1", irc_host="127.0.0.1", irc_port=0,
                        server_name="irc.test", **overrides)  # type: ignore[arg-type]


async def test_websocket_speaks_irc_one_line_per_message(redis, started):
    app = create_app(settings(), redis=redis)
    async with started(app) as client:
        async with client.websocket("/irc", subprotocols=["text.ircv3.net"]) as ws:
            for line in ("NICK web", "USER web 0 * :Web", "JOIN #w", "PING done"):
                await ws.send(line)
            received = []
            while not received or "PONG" not in received[-1]:
                received.append(await asyncio.wait_for(ws.receive(), 5))
            assert commands(received)[0] == "001"
            assert ":web!~web@" in " ".join(received) and "JOIN #w" in " ".join(received)
            assert all(not line.endswith("\r\n") for line in received)
        via_caddy = {"client": ("10.0.0.2", 50000), "subprotocols": ["text.ircv3.net"]}
        async with client.websocket("/irc", scope_base=via_caddy,
                                    headers={"X-Forwarded-For": "203.0.113.9"}) as ws:
            for line in ("NICK proxied", "USER p 0 * :P", "WHOIS proxied", "PING done"):
                await ws.send(line)
            received = []
            while not received or "PONG" not in received[-1]:
                received.append(await asyncio.wait_for(ws.receive(), 5))
            assert any(" 311 proxied proxied ~p 203.0.113.9 " in line for line in received)
        metrics = await (await client.get("/metrics")).get_data(as_text=True)
        assert "canaduck_irc_connections" in metrics and "canaduck_irc_messages_per_second" in metrics
        assert 'canaduck_irc_total{what="commands"}' in metrics


async def test_a_websocket_client_cannot_choose_its_address_with_x_forwarded_for(redis, started):
    # Only a trusted proxy (Caddy, on the private network) says who its client is; a client
    # reaching the gateway directly that forges the header is known by its own address, the
    # one that the per-address limits and WHOIS use.
    app = create_app(settings(), redis=redis)
    async with started(app) as client:
        direct = {"client": ("198.51.100.7", 50000), "subprotocols": ["text.ircv3.net"]}
        async with client.websocket("/irc", scope_base=direct,
                                    headers={"X-Forwarded-For": "203.0.113.9",
                                             "X-Forwarded-Proto": "https"}) as ws:
            for line in ("NICK forger", "USER f 0 * :F", "WHOIS forger", "PING done"):
                await ws.send(line)
            received = []
            while not received or "PONG" not in received[-1]:
                received.append(await asyncio.wait_for(ws.receive(), 5))
            whois = " ".join(received)
            assert " 311 forger forger ~f 198.51.100.7 " in whois and "203.0.113.9" not in whois
            assert " 671 " not in whois  # not taken for a secure connection on its word either


@pytest.mark.parametrize(("offered", "chosen"), [
    (["binary.ircv3.net"], "binary.ircv3.net"),
    (["text.ircv3.net", "binary.ircv3.net"], "text.ircv3.net"),
    (["binary.ircv3.net", "text.ircv3.net"], "binary.ircv3.net"),
    (["chat.example", "text.ircv3.net"], "text.ircv3.net"),
    (["chat.example"], None),
    ([], None),
])
def test_the_clients_first_known_subprotocol_is_chosen(offered, chosen):
    assert choose_subprotocol(offered) == chosen


async def test_binary_subprotocol_frames_are_bytes_and_the_root_path_serves_irc_too(redis, started):
    app = create_app(settings(), redis=redis)
    async with started(app) as client:
        # Quart's test client drops `subprotocols=`: the offer goes in the ASGI scope itself.
        offer = {"subprotocols": ["binary.ircv3.net", "text.ircv3.net"]}
        async with client.websocket("/", scope_base=offer) as ws:
            for line in (b"NICK bin", b"USER bin 0 * :Bin", b"PING done"):
                await ws.send(line)
            received = []
            while not received or b"PONG" not in received[-1]:
                received.append(await asyncio.wait_for(ws.receive(), 5))
            assert all(isinstance(frame, bytes) for frame in received)
            assert commands([frame.decode() for frame in received])[0] == "001"
            await ws.send("PRIVMSG bin :caf\xe9 \u00e9t\u00e9")  # a text frame is read too
            await ws.send("PING again")
            echoed = []
            while not echoed or b"PONG" not in echoed[-1]:
                echoed.append(await asyncio.wait_for(ws.receive(), 5))
            assert any("PRIVMSG bin :caf\u00e9 \u00e9t\u00e9".encode() in frame for frame in echoed)


async def test_irc_over_tls_when_a_certificate_is_configured(certificate: tuple[Path, Path]):
    cert, key = certificate
    async with running_gateway(tls_cert=str(cert), tls_key=str(key), irc_tls_port=0) as gateway:
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["ircs"], ssl=context)
        client = LineClient(reader, writer)
        assert "001" in commands(await client.register("secure"))
        await client.send("WHOIS secure")
        assert "671" in commands(await client.sync())  # RPL_WHOISSECURE
        await client.close()


async def test_no_tls_listener_without_a_certificate():
    async with running_gateway() as gateway:
        assert set(gateway.ports) == {"irc"}


async def test_a_websocket_that_goes_away_leaves_no_task_pending(redis, started, caplog):
    # The read of the next message used to be left pending when the peer went away, and
    # asyncio logged "Task was destroyed but it is pending" once it was collected.
    app = create_app(settings(), redis=redis)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        async with started(app) as client:
            for i in range(3):
                async with client.websocket("/irc", subprotocols=["text.ircv3.net"]) as ws:
                    for line in (f"NICK gone{i}", "USER g 0 * :G", "PING done"):
                        await ws.send(line)
                    while "PONG" not in await asyncio.wait_for(ws.receive(), 5):
                        pass
            await asyncio.sleep(0.2)
            gc.collect()
            await asyncio.sleep(0.1)
            gc.collect()
    destroyed = [r.getMessage() for r in caplog.records if "destroyed but it is pending" in r.getMessage()]
    assert destroyed == []
