"""Behind scripts/bench-search: searching one channel of 100,000 messages, by the index and by
scanning the stream, in the same run.

A fresh embedded server (redis/redis.conf and the ACL users, `maxmemory` raised for the
filling); `--messages` messages of generated chat text appended to `#bench` through the real
path (`ChatLog.append`'s script, as the ircd's Redis user, which also writes the index), the
stream kept whole (`--messages` is the history bound). The text: 3 to 18 words drawn from a
Zipf-like law over a vocabulary of common words and generated ones, so that a few words are
in most messages and most words in few, as in a chat; a few planted words give the query kinds:

| kind | query | in how many messages |
|---|---|---|
| rare | `zanzibar` | `--rare` (20), spread over the history |
| common | `the` | about half |
| two words | `duck pond` | `pond` in 2 %, `duck` in 10 %, together in about 0.2 % |
| missing | `xylophone` | none |
| worst | `alpha omega` | each in 10 %, never together: the index walks its scan budget |

Then the users and messages services as processes (as `scripts/up` runs them), an account in
the channel, and for each kind `--requests` requests one after the other over one keep-alive
connection: the public route (session checked with the users service, the history rule, the
index), the internal route by the index (no session), and the internal route by scanning the
stream (`method=scan`: XREVRANGE in batches, each text tokenized in Python, the baseline).
Also the memory of the stream and of the index (`MEMORY USAGE`), per message.

Prints a table and last

    RESULT search_p99_ms=<x> scan_p99_ms=<x> ratio=<x> messages=<n> ...     (one line)

(`search_p99_ms`: the worst p99 of the public route over the kinds; `scan_p99_ms`: the worst of
the scan; `ratio`: scan over search.) Nothing else should be measuring on the machine
meanwhile: the figures are latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from apps.chat.chatlog import ChatLog
from apps.chat.conversations import ChatMessage
from apps.chat.keys import ChatKeys
from scripts.devkit.redis_server import RedisServer
from scripts.devkit.services import ServiceLauncher

CHANNEL = "#bench"
KEYS = ChatKeys()
FAST_HASH = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024"}
_COMMON_WORDS = ("the a to and i you it is of that in we on for this be so just no what not with have "
          "but are can do at was if me my all like ok yes it's lol now know there think get good "
          "one about out up how go they time see will more when from make then here well right "
          "really would want people too some need because going work back why who much any "
          "still thing day way look new also very only could first over after year way even "
          "again never long little great problem code build test server client message "
          "channel redis stream python deploy bug fix release branch merge review")
COMMON = tuple(_COMMON_WORDS.split())
KINDS = (("rare", "zanzibar"), ("common", "the"), ("two words", "duck pond"),
         ("missing", "xylophone"), ("worst", "alpha omega"))


def vocabulary(rng: random.Random, size: int) -> list[str]:
    """Common words first, then generated pronounceable ones (rank order for the Zipf law)."""
    consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
    words = list(dict.fromkeys(COMMON))
    made = set(words) | {"zanzibar", "duck", "pond", "xylophone", "alpha", "omega"}
    while len(words) < size:
        word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
        if word not in made:
            made.add(word)
            words.append(word)
    return words


def texts(count: int, rare: int, seed: int = 7) -> list[str]:
    """`count` chat lines with the planted words of KINDS."""
    rng = random.Random(seed)
    words = vocabulary(rng, 20_000)
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))
    rare_at = set(rng.sample(range(count), rare))
    lines = []
    for i in range(count):
        line = rng.choices(words, cum_weights=cumulative, k=rng.randint(3, 18))
        roll = rng.random()
        if roll < 0.10:
            line.append("alpha")
        elif roll < 0.20:
            line.append("omega")
        if rng.random() < 0.10:
            line.insert(rng.randrange(len(line) + 1), "duck")
        if rng.random() < 0.02:
            line.insert(rng.randrange(len(line) + 1), "pond")
        if i in rare_at:
            line.insert(rng.randrange(len(line) + 1), "Zanzibar")
        if rng.random() < 0.5 and "the" not in line:
            line.insert(0, "the")
        text = " ".join(line)
        lines.append(text[0].upper() + text[1:] + rng.choice((".", "", "!", "?", " :)")))
    return lines


async def fill(server: RedisServer, channel: str, lines: list[str], writers: int, maxlen: int) -> float:
    """Append every line to `channel` as the ircd does; the appends per second."""
    client = server.async_client("ircd")
    log = ChatLog(client, KEYS, maxlen=maxlen)
    queue = iter(enumerate(lines))
    began = time.perf_counter()

    async def writer() -> None:
        for i, text in queue:
            await log.append_channel(channel, ChatMessage("PRIVMSG", f"user{i % 50}!u@host", channel, text,
                                                          account=f"user{i % 50}"))

    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed = time.perf_counter() - began
    await client.aclose()
    return len(lines) / elapsed


def server_cost(admin: Any) -> dict[str, float]:
    """Microseconds per call in the server, by command, since the last reset (the script's
    own commands are counted too), then reset."""
    stats = admin.info("commandstats")
    admin.config_resetstat()
    return {name.removeprefix("cmdstat_"): float(value["usec_per_call"]) for name, value in stats.items()}


async def join_searcher(server: RedisServer) -> None:
    """The account `searcher` in CHANNEL through one connection, as the ircd writes it."""
    client = server.async_client("ircd")
    await client.hset(KEYS.channel(CHANNEL), mapping={"name": CHANNEL, "modes": "nt"})
    await client.hset(KEYS.channel_members(CHANNEL), "b3nch", "")
    await client.sadd(KEYS.account_connections("searcher"), "b3nch")
    await client.aclose()


@dataclass
class Row:
    kind: str
    query: str
    route: str
    ms: list[float] = field(default_factory=list)
    found: int = 0
    scanned: int = 0
    errors: int = 0

    def percentile(self, p: float) -> float:
        if not self.ms:
            return float("nan")
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(client: httpx.Client, row: Row, path: str, requests: int, headers: dict[str, str]) -> Row:
    client.get(path, headers=headers)  # warm: the connection, the script cache
    for _ in range(requests):
        began = time.perf_counter()
        response = client.get(path, headers=headers)
        row.ms.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            row.errors += 1
            continue
        body = response.json()
        row.found, row.scanned = len(body["messages"]), body["scanned"]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench-search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rare", type=int, default=20, help="messages holding the rare word")
    parser.add_argument("--requests", type=int, default=200, help="per kind, by the index")
    parser.add_argument("--scan-requests", type=int, default=20, help="per kind, by scanning")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--writers", type=int, default=8, help="concurrent appenders while filling")
    args = parser.parse_args(argv)

    print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores shared: figures are of a busy machine "
          "when it is high)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below
    server = RedisServer(extra_config=["maxmemory 2gb"]).start()
    launcher = ServiceLauncher(server)
    try:
        lines = texts(args.messages, args.rare)
        admin = server.admin()
        admin.config_resetstat()
        rate = asyncio.run(fill(server, CHANNEL, lines, args.writers, maxlen=args.messages))
        growing = server_cost(admin)
        # The same text on a channel at its bound: every append also trims one entry and its
        # words from the index.
        asyncio.run(fill(server, "#bounded", lines[:2_000], args.writers, maxlen=1_000))
        server_cost(admin)
        asyncio.run(fill(server, "#bounded", lines[2_000:6_000], args.writers, maxlen=1_000))
        trimming = server_cost(admin)
        asyncio.run(join_searcher(server))
        stream_bytes = int(admin.memory_usage(KEYS.conversation_log(CHANNEL), samples=0) or 0)
        index_bytes = int(admin.memory_usage(KEYS.search_index(CHANNEL), samples=0) or 0)
        members = int(admin.zcard(KEYS.search_index(CHANNEL)))
        stored = int(admin.xlen(KEYS.conversation_log(CHANNEL)))
        print(f"filled {stored} messages at {rate:,.0f} appends/s; index: {members:,} members "
              f"({members / stored:.1f} per message)", flush=True)

        users = launcher.launch("apps.users", "users", env=FAST_HASH)
        messages = launcher.start("apps.messages", "messages", USERS_URL=users.url,
                                  CHAT_HISTORY_MAX=str(args.messages))
        body = {"account": "searcher", "password": "long enough"}
        httpx.post(f"{users.url}/api/users/register", json=body)
        token = httpx.post(f"{users.url}/api/users/login", json=body).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}

        rows: list[Row] = []
        with httpx.Client(base_url=messages.url, timeout=60) as client:
            for kind, query in KINDS:
                q = query.replace(" ", "+")
                public = f"/api/messages/search/%23bench?q={q}&limit={args.limit}"
                internal = f"/internal/history/search/%23bench?q={q}&limit={args.limit}"
                rows.append(measure(client, Row(kind, query, "public, index"), public, args.requests, auth))
                rows.append(measure(client, Row(kind, query, "internal, index"), internal, args.requests, {}))
                rows.append(measure(client, Row(kind, query, "internal, scan"), f"{internal}&method=scan",
                                    args.scan_requests, {}))
                print(f"  {kind} done, load average {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        launcher.stop_all()
        server.stop()

    print()
    print(f"{'kind':<10} {'query':<12} {'route':<16} {'n':>4} {'found':>5} {'scanned':>8} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6}")
    for r in rows:
        print(f"{r.kind:<10} {r.query:<12} {r.route:<16} {len(r.ms):>4} {r.found:>5} {r.scanned:>8} "
              f"{r.percentile(50):>8.1f} {r.percentile(99):>8.1f} {max(r.ms):>8.1f} {r.errors:>6}")
    print()
    print(f"memory: stream {stream_bytes / stored:.0f} B/message, index {index_bytes / stored:.0f} B/message "
          f"({stream_bytes / 2**20:.1f} MiB and {index_bytes / 2**20:.1f} MiB for {stored:,} messages)")
    for name, cost in (("growing", growing), ("at its bound (trimming)", trimming)):
        parts = ", ".join(f"{command.upper()} {cost[command]:.1f}" for command in
                          ("xadd", "zadd", "xlen", "xrange", "zrem", "xtrim", "publish") if command in cost)
        print(f"append script, channel {name}: {cost.get('evalsha', float('nan')):.1f} µs per call in the "
              f"server; inside it, µs per call: {parts}")
    by_index = [r for r in rows if r.route == "public, index"]
    scans = [r for r in rows if r.route == "internal, scan"]
    search_p99 = max(r.percentile(99) for r in by_index)
    scan_p99 = max(r.percentile(99) for r in scans)
    errors = sum(r.errors for r in rows)
    print(f"RESULT search_p99_ms={search_p99:.1f} scan_p99_ms={scan_p99:.1f} "
          f"ratio={scan_p99 / search_p99:.1f} messages={stored} "
          f"search_p50_ms={statistics.median(r.percentile(50) for r in by_index):.1f} "
          f"index_bytes_per_message={index_bytes / stored:.0f} "
          f"stream_bytes_per_message={stream_bytes / stored:.0f} appends_per_s={rate:.0f} "
          f"append_script_us={growing.get('evalsha', 0):.1f} "
          f"append_trimming_us={trimming.get('evalsha', 0):.1f} "
          f"errors={errors}")
    return 0 if errors == 0 and stored == args.messages else 1


if __name__ == "__main__":
    sys.exit(main())
