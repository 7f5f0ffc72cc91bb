"""Why a command is refused, as typed errors the operations raise.

Each error holds what its answer names; apps/ircd/failures.py turns it into its numeric and
text, in one place, and the dispatcher catches them (apps/ircd/dispatch.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.chat.modes import ChannelMode


class ChatError(Exception):
    """A command, or one of its targets, refused."""


@dataclass(eq=False)
class NoSuchNick(ChatError):
    nick: str


@dataclass(eq=False)
class NoSuchChannel(ChatError):
    channel: str


@dataclass(eq=False)
class NotOnChannel(ChatError):
    channel: str


@dataclass(eq=False)
class ChanOpPrivsNeeded(ChatError):
    channel: str


@dataclass(eq=False)
class UserNotInChannel(ChatError):
    nick: str
    channel: str


@dataclass(eq=False)
class UserOnChannel(ChatError):
    nick: str
    channel: str


@dataclass(eq=False)
class CannotJoin(ChatError):
    """Refused by `mode`'s JOIN rule (apps/chat/modes.py): its numeric and text answer it."""

    channel: str
    mode: ChannelMode


@dataclass(eq=False)
class CannotSendToChannel(ChatError):
    channel: str
    reason: str


@dataclass(eq=False)
class TooManyChannels(ChatError):
    channel: str


@dataclass(eq=False)
class TooManyTargets(ChatError):
    targets: str


@dataclass(eq=False)
class TryAgain(ChatError):
    """A command this replica runs one at a time, already running (RFC 2812's 263)."""

    command: str


@dataclass(eq=False)
class NeedMoreParams(ChatError):
    command: str
    text: str = "Not enough parameters"


@dataclass(eq=False)
class NoNicknameGiven(ChatError):
    pass


@dataclass(eq=False)
class ErroneousNickname(ChatError):
    nick: str


@dataclass(eq=False)
class NicknameInUse(ChatError):
    """Held by another client, or `reserved` by an account the client is not logged in to, or
    held by its own account's user, which has as many devices as it may (`crowded`)."""

    nick: str
    reserved: bool = False
    crowded: bool = False


@dataclass(eq=False)
class NotRegistered(ChatError):
    """A command that needs registration, before it."""


@dataclass(eq=False)
class AlreadyRegistered(ChatError):
    pass


@dataclass(eq=False)
class PasswordMismatch(ChatError):
    """A wrong password: OPER's, or (`closes`: the connection is closed) the server's."""

    closes: bool = False


@dataclass(eq=False)
class NoPrivileges(ChatError):
    """Not an IRC operator."""


@dataclass(eq=False)
class NoOperHost(ChatError):
    pass


@dataclass(eq=False)
class UnknownMode(ChatError):
    letter: str


@dataclass(eq=False)
class UsersDontMatch(ChatError):
    pass


@dataclass(eq=False)
class UnknownUserModeFlag(ChatError):
    pass


@dataclass(eq=False)
class InvalidModeParameter(ChatError):
    """A mode's parameter its table entry refuses (apps/chat/modes.py `Parameter`)."""

    channel: str
    mode: ChannelMode
    given: str


@dataclass(eq=False)
class ListFull(ChatError):
    channel: str
    letter: str


@dataclass(eq=False)
class NoRecipient(ChatError):
    command: str


@dataclass(eq=False)
class NoTextToSend(ChatError):
    pass


@dataclass(eq=False)
class WasNoSuchNick(ChatError):
    nick: str


@dataclass(eq=False)
class NoOrigin(ChatError):
    pass


@dataclass(eq=False)
class MonitorListFull(ChatError):
    limit: int
    nicks: str


@dataclass(eq=False)
class InvalidCapCommand(ChatError):
    subcommand: str


@dataclass(eq=False)
class SaslFailed(ChatError):
    """SASL refused; `why`, when given, is added to the text."""

    why: str = ""


@dataclass(eq=False)
class SaslTooLong(ChatError):
    pass


@dataclass(eq=False)
class SaslAborted(ChatError):
    pass


@dataclass(eq=False)
class SaslAlready(ChatError):
    pass


@dataclass(eq=False)
class Fail(ChatError):
    """An IRCv3 standard reply: FAIL <command> <code> [<context>...] <description>."""

    command: str
    code: str
    context: tuple[str, ...]
    description: str
