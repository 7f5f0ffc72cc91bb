"""The directory's DNS interface: what it answers, and that no entry can break it for others."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest
from dnslib import EDNS0, RCODE, DNSRecord

from apps.directory.dns import DnsServer, HostResolver, Resolve, pack_for_udp
from apps.directory.routing import build_table, parse_url
from apps.kit.directory import Entry
from scripts.devkit.clock import ManualClock


def entry(service: str, instance: str, url: str, started_at: float = 1.0,
          **meta: object) -> tuple[str, str, str]:
    e = Entry(service=service, instance=instance, url=url, channel="", started_at=started_at,
              meta=dict(meta))
    return service, instance, e.to_json()


#: Service -> its hash, whose fields and values are bytes or str as Redis gives them.
Hashes = dict[str, dict[bytes | str, bytes | str]]


def directory(*entries: tuple[str, str, str]) -> Hashes:
    """The directory as `Directory.hashes` reads it: service -> its hash."""
    hashes: Hashes = {}
    for service, instance, raw in entries:
        hashes.setdefault(service, {})[instance] = raw
    return hashes


async def no_lookup(host: str, version: int) -> list[str]:
    raise AssertionError(f"unexpected lookup of {host}")


def server(hashes: Hashes, resolve: Resolve = no_lookup) -> DnsServer:
    async def read() -> Hashes:
        return hashes

    return DnsServer(read, "canaduck", refresh=0.05, resolve=resolve)


async def ask(dns: DnsServer, name: str, qtype: str = "SRV") -> DNSRecord:
    await dns.reload()
    reply = await dns.handle(DNSRecord.question(name, qtype).pack())
    assert reply is not None
    return DNSRecord.parse(reply.pack())


CALC = directory(
    entry("calc", "calc-2", "http://127.0.0.1:5021", started_at=2.0),
    entry("calc", "calc-1", "http://127.0.0.1:5020", started_at=1.0),
    entry("mult", "mult-a", "http://10.0.0.7:5000"),
)


async def test_srv_lists_every_instance_oldest_first_with_an_addr_target():
    reply = await ask(server(CALC), "calc.service.canaduck")
    assert reply.header.rcode == RCODE.NOERROR
    assert [(r.rdata.port, str(r.rdata.target)) for r in reply.rr] == [
        (5020, "7f000001.addr.canaduck."), (5021, "7f000001.addr.canaduck.")]
    assert {str(r.rdata) for r in reply.ar} == {"127.0.0.1"}  # targets' addresses come along


async def test_the_rfc_2782_name_and_names_are_case_insensitive():
    reply = await ask(server(CALC), "_http._tcp.CALC.Service.canaduck")
    assert [r.rdata.port for r in reply.rr] == [5020, 5021]


async def test_a_records_of_a_service_and_of_a_target():
    dns = server(CALC)
    assert [str(r.rdata) for r in (await ask(dns, "mult.service.canaduck", "A")).rr] == ["10.0.0.7"]
    assert [str(r.rdata) for r in (await ask(dns, "0a000007.addr.canaduck", "A")).rr] == ["10.0.0.7"]
    assert (await ask(dns, "0a000007.addr.canaduck", "AAAA")).rr == []  # NOERROR, no data


async def test_ipv6_instances_get_a_32_digit_target_and_aaaa():
    dns = server(directory(entry("calc", "v6", "http://[fd00::5]:5000")))
    srv = await ask(dns, "calc.service.canaduck")
    target = str(srv.rr[0].rdata.target)
    assert target == "fd000000000000000000000000000005.addr.canaduck."
    assert [str(r.rdata) for r in (await ask(dns, target, "AAAA")).rr] == ["fd00::5"]


async def test_unknown_names_are_nxdomain_and_other_zones_refused_except_addresses():
    dns = server(CALC)
    assert (await ask(dns, "nobody.service.canaduck")).header.rcode == RCODE.NXDOMAIN
    assert (await ask(dns, "calc.canaduck")).header.rcode == RCODE.NXDOMAIN
    assert (await ask(dns, "zz.addr.canaduck", "A")).header.rcode == RCODE.NXDOMAIN
    assert (await ask(dns, "example.org", "MX")).header.rcode == RCODE.REFUSED


async def test_an_extra_named_port_is_its_own_srv_name():
    dns = server(directory(entry("ircd", "ircd-1", "http://127.0.0.1:5040", ports={"irc": 6667}),
                           entry("ircd", "ircd-2", "http://127.0.0.1:5041", ports={"irc": 6668})))
    reply = await ask(dns, "_irc._tcp.ircd.service.canaduck")
    assert [r.rdata.port for r in reply.rr] == [6667, 6668]
    assert (await ask(dns, "_smtp._tcp.ircd.service.canaduck")).header.rcode == RCODE.NXDOMAIN


async def test_a_host_name_target_is_resolved_by_this_host_when_asked_for():
    asked = []

    async def resolve(host: str, version: int) -> list[str]:
        asked.append((host, version))
        return ["172.18.0.9"]

    dns = server(directory(entry("calc", "c", "http://calc-1:5000")), resolve)
    srv = await ask(dns, "calc.service.canaduck")
    assert str(srv.rr[0].rdata.target) == "calc-1."
    assert asked == []  # answering SRV never waits on a lookup
    assert [str(r.rdata) for r in (await ask(dns, "calc-1", "A")).rr] == ["172.18.0.9"]
    assert asked == [("calc-1", 4)]


#: What the owner of a hash (a buggy or hostile calc) can write in it, and by hand.
HOSTILE: Hashes = {
    "calc": {
        "huge": json.dumps({"service": "calc", "instance": "huge", "url": "http://127.0.0.1:1",
                            "meta": {"x": "y" * 100_000}}),
        "not-json": "{{{",
        "list": "[1, 2]",
        "no-url": json.dumps({"service": "calc", "instance": "no-url"}),
        "bad-port": json.dumps({"service": "calc", "instance": "bad-port", "url": "http://127.0.0.1:99999"}),
        "port-zero": json.dumps({"service": "calc", "instance": "port-zero", "url": "http://127.0.0.1:0"}),
        "https": json.dumps({"service": "calc", "instance": "https", "url": "https://127.0.0.1:5"}),
        "no-host": json.dumps({"service": "calc", "instance": "no-host", "url": "http://:5000"}),
        "bad-host": json.dumps({"service": "calc", "instance": "bad-host", "url": "http://a_b..c:5000"}),
        "long-url": json.dumps({"service": "calc", "instance": "long-url",
                                "url": "http://127.0.0.1:5/" + "a" * 600}),
        "liar": json.dumps({"service": "mult", "instance": "liar", "url": "http://127.0.0.1:6"}),
        "someone": json.dumps({"service": "calc", "instance": "someone-else", "url": "http://127.0.0.1:8"}),
        "bad-ports": json.dumps({"service": "calc", "instance": "bad-ports", "url": "http://127.0.0.1:5022",
                                 "meta": {"ports": {"irc": "6667", "BAD": 1, "big": 70000, "ok": True}}}),
        b"\xff": b"\xff\xfe",
    },
    "Bad Name": {"x": json.dumps({"service": "Bad Name", "instance": "x", "url": "http://127.0.0.1:7"})},
}


async def test_hostile_entries_are_skipped_one_by_one_and_the_rest_still_routes():
    hashes = {**CALC, **HOSTILE, "calc": {**CALC["calc"], **HOSTILE["calc"]}}
    table = build_table(hashes)
    assert [t.instance for t in table.targets("calc")] == ["bad-ports", "calc-1", "calc-2"]
    assert table.targets("calc")[0].ports == {}
    assert [t.instance for t in table.targets("mult")] == ["mult-a"]  # the liar is not in mult
    assert len(table.skipped) == len(HOSTILE["calc"]) - 1 + len(HOSTILE["Bad Name"])  # all but bad-ports
    reasons = {s.name: s.reason for s in table.skipped}
    assert reasons["calc/liar"] == "entry is not this field's (mult/liar)"
    assert reasons["calc/someone"] == "entry is not this field's (calc/someone-else)"
    assert reasons["Bad Name/x"] == "bad service or instance name"
    reply = await ask(server(hashes), "calc.service.canaduck")
    assert sorted(r.rdata.port for r in reply.rr) == [5020, 5021, 5022]


async def test_an_entry_for_a_service_found_in_another_services_hash_is_not_routed():
    # Only its owner writes calc's hash (redis/users.acl); what it says about users is ignored.
    hashes = directory(entry("users", "users-1", "http://127.0.0.1:5050"))
    hashes["calc"] = {"users-evil": json.dumps({"service": "users", "instance": "users-evil",
                                                "url": "http://203.0.113.9:80"})}
    reply = await ask(server(hashes), "users.service.canaduck")
    assert [r.rdata.port for r in reply.rr] == [5050]


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:5020", ("127.0.0.1", 5020)),
    ("http://localhost:5020/", ("127.0.0.1", 5020)),
    ("http://calc-1:5000", ("calc-1", 5000)),
    ("http://10.0.0.1", ("10.0.0.1", 80)),
    ("http://[::1]:5000", ("::1", 5000)),
    ("ftp://127.0.0.1:21", "url is not http://"),
    ("http://127.0.0.1:port", "bad url: Port could not be cast to integer value as 'port'"),
    ("", "url is not http://"),
])
def test_parse_url(url, expected):
    assert parse_url(url) == expected


async def test_garbage_and_responses_get_no_answer():
    dns = server(CALC)
    assert await dns.handle(b"\x00\x01garbage") is None
    response = DNSRecord.question("calc.service.canaduck", "SRV").reply()
    assert await dns.handle(response.pack()) is None  # never answer an answer


async def test_too_many_instances_for_udp_drop_extras_then_truncate():
    dns = server(directory(*(entry("calc", f"c{i}", f"http://10.0.0.{i + 1}:5000") for i in range(60))))
    question = DNSRecord.question("calc.service.canaduck", "SRV")
    await dns.reload()
    reply = await dns.handle(question.pack())
    assert reply is not None and len(reply.rr) == 60
    small = DNSRecord.parse(pack_for_udp(question, reply))
    assert small.header.tc == 1 and small.rr == []  # the client asks again over TCP
    question.add_ar(EDNS0(udp_len=4096))
    reply = await dns.handle(question.pack())
    assert reply is not None
    big = DNSRecord.parse(pack_for_udp(question, reply))
    assert big.header.tc == 0 and len(big.rr) == 60


async def test_udp_and_tcp_over_real_sockets() -> None:
    dns = server(CALC)
    await dns.reload()
    host, port = await dns.start("127.0.0.1", 0)
    try:
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[bytes] = loop.create_future()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                answered.set_result(data)

        transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=(host, port))
        transport.sendto(DNSRecord.question("calc.service.canaduck", "SRV").pack())
        udp = DNSRecord.parse(await asyncio.wait_for(answered, 2))
        transport.close()
        assert len(udp.rr) == 2

        reader, writer = await asyncio.open_connection(host, port)
        query = DNSRecord.question("mult.service.canaduck", "A").pack()
        writer.write(struct.pack("!H", len(query)) + query)
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        tcp = DNSRecord.parse(await reader.readexactly(size))
        writer.close()
        assert [str(r.rdata) for r in tcp.rr] == ["10.0.0.7"]
    finally:
        await dns.stop()


async def test_the_snapshot_follows_events_and_survives_redis_errors() -> None:
    hashes: Hashes = {}
    failing = False

    async def read() -> Hashes:
        if failing:
            raise ConnectionError("redis away")
        return dict(hashes)

    dns = DnsServer(read, "canaduck", refresh=60)  # only events trigger a read here
    task = asyncio.create_task(dns.keep_fresh())
    try:
        hashes.update(CALC)
        dns.on_event(b'{"kind": "registered", "service": "calc"}')
        dns.on_event(b"not json")
        await _until(lambda: len(dns.table.targets("calc")) == 2)
        failing = True
        dns.on_event(b'{"kind": "deregistered", "service": "calc"}')
        await asyncio.sleep(0.05)
        assert len(dns.table.targets("calc")) == 2  # Redis away: the last snapshot stays
    finally:
        task.cancel()


async def test_host_resolver_caches_and_bounds_lookups():
    resolver = HostResolver(timeout=0.5, ttl=5, clock=ManualClock())
    assert await resolver("localhost", 4) == ["127.0.0.1"]
    assert await resolver("no-such-host.invalid", 4) == []


async def _until(predicate, timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")

