"""IRC wire rules: line limits, parsing and formatting (with irctokens), names and masks.

Lines are at most 512 bytes with their CRLF, not counting tags (modern.ircdocs.horse); tags
may add 4,096 bytes from a client and 8,191 in all. Text is UTF-8 only (ISUPPORT UTF8ONLY).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import irctokens

from apps.chat import casemap

MAX_LINE = 512
MAX_CLIENT_TAGS = 4096
MAX_TAGS = 8191
#: A whole line as read from a socket, tags included; longer ones are answered 417 and dropped.
MAX_INPUT = MAX_TAGS + MAX_LINE
#: Bytes an away message, a KICK's reason and a realname (SETNAME) may take, and characters a
#: username (USER) keeps: ISUPPORT AWAYLEN, KICKLEN and USERLEN.
AWAY_LENGTH = KICK_LENGTH = REALNAME_LENGTH = 390
USER_LENGTH = 10
#: Characters a host set by CHGHOST may take: a DNS name's longest label, the HOSTLEN most
#: servers keep.
HOST_LENGTH = 63

_USER = re.compile(r"[^\x00\r\n @]+")
#: A user name and a host CHGHOST sets: ASCII letters, digits and a few separators only, so
#: that the prefix `nick!user@host` stays one token every client splits the same way (no
#: space, `!`, `@`, no leading `:`) and no mask wildcard (`*`, `?`) hides in it. A user name
#: may start with `~`, as USER's do ("no ident"); a host may hold `:` and `/` (an IPv6
#: address, a cloak such as `user/alice`) but starts with a letter or a digit.
_NEW_USER = re.compile(r"~?[A-Za-z0-9_][A-Za-z0-9_.-]*")
_NEW_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")


def casefold(name: str) -> str:
    """`name` folded with the chat's casemapping (`apps.chat.casemap`, shared with the users and
    messages services, so a nick, its account and a channel's stream always agree)."""
    return casemap.casefold(name)


def valid_nick(nick: str, max_length: int) -> bool:
    return casemap.is_valid_nick(nick, max_length)


def valid_user(user: str) -> bool:
    return bool(_USER.fullmatch(user))


def valid_new_user(user: str) -> bool:
    """A user name an operator may give (CHGHOST): `_NEW_USER`, at most USER_LENGTH
    characters after its `~`."""
    return bool(_NEW_USER.fullmatch(user)) and len(user.removeprefix("~")) <= USER_LENGTH


def valid_host(host: str) -> bool:
    """A host an operator may give (CHGHOST): `_NEW_HOST`, at most HOST_LENGTH characters."""
    return len(host) <= HOST_LENGTH and bool(_NEW_HOST.fullmatch(host))


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
    if _BREAKS.search(text):  # a NUL, or a CR or LF inside the line (a WebSocket message)
        raise LineError("NUL, CR or LF in line", "400")
    try:
        line = irctokens.tokenise(text)
    except (ValueError, IndexError):
        return None
    tags = {k: v for k, v in line.tags.items() if valid_tag_key(k)} if line.tags else {}
    return Message(line.command, list(line.params), tags)


def _colon_needed(last: str) -> bool:
    """Whether the last parameter must be written as a trailing one (`:text`)."""
    return not last or " " in last or last.startswith(":")


#: What no line may carry: line breaks would split it (a client could be shown a line it never
#: got from the server) and a NUL ends a line in C clients. Lines from clients with any of them
#: are refused (`parse`); `format_line` replaces them in whatever it is given.
_BREAKS = re.compile(r"[\r\n\x00]")
#: A tag key as the message-tags spec allows it: an optional `+`, an optional vendor, a name.
_TAG_KEY = re.compile(r"\+?(?:[A-Za-z0-9.-]+/)?[A-Za-z0-9-]+")


def format_line(command: str, params: list[str], source: str | None = None,
                tags: dict[str, str] | None = None) -> str:
    """One outgoing line (no CRLF), at most 512 bytes with its CRLF, tags aside.

    The longest parameter is shortened (on a character boundary) until the line fits: the
    text of a message, or the list a client sent that a numeric echoes. Line breaks and NULs in
    any part are replaced, and tags with a malformed key are left out, so that whatever a
    caller passes, one line goes out."""
    if tags and not all(map(valid_tag_key, tags)):
        return _format_safely(command, params, source, tags)
    try:
        line = irctokens.build(command, params, source=source, tags=tags or None).format()
    except ValueError:  # a middle parameter with a space or a leading colon, or an empty one
        return _format_safely(command, params, source, tags)
    if _BREAKS.search(line):
        return _format_safely(command, params, source, tags)
    body = line.split(" ", 1)[1] if tags else line
    excess = len(body.encode()) + 2 - MAX_LINE
    if params and not _colon_needed(params[-1]):
        # Room is kept for the trailing colon even where it may be left out, so a long text is
        # cut at the same length whether or not it has a space (as other servers cut it).
        excess += 1
    if excess <= 0:
        return line
    return _format_safely(command, params, source, tags)


@functools.lru_cache(maxsize=1024)
def valid_tag_key(key: str) -> bool:
    """A tag key as the message-tags spec writes it (`+`, vendor `/`, name); cached: a few
    keys (time, msgid, account, +typing...) make nearly every line."""
    return bool(_TAG_KEY.fullmatch(key))


def _middle(param: str) -> str:
    """A parameter made fit to stand before the last one."""
    param = param.replace(" ", "_")
    return ("_" + param[1:] if param.startswith(":") else param) or "*"


def _format_safely(command: str, params: list[str], source: str | None,
                   tags: dict[str, str] | None) -> str:
    """`format_line`'s slow path: a line that needs cleaning or shortening."""
    params = [_BREAKS.sub(" ", p) for p in params]
    for i in range(len(params) - 1):  # a middle parameter: no space, no leading colon, not empty
        params[i] = _middle(params[i])
    if source is not None:
        source = _BREAKS.sub("", source).replace(" ", "_") or None
    if tags:
        tags = {k: _BREAKS.sub(" ", v) for k, v in tags.items() if valid_tag_key(k)}
    head = len(command) + (len(source.encode()) + 2 if source else 0)  # ":source " and command
    while True:
        sizes = [len(p.encode()) for p in params]
        # Each parameter costs its bytes and a space; a trailing one a colon too (counted
        # always, so that a long text is cut at the same length with or without a space).
        total = head + sum(sizes) + len(params) + (1 if params else 0) + 2
        excess = total - MAX_LINE
        if excess <= 0 or not params:
            break
        longest = max(range(len(params)), key=lambda i: (sizes[i], i))
        cut = params[longest].encode()[:max(0, sizes[longest] - excess)].decode("utf-8", "ignore")
        if longest < len(params) - 1:
            cut = _middle(cut)
        if cut == params[longest]:
            break  # nothing left to shorten: the command and source alone are too long
        params[longest] = cut
    return irctokens.build(command, params, source=source, tags=tags or None).format()
