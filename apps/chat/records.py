"""The chat's state as typed records: a user, a channel, a member's status, a WHOWAS entry and
a channel list's entry.

Each record decodes what Redis returns (HGETALL's bytes, or str) with `from_redis` and
encodes itself with `to_redis`: the hash field names are spelled here only. A record is made
once per command that reads the state, never per recipient of a message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apps.chat.modes import CHANNEL_MODE, OPERATOR, PARAMETERS, STATUSES, hides, status_rank

#: A hash as HGETALL returns it: bytes (redis-py's default), or str with `decode_responses`.
RawHash = Mapping[Any, Any]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _fields(raw: RawHash) -> dict[str, str]:
    try:  # one decoding pass, as bytes: the common case, and the hot one
        return {key.decode(): value.decode("utf-8", "replace") for key, value in raw.items()}
    except AttributeError:
        return {_text(key): _text(value) for key, value in raw.items()}


def _number(text: str) -> float:
    """A number a script or a hand-written HSET stored: 0 when it is not one."""
    try:
        return float(text)
    except ValueError:
        return 0.0


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return int(_number(text))


#: The fields of a user's hash that NAMES shows (nick, user, host) or needs (modes: +i), in
#: `User.from_names_fields`'s order: four of eleven, read for every member of a channel.
NAMES_FIELDS = ("nick", "user", "host", "modes")


@dataclass(slots=True)
class User:
    """A user as every replica sees it (`irc:user:{<uid>}`): one registered connection, or the
    devices of one account sharing a nick (docs/chat.md "One account, many devices")."""

    uid: str
    nick: str
    username: str = ""
    host: str = ""
    realname: str = ""
    account: str = ""
    away: str = ""
    modes: str = ""  # user mode letters (apps/chat/modes.py USER_MODES)
    instance: str = ""  # the replicas holding its devices, space-separated ("": none)
    signon: int = 0
    secure: bool = False
    #: It stays (in its channels, its nick held) when its last device goes.
    always_on: bool = False
    #: When its last device went (an always-on user with none), in seconds; 0 while it has one.
    detached: int = 0

    @property
    def prefix(self) -> str:
        """`nick!user@host`: the user as the source of a message, and as masks match it."""
        return f"{self.nick}!{self.username}@{self.host}"

    @property
    def invisible(self) -> bool:
        return "i" in self.modes

    @property
    def instances(self) -> list[str]:
        """The replicas holding its devices."""
        return self.instance.split()

    @property
    def oper(self) -> bool:
        return "o" in self.modes

    @classmethod
    def from_redis(cls, raw: RawHash) -> User:
        values = _fields(raw)
        get = values.get
        return cls(uid=get("uid", ""), nick=get("nick", ""), username=get("user", ""),
                   host=get("host", ""), realname=get("real", ""), account=get("account", ""),
                   away=get("away", ""), modes=get("modes", ""), instance=get("inst", ""),
                   signon=_integer(get("signon", "0")), secure=bool(get("secure")),
                   always_on=bool(get("always_on")), detached=_integer(get("detached", "0")))

    @classmethod
    def from_names_fields(cls, uid: str, values: Sequence[bytes | str | None]) -> User | None:
        """A user from its NAMES_FIELDS as HMGET returns them, the other fields empty; None if
        it has no record (no nick)."""
        if values[0] is None:
            return None
        nick, username, host, modes = (_text(value) if value is not None else "" for value in values)
        return cls(uid=uid, nick=nick, username=username, host=host, modes=modes)

    def to_redis(self) -> dict[str, str]:
        return {"uid": self.uid, "nick": self.nick, "user": self.username, "host": self.host,
                "real": self.realname, "account": self.account, "away": self.away,
                "modes": self.modes, "inst": self.instance, "signon": str(self.signon),
                "secure": "1" if self.secure else "", "always_on": "1" if self.always_on else "",
                "detached": str(self.detached) if self.detached else ""}


#: The channel hash's fields of its topic.
_TOPIC_FIELDS = ("topic", "topic_by", "topic_at")
#: (mode letter, channel hash field) of each mode with a parameter.
_PARAMETER_FIELDS = tuple((mode.letter, mode.parameter.field) for mode in PARAMETERS if mode.parameter)


@dataclass(slots=True)
class Channel:
    """A channel (`irc:chan:{<channel>}`). `modes` lists its mode letters, sorted, those with a
    parameter included while set (the JOIN and leave scripts read them there); `parameters`
    holds each parameter by its mode letter (`k`: the key, `l`: the limit)."""

    name: str
    created: float = 0.0
    topic: str = ""
    topic_by: str = ""
    topic_at: int = 0
    modes: str = ""
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def hidden(self) -> bool:
        """Secret: outsiders see neither the channel nor its members."""
        return hides(self.modes)

    def has(self, letter: str) -> bool:
        return letter in self.modes

    @classmethod
    def from_redis(cls, raw: RawHash) -> Channel:
        values = _fields(raw)
        get = values.get
        parameters = {letter: values[name] for letter, name in _PARAMETER_FIELDS if get(name)}
        return cls(name=get("name", ""), created=_number(get("created", "0")), topic=get("topic", ""),
                   topic_by=get("topic_by", ""), topic_at=_integer(get("topic_at", "0")),
                   modes=get("modes", ""), parameters=parameters)

    def to_redis(self) -> dict[str, str]:
        """The channel's hash: its name, creation time and modes, the topic's fields while it
        has one, and each parameter set under its own field."""
        fields = {"name": self.name, "created": f"{self.created:.3f}", "modes": self.modes}
        if self.topic:
            fields.update(topic=self.topic, topic_by=self.topic_by, topic_at=str(self.topic_at))
        for letter, name in _PARAMETER_FIELDS:
            if self.parameters.get(letter):
                fields[name] = self.parameters[letter]
        return fields

    def mode_fields(self) -> tuple[dict[str, str], list[str]]:
        """The fields holding the modes: those to write (the letters, the parameters set) and
        those to delete (the parameters unset)."""
        return _split(self.to_redis(), ("modes", *(name for _, name in _PARAMETER_FIELDS)))

    def topic_fields(self) -> tuple[dict[str, str], list[str]]:
        """The fields holding the topic, likewise: all three deleted when there is none."""
        return _split(self.to_redis(), _TOPIC_FIELDS)


def _split(fields: dict[str, str], names: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """`names` split into those `fields` has (with their values) and those it has not."""
    present = {name: fields[name] for name in names if name in fields}
    return present, [name for name in names if name not in present]


@dataclass(frozen=True, slots=True)
class Status:
    """A member's status in a channel: its status letters (`o`, `v`, `ov` or none), stored as
    the value of its field in the channel's members hash."""

    letters: str = ""

    @classmethod
    def from_redis(cls, raw: bytes | str) -> Status:
        return cls(_text(raw))

    def to_redis(self) -> str:
        return self.letters

    def at_least(self, letter: str) -> bool:
        """True if the member has status `letter` or a higher one (`o` is at least `v`)."""
        rank = status_rank(letter)
        return any(status_rank(held) <= rank for held in self.letters)

    @property
    def operator(self) -> bool:
        return self.at_least(OPERATOR)

    def symbols(self, every: bool) -> str:
        """Its prefix symbols, highest first: all of them (multi-prefix) or the highest."""
        found = "".join(CHANNEL_MODE[letter].prefix for letter in STATUSES if letter in self.letters)
        return found if every else found[:1]

    def changed(self, letter: str, on: bool) -> Status:
        """This status with `letter` given or taken, letters highest first."""
        wanted = (set(self.letters) | {letter}) if on else (set(self.letters) - {letter})
        return Status("".join(held for held in STATUSES if held in wanted))


@dataclass(frozen=True, slots=True)
class WhowasEntry:
    """A user of a nick that has gone (`irc:whowas:{<nick>}` holds them as JSON)."""

    nick: str
    username: str
    host: str
    realname: str
    server: str
    at: int
    account: str = ""

    @classmethod
    def of(cls, user: User, server: str, at: float) -> WhowasEntry:
        return cls(user.nick, user.username, user.host, user.realname, server, int(at), user.account)

    def to_json(self) -> str:
        return json.dumps({"nick": self.nick, "user": self.username, "host": self.host,
                           "real": self.realname, "server": self.server, "at": str(self.at),
                           "account": self.account})

    @classmethod
    def from_json(cls, raw: bytes | str) -> WhowasEntry:
        values = json.loads(raw)
        get = values.get
        return cls(nick=str(get("nick", "")), username=str(get("user", "")), host=str(get("host", "")),
                   realname=str(get("real", "")), server=str(get("server", "")),
                   at=_integer(str(get("at", "0"))), account=str(get("account", "")))


@dataclass(frozen=True, slots=True)
class ListEntry:
    """A mask in a channel list (bans, exceptions, invite exceptions), who set it and when."""

    mask: str
    setter: str
    at: int

    @classmethod
    def from_redis(cls, mask: bytes | str, raw: bytes | str) -> ListEntry:
        setter, _, when = _text(raw).partition(" ")
        return cls(_text(mask), setter, _integer(when))

    def to_redis(self) -> str:
        return f"{self.setter} {self.at}"
