"""IRC names: folding and validity (apps/chat/casemap.py)."""

from __future__ import annotations

import pytest

from apps.chat.casemap import CASEMAPPING, NICKLEN, casefold, is_channel_name, is_valid_nick


def test_the_advertised_casemapping_is_ascii():
    assert CASEMAPPING == "ascii"


@pytest.mark.parametrize(("name", "ascii", "rfc1459"), [
    ("#Foo", "#foo", "#foo"),
    ("Nick[]\\~", "nick[]\\~", "nick{}|^"),
    ("ÉLAN", "Élan", "Élan"),  # only ASCII letters fold
])
def test_casefold(name, ascii, rfc1459):
    assert casefold(name) == casefold(name, "ascii") == ascii
    assert casefold(name, "rfc1459") == rfc1459


@pytest.mark.parametrize("nick", ["a", "Alice", "[away]", "x-1", "`^_{|}", "foo-0123456789", "a" * NICKLEN])
def test_valid_nicks(nick):
    assert is_valid_nick(nick)


@pytest.mark.parametrize("nick", ["", "1abc", "-x", "a b", "a,b", "a!b", "a@b", "#chan", "~bob", "é",
                                  "a" * (NICKLEN + 1), "a\nb", "a\x00"])
def test_invalid_nicks(nick):
    assert not is_valid_nick(nick)


@pytest.mark.parametrize("name", ["#a", "&local", "#Été", "#a{b}", "#" + "x" * 63])
def test_valid_channel_names(name):
    assert is_channel_name(name)


@pytest.mark.parametrize("name", ["#", "a", "+x", "#a b", "#a,b", "#a:b", "#a\x07", "#" + "x" * 64, ""])
def test_invalid_channel_names(name):
    assert not is_channel_name(name)
