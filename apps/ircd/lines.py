"""The lines the gateway delivers, as typed records (apps/chat/events.py `Line`): from a
client, from a source, or a stored chat message."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache

from apps.chat.conversations import ChatMessage
from apps.chat.events import Line
from apps.ircd.client import UNSPECIFIED_AWAY, UNSPECIFIED_AWAY_TEXT, Client


def server_time(seconds: float) -> str:
    """IRCv3 server-time: ISO 8601 UTC with milliseconds."""
    fraction, whole = math.modf(seconds)  # rounded to microseconds as datetime rounds it
    return server_time_ms(int(whole) * 1000 + round(fraction * 1_000_000) // 1000)


def server_time_ms(ms: int) -> str:
    """`server_time` of a time in unix milliseconds (a stored message's)."""
    whole, part = divmod(ms, 1000)
    return f"{_second(whole)}.{part:03d}Z"


@lru_cache(maxsize=256)
def _second(whole: int) -> str:
    # Every line carries its time, and a replica makes most of them within the same second:
    # formatting the date anew was half of a received message's line (docs/cluster.md).
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_server_time(value: str) -> int | None:
    """A server-time timestamp (`YYYY-MM-DDThh:mm:ss.sssZ`; without a zone, UTC) as unix ms;
    None if malformed."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def line(source: str, command: str, params: list[str], now: float, *, tags: dict[str, str] | None = None,
         needs: tuple[str, ...] = (), alt: Line | None = None, umode: str = "", id: str = "") -> Line:
    """A line from `source`, its `time` tag (server-time) now, then `tags`."""
    return Line(source, command, params, {"time": server_time(now), **(tags or {})}, needs=needs, alt=alt,
                umode=umode, id=id)


def user_line(source: str, account: str, command: str, params: list[str], now: float, *,
              needs: tuple[str, ...] = (), alt: Line | None = None, umode: str = "", id: str = "") -> Line:
    """A line from a user (`source`: nick!user@host), with its account, if any, in the
    `account` tag (account-tag)."""
    tags = {"account": account} if account else None
    return line(source, command, params, now, tags=tags, needs=needs, alt=alt, umode=umode, id=id)


def client_line(client: Client, command: str, params: list[str], now: float, *, source: str = "",
                needs: tuple[str, ...] = (), alt: Line | None = None, umode: str = "", id: str = "") -> Line:
    """A line from `client` (or from `source`, its former self: a NICK)."""
    return user_line(source or client.prefix, client.account, command, params, now, needs=needs, alt=alt,
                     umode=umode, id=id)


def away_line(client: Client, now: float) -> Line:
    """The client's AWAY for away-notify (no parameter: back). draft/pre-away's `AWAY *` (not
    present, no reason given) goes as it is to the clients that negotiated draft/pre-away; the
    others get a text in its place (the spec: "Servers MAY substitute a human-readable message
    for the `*`")."""
    line = client_line(client, "AWAY", [client.away] if client.away else [], now, needs=("away-notify",))
    if client.away != UNSPECIFIED_AWAY:
        return line
    worded = replace(line, params=[UNSPECIFIED_AWAY_TEXT])
    return replace(line, needs=("away-notify", "draft/pre-away"), alt=worded)


def record_line(message: ChatMessage, *, batch: str = "") -> Line:
    """A stored chat message as a line: its time is its id's, its id the `msgid` tag; a
    multiline message's lines with it (apps/ircd/render.py sends them as its recipient can
    read them); an event with its own parameters."""
    tags = {"time": server_time_ms(message.time_ms), "msgid": message.id, **message.tags}
    if message.account:
        tags["account"] = message.account
    if batch:
        tags["batch"] = batch
    if message.params:
        params = list(message.params)
    else:
        params = [message.target, message.text] if message.command != "TAGMSG" else [message.target]
    line = Line(message.source, message.command, params, tags, lines=message.lines)
    if message.command == "JOIN" and len(params) == 3:  # kept as extended-join gives it
        return replace(line, needs=("extended-join",), alt=replace(line, params=params[:1]))
    return line
