"""Query parameters that carry free text (a city name, a search term): read, check, fold.

Every service that takes such a parameter refuses the same bad inputs the same way: missing,
empty, too long or holding control characters gives a 400 naming the parameter and the
problem (`InvalidParameter`, turned into JSON by the app factory). Any other Unicode is fine.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from pydantic import BaseModel

from apps.kit.openapi import query_param


class InvalidParameter(ValueError):
    """A request parameter is missing or malformed; the app answers 400 with `message`."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"invalid {name}: {problem}")
        self.name = name
        self.problem = problem


def text_param(args: Mapping[str, str], name: str, *, max_length: int = 100) -> str:
    """The parameter `name` of `args`, stripped; InvalidParameter if unusable.

    Refused: absent; given more than once; containing a control character (C0/C1, e.g. a
    newline or NUL, anywhere); empty or blank; longer than `max_length` characters (after
    stripping). 100 is the course's limit for a city name.
    """
    raw = args.get(name)
    if raw is None:
        raise InvalidParameter(name, "missing")
    getlist = getattr(args, "getlist", None)  # a request's MultiDict: ?city=a&city=b
    if getlist is not None and len(getlist(name)) > 1:
        raise InvalidParameter(name, "given more than once")
    # Control characters are looked for before stripping: str.strip() would quietly remove
    # some of them (tab, newline, U+0085) at the ends.
    if any(unicodedata.category(char) == "Cc" for char in raw):
        raise InvalidParameter(name, "contains a control character")
    value = raw.strip()
    if not value:
        raise InvalidParameter(name, "empty")
    if len(value) > max_length:
        raise InvalidParameter(name, f"longer than {max_length} characters")
    return value


class CityQuery(BaseModel):
    """`?city=`: what routes taking a city name document (they read it with `text_param`)."""

    city: str = query_param("a city name: 1 to 100 characters, no control character, given once",
                            examples=["Rodez"])


def fold(text: str) -> str:
    """A comparison form of `text`: NFKC, case-folded, inner whitespace runs as one dash.

    "  São  Paulo " and "SÃO PAULO" fold alike ("são-paulo"); accents are kept, since they can
    tell names apart. The result is safe to put in a Redis key and readable in redis-cli.
    """
    return "-".join(unicodedata.normalize("NFKC", text).casefold().split())
