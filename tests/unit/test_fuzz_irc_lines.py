"""Property-based tests of the IRC wire: whatever bytes come in, whatever a handler formats.

Two rules hold for any input (Hypothesis generates it and shrinks a failure to its smallest
case): parsing never fails but with the LineError the gateway answers, and every line the
gateway formats is one line of at most 512 bytes (tags aside) free of CR, LF and NUL. The
long run of the same properties is `scripts/fuzz --target irc-lines`."""

from __future__ import annotations

import irctokens
from hypothesis import given, settings

from apps.ircd.protocol import MAX_LINE, LineError, format_line, parse
from scripts.devkit.fuzz_irc import commands, irc_lines, params_lists, sources, tag_maps

QUICK = settings(max_examples=300, deadline=None, derandomize=True)


@QUICK
@given(irc_lines())
def test_parsing_any_bytes_gives_a_message_none_or_a_line_error(raw: bytes):
    try:
        message = parse(raw)
    except LineError as exc:
        assert exc.numeric  # the gateway always has something to answer
        return
    if message is not None:
        assert message.command and message.command == message.command.upper()
        for value in [*message.params, *message.tags, *message.tags.values()]:
            assert not set(value) & {"\r", "\n", "\x00"}


@QUICK
@given(commands(), params_lists(), sources(), tag_maps())
def test_every_formatted_line_is_one_line_of_at_most_512_bytes(command, params, source, tags):
    line = format_line(command, params, source=source, tags=tags)
    assert not set(line) & {"\r", "\n", "\x00"}
    body = line.split(" ", 1)[1] if line.startswith("@") else line
    assert len(body.encode()) + 2 <= MAX_LINE
    parsed = irctokens.tokenise(line)
    assert parsed.command == command.upper()


@QUICK
@given(commands(), params_lists(clean=True), sources(clean=True))
def test_a_line_that_fits_is_formatted_unchanged(command, params, source):
    line = format_line(command, params, source=source)
    fits = len(irctokens.build(command, params, source=source).format().encode()) + 3 <= MAX_LINE
    if fits:
        assert irctokens.tokenise(line).params == params


def test_a_numeric_echoing_a_long_list_is_cut_in_the_list_not_in_its_text():
    targets = ",".join(f"target{i}" for i in range(80))  # 407's echo of a client's list
    line = format_line("407", ["nick", targets, "Too many targets"], source="irc.test")
    assert len(line.encode()) + 2 <= MAX_LINE
    assert line.endswith(" :Too many targets")


def test_a_line_break_inside_a_websocket_message_is_refused():
    try:
        parse(b"PRIVMSG #c :hi\r\n:evil!e@e PRIVMSG #c :forged")
    except LineError as exc:
        assert exc.numeric == "400"
    else:
        raise AssertionError("a line with a CR LF inside was accepted")
