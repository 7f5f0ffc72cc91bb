"""The chat's domain (apps/chat): the mode table's derivations, the records' encoding and the
events between replicas."""

from __future__ import annotations

import json

import pytest

from apps.chat import modes
from apps.chat.events import BroadcastEvent, ChannelEvent, DirectEvent, Kill, Line, MalformedEvent, Numeric
from apps.chat.records import NAMES_FIELDS, Channel, ListEntry, Status, User, WhowasEntry


def test_the_advertised_mode_strings_derive_from_the_table():
    assert modes.CHANMODES == "Ibe,k,l,imnst"
    assert modes.PREFIX == "(ov)@+" and modes.STATUSMSG == "@+"
    assert modes.LISTS == "beI" and (modes.EXCEPTS, modes.INVEX) == ("e", "I")
    assert modes.MYINFO_USER_MODES == "iow"
    assert modes.MYINFO_CHANNEL_MODES == "Ibeiklmnostv"
    assert modes.MYINFO_PARAMETER_MODES == "Ibeklov"
    assert modes.DEFAULT_MODES == "nt"
    assert "p" not in modes.CHANNEL_MODE  # private (+p) is not implemented


def test_the_join_rules_and_the_closing_modes_come_from_the_table():
    assert [mode.letter for mode in modes.JOIN_RULES] == ["i", "k", "l", "b"]
    assert sorted(mode.letter for mode in modes.CLOSING) == ["i", "k", "s"]
    assert modes.hides("nst") and not modes.hides("int")
    assert modes.exempted_by("b") == "e" and modes.exempted_by("i") == "I"


def test_parameters_are_normalised_or_refused():
    key, limit = modes.CHANNEL_MODE["k"].parameter, modes.CHANNEL_MODE["l"].parameter
    assert key is not None and limit is not None
    assert key.normalize("s3cret") == "s3cret" and key.normalize("a b") is None and key.normalize("") is None
    assert limit.normalize("007") == "7" and limit.normalize("0") is None and limit.normalize("x") is None


def test_a_user_and_a_channel_round_trip_through_their_hashes():
    user = User("u1", "Alice", "~alice", "192.0.2.1", "Alice A.", "alice", "", "iw", "ircd-1", 1800, True)
    raw = {k.encode(): v.encode() for k, v in user.to_redis().items()}
    assert User.from_redis(raw) == user and user.prefix == "Alice!~alice@192.0.2.1" and user.invisible
    channel = Channel("#Chat", 1800.5, "hi", "a!b@c", 1801, "klnt", {"k": "key", "l": "5"})
    written, deleted = channel.mode_fields()
    assert written == {"modes": "klnt", "key": "key", "limit": "5"} and deleted == []
    assert channel.topic_fields() == ({"topic": "hi", "topic_by": "a!b@c", "topic_at": "1801"}, [])
    assert Channel("#c", modes="nt").topic_fields() == ({}, ["topic", "topic_by", "topic_at"])
    raw = {b"name": b"#Chat", b"created": b"1800.500", b"topic": b"hi", b"topic_by": b"a!b@c",
           b"topic_at": b"1801", b"modes": b"klnt", b"key": b"key", b"limit": b"5"}
    assert Channel.from_redis(raw) == channel
    assert channel.to_redis() == {k.decode(): v.decode() for k, v in raw.items()}
    assert Channel.from_redis({b"name": b"#x", b"created": b"not a number"}).created == 0.0


def test_a_user_from_the_fields_names_reads_has_them_and_nothing_else():
    user = User("u1", "Alice", "~alice", "192.0.2.1", "Alice A.", "alice", "away", "iw", "ircd-1", 1800, True)
    values = [user.to_redis()[name].encode() for name in NAMES_FIELDS]
    assert User.from_names_fields("u1", values) == User("u1", "Alice", "~alice", "192.0.2.1", modes="iw")
    assert User.from_names_fields("u1", ["Bob", "~bob", None, None]) == User("u1", "Bob", "~bob")
    assert User.from_names_fields("u1", [None, None, None, None]) is None  # no record


def test_a_status_knows_its_rank_and_its_symbols():
    assert Status("o").at_least("v") and Status("v").at_least("v") and not Status("v").operator
    assert not Status("").at_least("v")
    assert Status("ov").symbols(every=True) == "@+" and Status("ov").symbols(every=False) == "@"
    assert Status("v").changed("o", True) == Status("ov") and Status("ov").changed("o", False) == Status("v")


def test_whowas_and_list_entries_round_trip():
    entry = WhowasEntry("bob", "~bob", "h", "Bob", "irc.test", 1800, "bob")
    assert WhowasEntry.from_json(entry.to_json()) == entry
    assert ListEntry.from_redis(b"*!*@h", b"op!o@h 1800") == ListEntry("*!*@h", "op!o@h", 1800)


LINE = Line("a!b@c", "JOIN", ["#c", "acct", "Real"], {"time": "t"}, needs=("extended-join",),
            alt=Line("a!b@c", "JOIN", ["#c"], {"time": "t"}), id="e1")


def test_events_round_trip_through_json():
    channel = ChannelEvent("ircd-1", "#c", LINE, exclude="u1", leaves="u2")
    assert ChannelEvent.from_json(channel.to_json()) == channel
    for payload in (LINE, Numeric("730", ["a!b@c"]), Kill("Killed (op (bye))")):
        direct = DirectEvent("ircd-1", ("u1", "u2"), payload)
        assert DirectEvent.from_json(direct.to_json()) == direct
    broadcast = BroadcastEvent("ircd-2", Line("o!p@h", "WALLOPS", ["hi"], umode="w"))
    assert BroadcastEvent.from_json(broadcast.to_json()) == broadcast
    assert json.loads(channel.to_json())["v"] == 1


def test_an_event_is_written_as_compact_json_with_its_text_as_it_is():
    """Replicas of two versions share the bus during a rolling upgrade: an event is the JSON
    the json module wrote before (compact, non-ASCII kept, control characters escaped)."""
    line = Line("zoë!b@c", "QUIT", ["Quit: 😀 \"bye\"\\ \x01"], {"time": "t"}, id="q1")
    event = ChannelEvent("ircd-1", "#café", line)
    written = event.to_json()
    assert written == json.dumps(json.loads(written), ensure_ascii=False, separators=(",", ":"))
    assert "#café" in written and "😀" in written and "\\u0001" in written
    assert ChannelEvent.from_json(written.encode()) == event


@pytest.mark.parametrize("raw", [
    b"not json", b"[]", b'{"v": 2, "origin": "x", "channel": "#c", "line": {"command": "JOIN"}}',
    b'{"origin": "x", "channel": "#c", "line": {"command": "JOIN"}}',
    b'{"v": 1, "origin": "x", "channel": "#c"}',
    b'{"v": 1, "origin": "x", "channel": "#c", "line": {"command": "JOIN", "params": "#c"}}',
    b'{"v": 1, "origin": "x", "channel": "#c", "line": {"command": "JOIN", "tags": {"a": 1}}}',
])
def test_a_malformed_or_unknown_version_event_is_refused(raw):
    with pytest.raises(MalformedEvent):
        ChannelEvent.from_json(raw)
