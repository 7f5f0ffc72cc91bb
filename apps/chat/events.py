"""What the gateway replicas send each other over Redis pub/sub: typed, versioned records.

Each payload is one JSON object whose `v` is its version (1). A replica that reads one it
cannot decode (not JSON, a field missing or of the wrong type, another version) counts it and
drops it: a bad payload never stops the bus. docs/architecture.md has the table of events:
their fields, who publishes each on which channel, and who reads it. A channel's messages do
not travel here: they are the chat log's live payloads (apps/chat/chatlog.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_json

from apps.chat.conversations import MessageLine, lines_from, loads

VERSION = 1


class MalformedEvent(ValueError):
    """A payload that is not an event of this version."""


@dataclass(frozen=True, slots=True)
class Line:
    """A line to deliver to clients, and which of them get it.

    `needs`: the capabilities a recipient must have, else it gets `alt` (if any) instead;
    `umode`: a user mode it must have (WALLOPS: `w`); `id`: set when one line goes out through
    several channels at once (a QUIT to each channel of the user), so that a client in several
    of them gets it once; `lines`: a multiline message's lines (draft/multiline), its `params`
    then being the target and their joined text."""

    source: str
    command: str
    params: list[str]
    tags: dict[str, str] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    alt: Line | None = None
    umode: str = ""
    id: str = ""
    lines: tuple[MessageLine, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "command": self.command, "params": self.params,
                               "tags": self.tags}
        if self.needs:
            out["needs"] = list(self.needs)
        if self.alt is not None:
            out["alt"] = self.alt.to_dict()
        if self.umode:
            out["umode"] = self.umode
        if self.id:
            out["id"] = self.id
        if self.lines:
            out["lines"] = [line.to_dict() for line in self.lines]
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Line:
        data = _object(data, "line")
        alt = data.get("alt")
        try:
            lines = lines_from(data.get("lines", []))
        except ValueError as exc:
            raise MalformedEvent(str(exc)) from None
        params = _texts(data, "params")
        if lines and not params:
            raise MalformedEvent("lines without a target")
        return cls(source=_text(data, "source"), command=_text(data, "command", required=True),
                   params=params, tags=_tags(data), needs=tuple(_texts(data, "needs")),
                   alt=None if alt is None else cls.from_dict(alt), umode=_text(data, "umode"),
                   id=_text(data, "id"), lines=lines)


@dataclass(frozen=True, slots=True)
class Numeric:
    """A numeric reply from the server to a client (MONITOR's 730 and 731)."""

    code: str
    params: list[str]


@dataclass(frozen=True, slots=True)
class Kill:
    """A connection to close (KILL), with the reason its QUIT gives."""

    reason: str


@dataclass(frozen=True, slots=True)
class Sync:
    """A user changed through one of its devices, for its devices on other replicas to follow
    (docs/chat.md "One account, many devices"): its record now (`User.to_redis`'s fields), a
    channel it joined or left (folded), and the line its devices are shown (NICK, JOIN...)."""

    user: dict[str, str]
    joined: str = ""
    left: str = ""
    line: Line | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user": self.user}
        if self.joined:
            out["joined"] = self.joined
        if self.left:
            out["left"] = self.left
        if self.line is not None:
            out["line"] = self.line.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Sync:
        data = _object(data, "sync")
        user = _object(data.get("user"), "user")
        if not all(isinstance(value, str) for value in user.values()):
            raise MalformedEvent("user: not an object of strings")
        line = data.get("line")
        return cls(user=dict(user), joined=_text(data, "joined"), left=_text(data, "left"),
                   line=None if line is None else Line.from_dict(line))


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """A line for a channel's members on every replica (JOIN, PART, KICK, MODE, TOPIC, NICK,
    QUIT, AWAY, TAGMSG). `exclude`: a member who does not get it (it had it already);
    `leaves`: a member who is out of the channel with it (KICK)."""

    origin: str
    channel: str
    line: Line
    exclude: str = ""
    leaves: str = ""

    def to_json(self) -> str:
        out: dict[str, Any] = {"v": VERSION, "origin": self.origin, "channel": self.channel,
                               "line": self.line.to_dict()}
        if self.exclude:
            out["exclude"] = self.exclude
        if self.leaves:
            out["leaves"] = self.leaves
        return _dumps(out)

    @classmethod
    def from_json(cls, raw: bytes | str) -> ChannelEvent:
        data = _load(raw)
        return cls(origin=_text(data, "origin"), channel=_text(data, "channel", required=True),
                   line=Line.from_dict(data.get("line")), exclude=_text(data, "exclude"),
                   leaves=_text(data, "leaves"))


@dataclass(frozen=True, slots=True)
class DirectEvent:
    """Something for some users' devices on one replica, by uid: a line (INVITE, a private
    TAGMSG, STATUSMSG), a numeric (MONITOR), a kill, or a change of the user to follow."""

    origin: str
    to: tuple[str, ...]
    payload: Line | Numeric | Kill | Sync

    def to_json(self) -> str:
        out: dict[str, Any] = {"v": VERSION, "origin": self.origin, "to": list(self.to)}
        payload = self.payload
        if isinstance(payload, Line):
            out["line"] = payload.to_dict()
        elif isinstance(payload, Numeric):
            out["numeric"] = {"code": payload.code, "params": payload.params}
        elif isinstance(payload, Sync):
            out["sync"] = payload.to_dict()
        else:
            out["kill"] = {"reason": payload.reason}
        return _dumps(out)

    @classmethod
    def from_json(cls, raw: bytes | str) -> DirectEvent:
        data = _load(raw)
        payload: Line | Numeric | Kill | Sync
        if "line" in data:
            payload = Line.from_dict(data["line"])
        elif "numeric" in data:
            numeric = _object(data["numeric"], "numeric")
            payload = Numeric(_text(numeric, "code", required=True), _texts(numeric, "params"))
        elif "kill" in data:
            payload = Kill(_text(_object(data["kill"], "kill"), "reason"))
        elif "sync" in data:
            payload = Sync.from_dict(data["sync"])
        else:
            raise MalformedEvent("no line, numeric, kill or sync")
        return cls(origin=_text(data, "origin"), to=tuple(_texts(data, "to")), payload=payload)


@dataclass(frozen=True, slots=True)
class BroadcastEvent:
    """A line for every client of every replica (WALLOPS, to those with user mode `w`)."""

    origin: str
    line: Line

    def to_json(self) -> str:
        return _dumps({"v": VERSION, "origin": self.origin, "line": self.line.to_dict()})

    @classmethod
    def from_json(cls, raw: bytes | str) -> BroadcastEvent:
        data = _load(raw)
        return cls(origin=_text(data, "origin"), line=Line.from_dict(data.get("line")))


def _dumps(value: Any) -> str:
    # pydantic-core's writer, as the bus's reader is its parser (`loads`): 0.8 us an event
    # against the json module's 3.8, for every JOIN, PART and QUIT a replica publishes.
    return to_json(value).decode()


def _load(raw: bytes | str) -> Mapping[str, Any]:
    try:
        data = loads(raw)
    except ValueError as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    data = _object(data, "event")
    if data.get("v") != VERSION:
        raise MalformedEvent(f"version {data.get('v')!r}, not {VERSION}")
    return data


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise MalformedEvent(f"{what}: not an object")
    return value


def _text(data: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = data.get(name, "")
    if not isinstance(value, str) or (required and not value):
        raise MalformedEvent(f"{name}: missing or not a string")
    return value


def _texts(data: Mapping[str, Any], name: str) -> list[str]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MalformedEvent(f"{name}: not a list of strings")
    return value


def _tags(data: Mapping[str, Any]) -> dict[str, str]:
    value = data.get("tags", {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise MalformedEvent("tags: not an object of strings")
    return value
