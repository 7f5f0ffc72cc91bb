"""The history's records: a message as stored and fanned out, a position in a conversation,
a conversation, and the parties of a private one.

A conversation is a channel (`#chan`) or a private one between two parties (`alice,~bob`),
each one Redis Stream. Every message has one stable id, the stream id (`<ms>-<seq>`), used as
the IRCv3 msgid; its milliseconds are the message's time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic_core

from apps.chat.casemap import CASEMAPPING, Casemapping, casefold

#: The messages a client sends to a target: what every history reader gets.
MESSAGE_COMMANDS = frozenset({"PRIVMSG", "NOTICE"})
#: The events a conversation may also keep (IRCv3 draft/event-playback): a kept TAGMSG (a
#: reaction...) and what changed a channel. Only a reader that asks for events gets them.
EVENT_COMMANDS = frozenset({"TAGMSG", "JOIN", "PART", "KICK", "QUIT", "NICK", "MODE", "TOPIC"})
#: What may be stored.
STORED_COMMANDS = MESSAGE_COMMANDS | EVENT_COMMANDS
MAX_ID_PART = 2**64 - 1
_STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})")


class MalformedChatMessage(ValueError):
    """Bytes on a live channel that are not a chat record."""


class InvalidRef(ValueError):
    """A history reference that is not a stream id (or a timestamp out of range)."""


@dataclass(frozen=True, slots=True)
class MessageLine:
    """One line of a multiline message (IRCv3 draft/multiline) as its sender split it:
    `concat`, joined to the line before it with nothing between (the `draft/multiline-concat`
    tag), otherwise with a line feed."""

    text: str
    concat: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "concat": True} if self.concat else {"text": self.text}


def joined(lines: Sequence[MessageLine]) -> str:
    """A multiline message's text: its lines joined by line feeds, a concat line without one."""
    return "".join(("" if line.concat or i == 0 else "\n") + line.text for i, line in enumerate(lines))


def lines_from(value: Any) -> tuple[MessageLine, ...]:
    """The lines of a multiline message from their JSON form (a list of `{"text", "concat"?}`);
    ValueError naming what is wrong. An empty list is no lines: a one-line message."""
    if not isinstance(value, list):
        raise ValueError("lines: not a list")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise ValueError("lines: an item is not an object with a text")
        concat = item.get("concat", False)
        if not isinstance(concat, bool):
            raise ValueError("lines: concat is not a boolean")
        out.append(MessageLine(item["text"], concat))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message as stored and fanned out.

    `source` is `nick!user@host`, `target` the channel or nick as the sender spelt it,
    `account` the sender's account ("" if not logged in), `tags` its client-only tags
    (`+draft/reply`...). `id` is set by `ChatLog.append`. A multiline message (draft/multiline)
    also has its `lines` as the sender split them, and its `text` is their `joined` value: what
    search indexes and what a reader that ignores `lines` shows. An event (`is_event`: JOIN,
    TOPIC, a kept TAGMSG...) has its IRC `params` as they went out; its `target` is the
    conversation it is kept in, and `text` its free text (a reason, a topic), if any.
    """

    command: str
    source: str
    target: str
    text: str = ""
    account: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    id: str = ""
    #: The sender's party in a private conversation (see `party`), kept in the stream only:
    #: it tells which side a guest was on once its connection is gone.
    party: str = ""
    #: The gateway replica that appended it, in the live payload only (not in the stream): the
    #: replica, which delivered to its own clients already, skips exactly its own messages.
    origin: str = ""
    #: A multiline message's lines (none: a one-line message).
    lines: tuple[MessageLine, ...] = ()
    #: An event's parameters (none: a message, whose parameters are its target and text).
    params: tuple[str, ...] = ()

    @property
    def is_event(self) -> bool:
        """True for an event (draft/event-playback), False for a message every reader gets (a
        hand-written entry without a command among them)."""
        return self.command in EVENT_COMMANDS

    @property
    def time_ms(self) -> int:
        """The server time of the message, in unix milliseconds (the id's first part)."""
        return int(self.id.split("-", 1)[0]) if self.id else 0

    def record(self) -> dict[str, Any]:
        """The JSON fields, without id and time, in the order of the pub/sub payload (`origin`
        last, when there is one)."""
        fields: dict[str, Any] = {"command": self.command, "from": self.source, "account": self.account,
                                  "target": self.target, "text": self.text, "tags": dict(self.tags)}
        if self.lines:
            fields["lines"] = [line.to_dict() for line in self.lines]
        if self.params:
            fields["params"] = list(self.params)
        if self.origin:
            fields["origin"] = self.origin
        return fields

    def to_dict(self) -> dict[str, Any]:
        """The pub/sub payload (and the HTTP history item) as a dict."""
        return {"id": self.id, "time": self.time_ms, **self.record()}

    def to_json(self) -> str:
        return dumps(self.to_dict())

    def stream_fields(self) -> list[str]:
        """Field/value items of the stream entry; `tags` and `lines` only when there are some."""
        items = ["command", self.command, "from", self.source, "account", self.account,
                 "target", self.target, "text", self.text]
        if self.tags:
            items += ["tags", dumps(dict(self.tags))]
        if self.lines:
            items += ["lines", dumps([line.to_dict() for line in self.lines])]
        if self.params:
            items += ["params", dumps(list(self.params))]
        if self.party:
            items += ["party", self.party]
        return items

    @classmethod
    def from_stream(cls, entry_id: str | bytes, fields: Mapping[Any, Any]) -> ChatMessage:
        """A record read back from the stream. Missing fields are empty, bad tags ignored,
        and so are lines that do not make its text, so that one hand-written entry cannot break
        every history query."""
        values = {text_of(k): text_of(v) for k, v in fields.items()}
        try:
            tags = json.loads(values.get("tags", "{}"))
        except ValueError:
            tags = {}
        if not isinstance(tags, dict):
            tags = {}
        text = values.get("text", "")
        try:
            lines = lines_from(json.loads(values["lines"])) if "lines" in values else ()
        except ValueError:
            lines = ()
        if lines and joined(lines) != text:
            lines = ()
        return cls(command=values.get("command", ""), source=values.get("from", ""),
                   target=values.get("target", ""), text=text,
                   account=values.get("account", ""),
                   tags={str(k): str(v) for k, v in tags.items()}, id=text_of(entry_id),
                   party=values.get("party", ""), lines=lines, params=_params(values.get("params")))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ChatMessage:
        """Parse a live payload; MalformedChatMessage naming what is wrong."""
        try:
            data = loads(raw)
        except ValueError as exc:
            raise MalformedChatMessage(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MalformedChatMessage("not a JSON object")
        for name in ("command", "from", "target"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise MalformedChatMessage(f"{name}: missing or not a string")
        tags = data.get("tags", {})
        if not isinstance(tags, dict):
            raise MalformedChatMessage("tags: not an object")
        message_id = data.get("id") or ""
        if message_id and not _STREAM_ID.fullmatch(str(message_id)):
            raise MalformedChatMessage("id: not a stream id")
        text = str(data.get("text") or "")
        try:
            lines = lines_from(data.get("lines", []))
        except ValueError as exc:
            raise MalformedChatMessage(str(exc)) from None
        if lines and joined(lines) != text:
            raise MalformedChatMessage("lines: do not make the text")
        params = data.get("params", [])
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise MalformedChatMessage("params: not a list of strings")
        return cls(command=data["command"], source=data["from"], target=data["target"],
                   text=text, account=str(data.get("account") or ""),
                   tags={str(k): str(v) for k, v in tags.items()}, id=str(message_id),
                   origin=str(data.get("origin") or ""), lines=lines, params=tuple(params))


def published_by(instance: str) -> bytes:
    """How a live payload appended by gateway replica `instance` ends, `origin` being its last
    field (`ChatMessage.record`): the replica passes over its own messages without parsing them."""
    return f',"origin":{dumps(instance)}}}'.encode()


def _params(raw: str | None) -> tuple[str, ...]:
    """An event's parameters from their stream field; none when absent or not a JSON list of
    strings (one bad entry must not break a history query)."""
    if not raw:
        return ()
    try:
        value = json.loads(raw)
    except ValueError:
        return ()
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        return ()
    return tuple(value)


@dataclass(frozen=True, slots=True)
class Ref:
    """A position in a conversation: a message id, or a time (unix ms).

    A time stands between messages: "before T" excludes messages at T's millisecond, "after T"
    excludes them too, "around T" starts at it.
    """

    kind: Literal["msgid", "time"]
    ms: int
    seq: int = 0

    @classmethod
    def msgid(cls, text: str) -> Ref:
        """The reference of a message id `<ms>-<seq>`; InvalidRef if it is not one."""
        match = _STREAM_ID.fullmatch(text)
        if not match:
            raise InvalidRef(f"not a message id: {text[:40]!r}")
        ms, seq = int(match.group(1)), int(match.group(2))
        if ms > MAX_ID_PART or seq > MAX_ID_PART:
            raise InvalidRef(f"message id out of range: {text[:40]!r}")
        return cls("msgid", ms, seq)

    @classmethod
    def time(cls, ms: int) -> Ref:
        """The reference of a point in time, in unix milliseconds."""
        if not 0 <= ms <= MAX_ID_PART:
            raise InvalidRef(f"time out of range: {ms}")
        return cls("time", ms)

    def _position(self) -> tuple[int, int]:
        return (self.ms, self.seq)

    def first_after(self) -> str | None:
        """The lowest id strictly after this reference (None: nothing can be)."""
        if self.kind == "time":
            return None if self.ms == MAX_ID_PART else f"{self.ms + 1}-0"
        return _next_id(self.ms, self.seq)

    def last_before(self) -> str | None:
        """The highest id strictly before this reference (None: nothing can be)."""
        return _previous_id(self.ms, self.seq)

    def first_at(self) -> str:
        """The lowest id at or after this reference."""
        return f"{self.ms}-{self.seq}"


@dataclass(frozen=True, slots=True)
class Conversation:
    """A channel or a private conversation: its folded name and its stream key."""

    name: str
    key: str


#: What starts a guest's party: never the first character of an account name (a nick).
GUEST = "~"


def party(connection: str, account: str = "", mapping: Casemapping = CASEMAPPING) -> str:
    """Who takes part in a private conversation: the folded account name of a logged-in user,
    or `~` and the connection's own id for a guest (a client without an account).

    A guest is its connection, never its nick: a nick is free for the next comer once its
    holder leaves, so a conversation keyed by it would be handed to whoever takes the nick
    next. The connection id is never reused; `~` never starts an account name, so the two
    kinds never collide (what a guest said is not shown to an account registered later
    under its nick either)."""
    if account:
        return casefold(account, mapping)
    if not connection:
        raise ValueError("a guest party needs its connection id")
    return GUEST + connection


def is_guest(party_name: str) -> bool:
    """True for a guest's party (see `party`)."""
    return party_name.startswith(GUEST)


def _next_id(ms: int, seq: int) -> str | None:
    if seq < MAX_ID_PART:
        return f"{ms}-{seq + 1}"
    return None if ms == MAX_ID_PART else f"{ms + 1}-0"


def _previous_id(ms: int, seq: int) -> str | None:
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return None if ms == 0 else f"{ms - 1}-{MAX_ID_PART}"


def id_tuple(stream_id: str) -> tuple[int, int]:
    ms, seq = stream_id.split("-", 1)
    return int(ms), int(seq)


def text_of(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(raw: str | bytes) -> Any:
    """A payload from the bus as JSON (ValueError if it is not): pydantic_core's parser, 0.8 us
    for a chat message against the json module's 2.8, and every replica a message reaches
    parses it. Stricter too: no NaN, no lone surrogate (which no reply could encode)."""
    return pydantic_core.from_json(raw, allow_inf_nan=False)
