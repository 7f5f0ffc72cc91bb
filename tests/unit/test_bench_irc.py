"""The TLS parts of `scripts/bench-irc --tls` (scripts/devkit/ircstack.py): the run's own
certificate, and a load generator's client registering with it over TLS."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from scripts.devkit.ircstack import client_tls_context, self_signed
from tests.unit.ircd_support import running_gateway


async def test_a_client_registers_over_tls_with_the_runs_own_certificate(tmp_path: Path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = self_signed(tmp_path)
    async with running_gateway(tls_cert=str(cert), tls_key=str(key), irc_tls_port=0) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["ircs"],
                                                       ssl=client_tls_context())
        writer.write(b"NICK tlsbench\r\nUSER tlsbench 0 * :bench\r\n")
        await writer.drain()
        while b" 001 " not in (line := await asyncio.wait_for(reader.readline(), 5)):
            assert line, "closed before the welcome"
        assert writer.get_extra_info("ssl_object") is not None
        assert [c.transport.secure for c in gateway.roster.connections] == [True]
        writer.close()
