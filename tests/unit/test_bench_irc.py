"""The rooms and hall scenarios' parts that a test can run: the plans, and a load generator's
client registering over TLS (`--tls`) with the run's own certificate."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from scripts.bench_irc import BenchClient, Tally, client_tls_context, plans, self_signed
from tests.unit.ircd_support import running_gateway


def test_the_plans_tell_every_worker_whether_to_use_tls():
    for tls in (False, True):
        out, total = plans(40, 20, [7000, 7001], 10, 1, 2, "b", tls=tls)
        assert total == 10 and [p.tls for p in out] == [tls, tls]
        assert sorted(i for p in out for i in p.nicks) == list(range(40))


async def test_a_bench_client_registers_over_tls_with_the_runs_own_certificate(tmp_path: Path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = self_signed(tmp_path)
    async with running_gateway(tls_cert=str(cert), tls_key=str(key), irc_tls_port=0) as gateway:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(lambda: BenchClient("tlsbench", Tally()), "127.0.0.1",
                                                 gateway.ports["ircs"], ssl=client_tls_context())
        client.write(b"NICK tlsbench\r\nUSER tlsbench 0 * :bench\r\n")
        await client.wait(client.registered, "registering")
        assert client.transport is not None and client.transport.get_extra_info("ssl_object") is not None
        assert [c.transport.secure for c in gateway.roster.connections] == [True]
        client.transport.close()
