"""The IRC wire rules: parsing, limits, casefolding, masks, formatting."""

from __future__ import annotations

import pytest

from apps.ircd.protocol import (
    LineError,
    casefold,
    format_line,
    mask_matches,
    normalize_mask,
    parse,
    valid_channel,
    valid_nick,
)


def test_parse_reads_tags_command_and_trailing():
    message = parse(b"@+draft/x=1;a=b\\sc PRIVMSG #chan :hello there")
    assert message is not None
    assert message.command == "PRIVMSG"
    assert message.params == ["#chan", "hello there"]
    assert message.tags == {"+draft/x": "1", "a": "b c"}


def test_parse_ignores_a_source_prefix_and_uppercases_the_command():
    message = parse(b":someone privmsg bob :hi")
    assert message is not None and message.command == "PRIVMSG" and message.params == ["bob", "hi"]


@pytest.mark.parametrize("raw", [b"", b"   ", b":only-a-source"])
def test_empty_lines_are_ignored(raw: bytes):
    assert parse(raw) is None


def test_a_line_of_512_bytes_with_crlf_is_accepted_and_513_is_417():
    head = b"PRIVMSG bob :"
    assert parse(head + b"a" * (510 - len(head))) is not None
    with pytest.raises(LineError) as too_long:
        parse(head + b"a" * (511 - len(head)))
    assert too_long.value.numeric == "417"


def test_tags_do_not_count_towards_512_but_have_their_own_limit():
    tags = b"@+baz=" + b"a" * 4081 + b" "
    assert len(tags) == 4088
    assert parse(tags + b"PRIVMSG #c :" + b"b" * 490) is not None
    with pytest.raises(LineError) as too_long:
        parse(b"@+baz=" + b"a" * 4100 + b" TAGMSG #c")
    assert too_long.value.numeric == "417"


def test_invalid_utf8_is_refused_naming_the_command():
    with pytest.raises(LineError) as bad:
        parse(b"PRIVMSG bob :caf\xe9")
    assert str(bad.value) == "invalid utf-8" and bad.value.numeric == "PRIVMSG"


def test_casefold_is_ascii():
    assert casefold("Nick[]\\~É") == "nick[]\\~É"


@pytest.mark.parametrize(("nick", "ok"), [("alice", True), ("[x]_^", True), ("1abc", False),
                                          ("a b", False), ("a" * 31, False), ("", False), ("-x", False)])
def test_valid_nick(nick: str, ok: bool):
    assert valid_nick(nick, 30) is ok


@pytest.mark.parametrize(("name", "ok"), [("#chan", True), ("#", False), ("chan", False), ("#a,b", False),
                                          ("#a b", False), ("#a\x07", False), ("#" + "c" * 50, False)])
def test_valid_channel(name: str, ok: bool):
    assert valid_channel(name, 50) is ok


def test_masks_match_with_wildcards_under_casemapping():
    assert mask_matches("*!*@127.0.0.1", "Bob!~bob@127.0.0.1")
    assert mask_matches("BOB[*!*@*", "bob[x!u@h") and not mask_matches("BOB[*!*@*", "bob{x!u@h")
    assert not mask_matches("alice!*@*", "bob!~bob@h")
    assert mask_matches("b?b!*@*", "bob!u@h")
    assert normalize_mask("bob") == "bob!*@*" and normalize_mask("*@host") == "*!*@host"


def test_format_shortens_the_trailing_parameter_to_512_bytes_on_a_character_boundary():
    text = "é" * 400
    line = format_line("PRIVMSG", ["#c", text], source="nick!user@host")
    assert len(line.encode()) + 2 <= 512
    assert line.endswith("é") and line.encode().decode()  # still valid UTF-8


@pytest.mark.parametrize("word", ["x", "x y"])
def test_a_long_text_is_cut_at_the_same_length_with_or_without_a_space(word: str):
    text = (word * 600)[:600]
    line = format_line("PRIVMSG", ["nonweb", text], source="web!~u@127.0.0.1")
    payload = line.split(" PRIVMSG nonweb ", 1)[1].removeprefix(":")
    assert len(payload) == 510 - len(":web!~u@127.0.0.1 PRIVMSG nonweb :")


def test_format_does_not_count_tags_towards_512():
    line = format_line("PRIVMSG", ["#c", "x" * 400], source="n!u@h", tags={"+t": "y" * 1000})
    assert line.endswith("x" * 400)
