"""IRC wire rules: line limits, parsing and formatting (with irctokens), names and masks.

Lines are at most 512 bytes with their CRLF, not counting tags (modern.ircdocs.horse); tags
may add 4,096 bytes from a client and 8,191 in all. Text is UTF-8 only (ISUPPORT UTF8ONLY).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import irctokens

from apps.kit import casemap

MAX_LINE = 512
MAX_CLIENT_TAGS = 4096
MAX_TAGS = 8191
#: A whole line as read from a socket, tags included; longer ones are answered 417 and dropped.
MAX_INPUT = MAX_TAGS + MAX_LINE

_USER = re.compile(r"[^\x00\r\n @]+")


def casefold(name: str) -> str:
    """`name` folded with the chat's casemapping (`apps.kit.casemap`, shared with the users and
    messages services, so a nick, its account and a channel's stream always agree)."""
    return casemap.casefold(name)


def valid_nick(nick: str, max_length: int) -> bool:
    return casemap.is_valid_nick(nick, max_length)


def valid_user(user: str) -> bool:
    return bool(_USER.fullmatch(user))


def valid_channel(name: str, max_length: int) -> bool:
    return casemap.is_channel_name(name, max_length)


def is_channel(target: str) -> bool:
    return target[:1] in casemap.CHANTYPES


@functools.lru_cache(maxsize=4096)
def _mask_regex(mask: str) -> re.Pattern[str]:
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in casefold(mask))
    return re.compile(pattern, re.DOTALL)


def mask_matches(mask: str, hostmask: str) -> bool:
    """IRC glob (`*`, `?`) matching under the casemapping."""
    return bool(_mask_regex(mask).fullmatch(casefold(hostmask)))


def normalize_mask(mask: str) -> str:
    """`nick`, `nick!user` or `user@host` completed to a full `nick!user@host` ban mask."""
    if "!" not in mask and "@" not in mask:
        return f"{mask}!*@*"
    if "@" not in mask:
        return f"{mask}@*"
    if "!" not in mask:
        return f"*!{mask}"
    return mask


class LineError(ValueError):
    """A line that cannot be parsed; `numeric` is what to answer, if anything."""

    def __init__(self, message: str, numeric: str = "") -> None:
        super().__init__(message)
        self.numeric = numeric


@dataclass
class Message:
    """One parsed client line."""

    command: str
    params: list[str]
    tags: dict[str, str]


def parse(raw: bytes) -> Message | None:
    """A client line (CRLF stripped) parsed; None for an empty line.

    Raises LineError("too long", "417") past the limits, and LineError("invalid utf-8") when
    the line is not UTF-8 (the caller answers FAIL <command> INVALID_UTF8).
    """
    if raw.startswith(b"@"):
        tags_part, _, rest = raw.partition(b" ")
        if len(tags_part) + 1 > MAX_CLIENT_TAGS:
            raise LineError("tags too long", "417")
    else:
        rest = raw
    if len(rest.lstrip(b" ")) + 2 > MAX_LINE:
        raise LineError("line too long", "417")
    if not rest.strip(b" "):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        command = rest.lstrip(b" ").split(b" ", 1)[0]
        if command.startswith(b":"):  # a source prefix: the command is the next word
            command = rest.lstrip(b" ").split(b" ", 2)[1:2][0] if b" " in rest.strip() else b"*"
        raise LineError("invalid utf-8", command.decode("ascii", "replace").upper() or "*") from None
    if "\x00" in text:
        raise LineError("NUL in line", "400")
    try:
        line = irctokens.tokenise(text)
    except (ValueError, IndexError):
        return None
    return Message(line.command, list(line.params), dict(line.tags or {}))


def _colon_needed(last: str) -> bool:
    """Whether the last parameter must be written as a trailing one (`:text`)."""
    return not last or " " in last or last.startswith(":")


def format_line(command: str, params: list[str], source: str | None = None,
                tags: dict[str, str] | None = None) -> str:
    """One outgoing line (no CRLF), the trailing parameter shortened to fit 512 bytes."""
    params = list(params)
    line = irctokens.build(command, params, source=source, tags=tags or None).format()
    body = line.split(" ", 1)[1] if tags else line
    excess = len(body.encode()) + 2 - MAX_LINE
    if params and not _colon_needed(params[-1]):
        # Room is kept for the trailing colon even where it may be left out, so a long text is
        # cut at the same length whether or not it has a space (as other servers cut it).
        excess += 1
    if excess > 0 and params:
        last = params[-1].encode()
        params[-1] = last[:max(0, len(last) - excess)].decode("utf-8", "ignore")
        line = irctokens.build(command, params, source=source, tags=tags or None).format()
    return line
