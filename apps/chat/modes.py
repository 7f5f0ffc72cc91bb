"""The table of channel modes and user modes: what each letter is, and what it does.

Everything the gateway says or checks about a mode derives from its entry: the ISUPPORT
tokens CHANMODES, PREFIX, MAXLIST, EXCEPTS, INVEX and STATUSMSG, the mode strings of 004,
the checks of the JOIN script, the leave script's test for a closed channel (whose history
goes with it) and who may set the mode. Adding a channel mode is one entry here, plus the
rule where it acts (a JOIN refusal is part of the entry: its numeric and its Lua condition).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from apps.chat import numerics as n


class Kind(enum.Enum):
    """How a channel mode takes its parameter (the four CHANMODES types, and PREFIX)."""

    LIST = "A"  # a list of masks: a parameter to add or remove one, none to list them
    PARAMETER = "B"  # a setting with a parameter to set it and to unset it (the key)
    PARAMETER_ON_SET = "C"  # a setting with a parameter to set it only (the limit)
    FLAG = "D"  # on or off
    STATUS = "prefix"  # a member's status, shown as a prefix to its nick


@dataclass(frozen=True, slots=True)
class JoinRule:
    """What refuses a JOIN: `lua` is a condition the JOIN script tests (true: refused), over
    its helpers `has(letter)` (the channel has that mode), `field(name)` (a field of the
    channel's hash), `count()` (its members) and its arguments `key` (the key given),
    `banned` and `invex` ('1' when the joiner matches a ban and no exception, or an invite
    exception). An invitation passes every rule."""

    numeric: str
    text: str
    lua: str


@dataclass(frozen=True, slots=True)
class Parameter:
    """A setting's parameter: the channel hash field holding it, its stored form (None when
    the given one is invalid: answered with `invalid_numeric`), and whether only members see
    it (the key)."""

    field: str
    normalize: Callable[[str], str | None]
    invalid_numeric: str
    invalid_text: str
    members_only: bool = False


@dataclass(frozen=True, slots=True)
class MaskList:
    """A list of masks: the key part holding it (mask -> `setter time`), the numerics that
    list it, and the mode whose refusal a match exempts from (`b` for ban exceptions: ISUPPORT
    EXCEPTS; `i` for invite exceptions: INVEX), if any."""

    key: str
    entry_numeric: str
    end_numeric: str
    end_text: str
    exempts: str = ""


@dataclass(frozen=True, slots=True)
class ChannelMode:
    """One channel mode. `set_by`: the lowest member status that may set it."""

    letter: str
    kind: Kind
    what: str
    set_by: str = "o"
    closes_history: bool = False  # its channel's history goes with the channel when it empties
    hides_channel: bool = False  # outsiders see neither the channel nor its members
    default: bool = False  # set on a channel when it is created
    join_rule: JoinRule | None = None
    parameter: Parameter | None = None
    mask_list: MaskList | None = None
    prefix: str = ""  # a status's symbol before a nick (NAMES, WHO, STATUSMSG)


class UserSetter(enum.Enum):
    """Who sets a user mode."""

    SELF = "the user, with MODE"
    OPER = "OPER only (the user may unset it with MODE)"


@dataclass(frozen=True, slots=True)
class UserMode:
    """One user mode; `counted_in`: the network set listing the users with it (LUSERS)."""

    letter: str
    what: str
    set_by: UserSetter = UserSetter.SELF
    counted_in: str = ""


def _key(given: str) -> str | None:
    return given if given and " " not in given and "," not in given else None


def _limit(given: str) -> str | None:
    return str(int(given)) if given.isdigit() and int(given) > 0 else None


KEY_FIELD, LIMIT_FIELD = "key", "limit"
OPERATOR = "o"

#: Every channel mode. Statuses come first, highest first (PREFIX's order); the JOIN script
#: tests the rules in this order, so a refusal names the first one that applies.
CHANNEL_MODES: tuple[ChannelMode, ...] = (
    ChannelMode(OPERATOR, Kind.STATUS, "channel operator", prefix="@"),
    ChannelMode("v", Kind.STATUS, "voice: may speak in a moderated channel", prefix="+"),
    ChannelMode("i", Kind.FLAG, "invite only", closes_history=True,
                join_rule=JoinRule(n.ERR_INVITEONLYCHAN, "Cannot join channel (+i)",
                                   "has('i') and invex ~= '1'")),
    ChannelMode("k", Kind.PARAMETER, "a key to join", closes_history=True,
                parameter=Parameter(KEY_FIELD, _key, n.ERR_INVALIDKEY, "Key is not well-formed",
                                    members_only=True),
                join_rule=JoinRule(n.ERR_BADCHANNELKEY, "Cannot join channel (+k)",
                                   f"field('{KEY_FIELD}') and field('{KEY_FIELD}') ~= key")),
    ChannelMode("l", Kind.PARAMETER_ON_SET, "a limit of members",
                parameter=Parameter(LIMIT_FIELD, _limit, n.ERR_INVALIDMODEPARAM, "Invalid limit"),
                join_rule=JoinRule(n.ERR_CHANNELISFULL, "Cannot join channel (+l)",
                                   f"tonumber(field('{LIMIT_FIELD}') or '') and "
                                   f"count() >= tonumber(field('{LIMIT_FIELD}'))")),
    ChannelMode("b", Kind.LIST, "bans",
                mask_list=MaskList("bans", n.RPL_BANLIST, n.RPL_ENDOFBANLIST, "End of channel ban list"),
                join_rule=JoinRule(n.ERR_BANNEDFROMCHAN, "Cannot join channel (+b)", "banned == '1'")),
    ChannelMode("e", Kind.LIST, "ban exceptions",
                mask_list=MaskList("excepts", n.RPL_EXCEPTLIST, n.RPL_ENDOFEXCEPTLIST,
                                   "End of channel exception list", exempts="b")),
    ChannelMode("I", Kind.LIST, "invite exceptions",
                mask_list=MaskList("invex", n.RPL_INVEXLIST, n.RPL_ENDOFINVEXLIST,
                                   "End of channel invite exception list", exempts="i")),
    ChannelMode("m", Kind.FLAG, "moderated: members without a status may not speak"),
    ChannelMode("n", Kind.FLAG, "no messages from outside", default=True),
    ChannelMode("s", Kind.FLAG, "secret", closes_history=True, hides_channel=True),
    ChannelMode("t", Kind.FLAG, "only operators set the topic", default=True),
)

USER_MODES: tuple[UserMode, ...] = (
    UserMode("i", "invisible: hidden from WHO and NAMES of strangers", counted_in="invisible"),
    UserMode("o", "IRC operator", set_by=UserSetter.OPER, counted_in="opers"),
    UserMode("w", "receives WALLOPS"),
)

CHANNEL_MODE = {mode.letter: mode for mode in CHANNEL_MODES}
USER_MODE = {mode.letter: mode for mode in USER_MODES}
#: Status letters, highest first.
STATUSES = "".join(mode.letter for mode in CHANNEL_MODES if mode.kind is Kind.STATUS)
#: Most changes with a parameter one MODE command applies (ISUPPORT MODES).
MAX_PARAMETER_CHANGES = 4


def _letters(kind: Kind) -> str:
    return "".join(sorted(mode.letter for mode in CHANNEL_MODES if mode.kind is kind))


def _exempting(letter: str) -> str:
    return "".join(m.letter for m in CHANNEL_MODES if m.mask_list and m.mask_list.exempts == letter)


# ISUPPORT and 004, as the gateway advertises them.
CHANMODES = ",".join(_letters(kind) for kind in (Kind.LIST, Kind.PARAMETER, Kind.PARAMETER_ON_SET, Kind.FLAG))
PREFIX = "({}){}".format(STATUSES, "".join(CHANNEL_MODE[letter].prefix for letter in STATUSES))
STATUSMSG = "".join(CHANNEL_MODE[letter].prefix for letter in STATUSES)
LISTS = "".join(mode.letter for mode in CHANNEL_MODES if mode.kind is Kind.LIST)
EXCEPTS, INVEX = _exempting("b"), _exempting("i")
MYINFO_USER_MODES = "".join(mode.letter for mode in USER_MODES)
MYINFO_CHANNEL_MODES = "".join(sorted(CHANNEL_MODE))
MYINFO_PARAMETER_MODES = "".join(sorted(m.letter for m in CHANNEL_MODES if m.kind is not Kind.FLAG))

#: The modes a new channel has, as stored (sorted letters).
DEFAULT_MODES = "".join(sorted(mode.letter for mode in CHANNEL_MODES if mode.default))
#: Modes that close a channel: its history goes with it when it empties.
CLOSING = tuple(mode for mode in CHANNEL_MODES if mode.closes_history)
JOIN_RULES = tuple(mode for mode in CHANNEL_MODES if mode.join_rule is not None)
PARAMETERS = tuple(mode for mode in CHANNEL_MODES if mode.parameter is not None)


def hides(letters: str) -> bool:
    """True if a channel with these modes is hidden from outsiders (secret)."""
    return any(CHANNEL_MODE[letter].hides_channel for letter in letters if letter in CHANNEL_MODE)


def exempted_by(letter: str) -> str:
    """The list modes whose match exempts from mode `letter`'s refusal (`b` -> `e`)."""
    return _exempting(letter)


def status_rank(letter: str) -> int:
    """0 for the highest status, then 1...; past the last for a letter that is none."""
    index = STATUSES.find(letter)
    return index if index >= 0 else len(STATUSES)


def with_user_mode(modes: str, letter: str, on: bool) -> str:
    """User mode letters with `letter` set or unset, in the table's order."""
    wanted = (set(modes) | {letter}) if on else (set(modes) - {letter})
    return "".join(mode.letter for mode in USER_MODES if mode.letter in wanted)
