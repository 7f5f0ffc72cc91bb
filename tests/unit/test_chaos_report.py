"""The chaos run's report: what counts as a failure, and whether it says why."""

from __future__ import annotations

from scripts.devkit.chaos import Fault, Report, Sample


def report(samples: list[Sample], faults: list[Fault]) -> Report:
    return Report(began=0.0, ended=20.0, samples=samples, faults=faults, written=0, lost=[],
                  route_names=["GET /sum", "GET /rally"], need_redis={"GET /rally"})


def test_a_failure_during_a_redis_outage_counts_there_and_one_outside_counts_as_failed():
    samples = [
        Sample("GET /rally", 3.0, 3.2, 503, False, True, "503 '{\"error\": \"Redis unavailable\"}'"),
        Sample("GET /sum", 9.0, 14.0, 502, False, False, "502 ''"),
        Sample("GET /sum", 10.0, 10.1, 200, True, False),
    ]
    faults = [Fault("kill redis", "redis", began=2.0, over=4.0), Fault("kill", "calc-2", began=8.0, over=9.5)]
    result = report(samples, faults)
    assert (result.failed, result.failed_in_outage, result.bad_outage_answers) == (1, 1, 0)
    assert faults[1].failures == 1 and faults[1].recovery == 4.5
    assert not result.met(max_recovery=5.0)  # a failure outside the outage misses the target


def test_the_report_lists_why_each_failure_outside_an_outage_failed():
    samples = [Sample("GET /sum", 9.0, 14.0, 0, False, False, "ReadTimeout: timed out")]
    text = report(samples, [Fault("freeze", "calc-1", began=8.0, over=11.0)]).render(window=2.0)
    assert "failures outside a Redis outage" in text
    assert "GET /sum" in text and "ReadTimeout: timed out" in text


def test_a_clean_run_lists_no_failures():
    text = report([Sample("GET /sum", 1.0, 1.1, 200, True, False)], []).render(window=2.0)
    assert "failures outside a Redis outage" not in text


def test_a_response_cut_mid_body_by_the_kill_of_its_replica_is_counted_apart():
    cut = "RemoteProtocolError: peer closed connection without sending complete message body"
    samples = [
        Sample("GET /sum", 7.9, 8.05, 200, False, False, cut, cut=True),  # in flight at the kill
        Sample("GET /sum", 8.3, 8.4, 200, False, False, cut, cut=True),  # after it: the stack's fault
        Sample("GET /sum", 7.9, 8.1, 502, False, False, "502 ''"),  # not cut: a proxy could retry it
    ]
    result = report(samples, [Fault("kill", "calc-2", began=8.0, over=9.0, struck=8.02)])
    assert (result.failed, result.cut) == (2, 1)
    assert "cut_by_crash=1" in result.result_line()
    assert "cut RemoteProtocolError" in result.render(window=2.0)


def test_a_cut_response_during_a_freeze_is_a_failure():
    samples = [Sample("GET /sum", 7.9, 9.0, 200, False, False, "RemoteProtocolError", cut=True)]
    result = report(samples, [Fault("freeze", "calc-2", began=8.0, over=10.0)])
    assert (result.failed, result.cut) == (1, 0) and not result.met(max_recovery=5.0)


async def first_sample(port: int, timeout: float = 5) -> Sample:
    """The first request of a one-loop Load against 127.0.0.1:`port`."""
    import asyncio

    from scripts.devkit.chaos import Load, Route

    route = Route("GET /sum", "GET", False, lambda n: ("/sum", None), lambda n, r: r.status_code == 200)
    load = Load(f"http://127.0.0.1:{port}", [route], workers=1, pause=0.01, timeout=timeout)
    running = asyncio.create_task(load.run())
    while not load.samples:
        await asyncio.sleep(0.01)
    load.stop()
    await running
    return load.samples[0]


HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 61\r\n\r\n"


async def test_the_load_tells_a_body_cut_after_the_headers_from_a_hang_and_from_no_answer():
    import asyncio

    async def headers_then(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEADERS)
        await writer.drain()
        if hang.is_set():
            await asyncio.sleep(1)  # the body never comes: the client times out
        writer.close()

    hang = asyncio.Event()
    server = await asyncio.start_server(headers_then, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        cut = await first_sample(port)
        hang.set()
        hung = await first_sample(port, timeout=0.2)
    assert (cut.ok, cut.status, cut.cut) == (False, 200, True) and "RemoteProtocolError" in cut.detail
    assert (hung.ok, hung.status, hung.cut) == (False, 200, False) and "ReadTimeout" in hung.detail
    refused = await first_sample(port)  # the server is gone
    assert (refused.status, refused.cut) == (0, False)
