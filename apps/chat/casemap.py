"""IRC names: which nicks and channel names are valid, and when two of them are the same.

The users service, the messages service and the ircd must agree on both, or an account would
not reserve the nick the ircd compares with it, and a channel's history would be looked up
under another key than the one it was written to. Redis keys always hold the folded form.
"""

from __future__ import annotations

import re
from typing import Literal

Casemapping = Literal["ascii", "rfc1459"]

#: What the ircd advertises as CASEMAPPING in 005 and what every key is folded with. With
#: "ascii" only A-Z fold to a-z; "rfc1459" also folds []\~ to {}|^ (the RFC's Scandinavian
#: letters), which surprises users more than it helps them.
CASEMAPPING: Casemapping = "ascii"
#: Longest nick (and account name), advertised as NICKLEN.
NICKLEN = 30
#: Longest channel name, advertised as CHANNELLEN.
CHANNELLEN = 64
#: Characters that may start a channel name, advertised as CHANTYPES.
CHANTYPES = "#&"

_ASCII = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_RFC1459 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^")
# RFC 2812 2.3.1: nickname = ( letter / special ) *( letter / digit / special / "-" ).
_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*")
# RFC 2812 2.3.1 chanstring: any octet except NUL, BEL, CR, LF, space, comma and colon.
_CHANNEL_FORBIDDEN = re.compile(r"[\x00\x07\r\n ,:]")


def casefold(name: str, mapping: Casemapping = CASEMAPPING) -> str:
    """The comparison form of a nick or channel name under `mapping`.

    Only ASCII letters (and, for rfc1459, the four bracket pairs) change: anything else,
    including non-ASCII letters, is compared as it is, as IRC servers do.
    """
    return name.translate(_RFC1459 if mapping == "rfc1459" else _ASCII)


def is_valid_nick(name: str, max_length: int = NICKLEN) -> bool:
    """True for an RFC 2812 nickname of 1 to `max_length` characters (an account name too)."""
    return 0 < len(name) <= max_length and bool(_NICK.fullmatch(name))


def is_channel_name(name: str, max_length: int = CHANNELLEN) -> bool:
    """True for a channel name: a CHANTYPES prefix, then 1 or more allowed characters."""
    return (
        1 < len(name) <= max_length
        and name[0] in CHANTYPES
        and not _CHANNEL_FORBIDDEN.search(name)
    )
