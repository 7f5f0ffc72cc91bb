"""IRCv3 draft/multiline in the gateway, against the spec's text and Ergo's behaviour (irctest's
multiline tests): the capability, a batch's checks (apps/ircd/multiline.py, alone and through
a gateway), its delivery as a batch or as lines, its history, and every bad batch answered
with its FAIL and delivering nothing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Unpack

import fakeredis
import pytest

from apps.chat.conversations import MessageLine
from apps.ircd.capabilities import Offer, offered
from apps.ircd.errors import Fail
from apps.ircd.multiline import ClientBatches, Limits
from apps.ircd.server import IrcServer
from apps.ircd.settings import IrcdSettings
from tests.unit.ircd_support import GatewaySettings, LineClient, commands, connect, running_gateway
from tests.unit.test_ircd_flood import wait_for

BASE = "message-tags batch echo-message server-time labeled-response"
ML = f"{BASE} draft/multiline"
LIMITS = Limits(max_bytes=20, max_lines=3)


def tags_of(line: str) -> dict[str, str]:
    if not line.startswith("@"):
        return {}
    return {k: v for k, _, v in (item.partition("=") for item in line[1:].split(" ", 1)[0].split(";"))}


def body(line: str) -> str:
    """A line without its tags."""
    return line.split(" ", 1)[1] if line.startswith("@") else line


def refused(code: str, call, *args, **kwargs) -> Fail:
    with pytest.raises(Fail) as caught:
        call(*args, **kwargs)
    assert caught.value.command == "BATCH" and caught.value.code == code, caught.value
    return caught.value


# -- the batch alone (apps/ircd/multiline.py) ------------------------------------------------

def opened(ref: str = "r1", target: str = "#c") -> ClientBatches:
    batches = ClientBatches()
    batches.start(ref, ["draft/multiline", target], {"+draft/reply": "1-0"}, label="L")
    return batches


def test_a_batch_keeps_its_lines_and_counts_bytes_as_the_spec_does():
    batches = opened()
    batches.add("r1", "PRIVMSG", ["#C", "hello"], False, LIMITS)  # the target in another case
    batches.add("r1", "PRIVMSG", ["#c", ""], False, LIMITS)
    batches.add("r1", "PRIVMSG", ["#c", "how"], True, LIMITS)
    done = batches.end("r1")
    assert done is not None and done.label == "L" and done.tags == {"+draft/reply": "1-0"}
    assert done.lines == [MessageLine("hello"), MessageLine(""), MessageLine("how", concat=True)]
    assert done.size == 5 + 1 + 0 + 3  # a line feed before the blank line, none before a concat one
    assert batches.open is None


def test_the_limits_are_inclusive_and_refused_one_past():
    batches = opened()
    batches.add("r1", "PRIVMSG", ["#c", "x" * 9], False, LIMITS)
    batches.add("r1", "PRIVMSG", ["#c", "y" * 10], False, LIMITS)  # 9 + 1 + 10 = 20: the limit
    error = refused("MULTILINE_MAX_BYTES", batches.add, "r1", "PRIVMSG", ["#c", "z"], True, LIMITS)
    assert error.context == ("20",)
    batches = opened()
    for _ in range(3):
        batches.add("r1", "PRIVMSG", ["#c", ""], False, LIMITS)
    error = refused("MULTILINE_MAX_LINES", batches.add, "r1", "PRIVMSG", ["#c", ""], False, LIMITS)
    assert error.context == ("3",)
    batches = opened()
    refused("MULTILINE_MAX_BYTES", batches.add, "r1", "PRIVMSG", ["#c", "é" * 11], False, LIMITS)  # 22 bytes


@pytest.mark.parametrize(("command", "params", "concat", "code"), [
    ("PRIVMSG", ["#other", "hi"], False, "MULTILINE_INVALID_TARGET"),
    ("PRIVMSG", ["#c", ""], True, "MULTILINE_INVALID"),  # a blank concat line
    ("TAGMSG", ["#c"], False, "MULTILINE_INVALID"),
    ("PRIVMSG", ["#c"], False, "MULTILINE_INVALID"),  # no text at all
])
def test_a_bad_line_refuses_the_batch_and_the_rest_of_it_is_ignored(command, params, concat, code):
    batches = opened()
    batches.add("r1", "PRIVMSG", ["#c", "fine"], False, LIMITS)
    error = refused(code, batches.add, "r1", command, params, concat, LIMITS)
    if code == "MULTILINE_INVALID_TARGET":
        assert error.context == ("#c", "#other")
    assert batches.open is None
    batches.add("r1", "PRIVMSG", ["#c", "more"], False, LIMITS)  # quietly dropped: no second FAIL
    assert batches.end("r1") is None and batches.open is None
    refused("MULTILINE_INVALID", batches.end, "r1")  # its end was seen: now it is unknown


def test_privmsg_and_notice_are_not_mixed():
    batches = opened()
    batches.add("r1", "NOTICE", ["#c", "a"], False, LIMITS)
    refused("MULTILINE_INVALID", batches.add, "r1", "PRIVMSG", ["#c", "b"], False, LIMITS)


def test_a_batch_of_blank_lines_or_no_line_is_not_a_message():
    batches = opened()
    batches.add("r1", "PRIVMSG", ["#c", ""], False, LIMITS)
    refused("MULTILINE_INVALID", batches.end, "r1")
    refused("MULTILINE_INVALID", opened().end, "r1")


def test_a_concat_tag_on_the_first_line_joins_nothing():
    batches = opened()
    batches.add("r1", "PRIVMSG", ["#c", "first"], True, LIMITS)
    done = batches.end("r1")
    assert done is not None and done.lines == [MessageLine("first")]


def test_nested_and_duplicate_openings_drop_both_batches():
    batches = opened("r1")
    refused("MULTILINE_INVALID", batches.start, "r2", ["draft/multiline", "#c"], {})
    assert batches.open is None
    batches.add("r1", "PRIVMSG", ["#c", "x"], False, LIMITS)  # both ignored from now on
    batches.add("r2", "PRIVMSG", ["#c", "x"], False, LIMITS)
    assert batches.end("r2") is None and batches.end("r1") is None
    batches = opened("r1")
    refused("MULTILINE_INVALID", batches.start, "r1", ["draft/multiline", "#c"], {})
    assert batches.open is None and batches.end("r1") is None
    again = opened("r1")  # a reference is free again once its batch has ended
    again.add("r1", "PRIVMSG", ["#c", "x"], False, LIMITS)
    assert again.end("r1") is not None


def test_a_line_of_a_batch_that_is_not_open_refuses_the_open_one():
    batches = opened("r1")
    refused("MULTILINE_INVALID", batches.add, "other", "PRIVMSG", ["#c", "x"], False, LIMITS)
    assert batches.open is None
    refused("MULTILINE_INVALID", ClientBatches().add, "r9", "PRIVMSG", ["#c", "x"], False, LIMITS)


@pytest.mark.parametrize(("ref", "params", "negotiated", "code"), [
    ("r1", ["draft/multiline"], True, "MULTILINE_INVALID"),  # no target
    ("r1", ["draft/multiline", "#a,#b"], True, "MULTILINE_INVALID"),  # several
    ("r1", ["draft/multiline", "#c"], False, "MULTILINE_INVALID"),  # draft/multiline or batch not negotiated
    ("bad_ref!", ["draft/multiline", "#c"], True, "MULTILINE_INVALID"),
    ("x" * 65, ["draft/multiline", "#c"], True, "MULTILINE_INVALID"),
    ("r1", ["example.com/other", "#c"], True, "INVALID_PARAMS"),
    ("r1", [], True, "INVALID_PARAMS"),
])
def test_bad_openings_are_refused(ref, params, negotiated, code):
    batches = ClientBatches()
    refused(code, batches.start, ref, params, {}, negotiated=negotiated)
    assert batches.open is None


def test_other_commands_break_a_batch_but_keep_alives_do_not():
    batches = opened()
    for command in ("PING", "PONG", "PRIVMSG", "NOTICE", "BATCH"):
        assert batches.interrupted(command) is None
    assert batches.open is not None
    error = batches.interrupted("JOIN")
    assert error is not None and error.code == "MULTILINE_INVALID" and batches.open is None
    assert batches.end("r1") is None


def test_refused_references_kept_are_bounded():
    batches = ClientBatches()
    for i in range(50):
        with pytest.raises(Fail):
            batches.add(f"r{i}", "PRIVMSG", ["#c", "x"], False, LIMITS)
    assert len(batches._dropped) <= 8


# -- the capability ----------------------------------------------------------------------------

def test_the_capability_says_its_limits_from_the_settings(monkeypatch):
    assert offered(Offer(IrcdSettings()))["draft/multiline"] == "max-bytes=4096,max-lines=100"
    monkeypatch.setenv("MULTILINE_MAX_BYTES", "2000")
    monkeypatch.setenv("MULTILINE_MAX_LINES", "7")
    assert offered(Offer(IrcdSettings()))["draft/multiline"] == "max-bytes=2000,max-lines=7"
    monkeypatch.setenv("MULTILINE_MAX_BYTES", "0")
    assert "draft/multiline" not in offered(Offer(IrcdSettings()))
    monkeypatch.setenv("MULTILINE_MAX_LINES", "0")
    with pytest.raises(ValueError):
        IrcdSettings()


# -- through a gateway ----------------------------------------------------------------------

Three = tuple[IrcServer, LineClient, LineClient, LineClient]


@contextlib.asynccontextmanager
async def channel_of_three(**overrides: Unpack[GatewaySettings]) -> AsyncIterator[Three]:
    """alice and bob with draft/multiline, carol without, all in #test."""
    async with running_gateway(**overrides) as gateway:
        clients = []
        for nick, caps in (("alice", ML), ("bob", ML), ("carol", BASE)):
            client = await connect(gateway)
            await client.register(nick, caps=caps)
            await client.send("JOIN #test")
            await client.sync()
            clients.append(client)
        for client in clients:
            await client.sync()
        yield gateway, clients[0], clients[1], clients[2]
        for client in clients:
            await client.close()


SAID = ["@batch=123 PRIVMSG #test hello", "@batch=123 PRIVMSG #test :", "@batch=123 PRIVMSG #test :how is ",
        "@batch=123;draft/multiline-concat PRIVMSG #test :everyone?"]


async def stored(gateway: IrcServer, target: str = "#test") -> list:
    return await gateway.chatlog.latest(gateway.chatlog.channel(target), 10)


async def test_a_batch_is_one_message_as_a_batch_to_those_with_the_capability_and_lines_to_others():
    async with channel_of_three() as (gateway, alice, bob, carol):
        await alice.send("@label=xyz;+draft/reply=1-0 BATCH +123 draft/multiline #test", *SAID, "BATCH -123")
        echo = await alice.sync()
        start, end = tags_of(echo[0]), echo[-1]
        assert body(echo[0]).startswith(":alice!~alice@127.0.0.1 BATCH +") and body(echo[0]).endswith(
            " draft/multiline #test")
        ref = body(echo[0]).split("BATCH +")[1].split(" ")[0]
        assert start["label"] == "xyz" and start["msgid"] and start["time"] and start["+draft/reply"] == "1-0"
        assert end == f":alice!~alice@127.0.0.1 BATCH -{ref}"
        inner = echo[1:-1]
        assert [body(line) for line in inner] == [":alice!~alice@127.0.0.1 PRIVMSG #test hello",
                                                 ":alice!~alice@127.0.0.1 PRIVMSG #test :",
                                                 ":alice!~alice@127.0.0.1 PRIVMSG #test :how is ",
                                                 ":alice!~alice@127.0.0.1 PRIVMSG #test everyone?"]
        assert [tags_of(line) for line in inner] == [{"batch": ref}] * 3 + [
            {"batch": ref, "draft/multiline-concat": ""}]
        relay = await bob.sync()
        assert [body(line) for line in relay] == [body(line) for line in echo]
        assert {k: v for k, v in tags_of(relay[0]).items() if k != "label"} == {
            k: v for k, v in start.items() if k != "label"}
        assert "label" not in tags_of(relay[0])
        fallback = await carol.sync()
        assert [body(line) for line in fallback] == [":alice!~alice@127.0.0.1 PRIVMSG #test hello",
                                                    ":alice!~alice@127.0.0.1 PRIVMSG #test :how is ",
                                                    ":alice!~alice@127.0.0.1 PRIVMSG #test everyone?"]
        assert [tags_of(line).get("msgid") for line in fallback] == [start["msgid"], None, None]
        assert all(tags_of(line)["time"] == start["time"] and tags_of(line)["+draft/reply"] == "1-0"
                   and "batch" not in tags_of(line) for line in fallback)
        [message] = await stored(gateway)
        assert message.id == start["msgid"] and message.text == "hello\n\nhow is everyone?"
        assert [line.concat for line in message.lines] == [False, False, False, True]
        assert gateway.counts["posted"] == 1


async def test_history_replays_a_batch_inside_the_chathistory_batch_or_the_lines():
    async with channel_of_three() as (_, alice, bob, carol):
        await alice.send("BATCH +123 draft/multiline #test", *SAID, "BATCH -123")
        msgid = tags_of((await alice.sync())[0])["msgid"]
        await bob.sync(), await carol.sync()  # the live delivery
        await bob.send("CHATHISTORY LATEST #test * 10")
        got = await bob.sync()
        outer = body(got[0]).split("BATCH +")[1].split(" ")[0]
        assert body(got[0]).endswith("chathistory #test") and body(got[-1]).endswith(f"BATCH -{outer}")
        start = tags_of(got[1])
        assert start["batch"] == outer and start["msgid"] == msgid and " BATCH +ml" in got[1]
        inner = body(got[1]).split("BATCH +")[1].split(" ")[0]
        assert [tags_of(line)["batch"] for line in got[2:6]] == [inner] * 4
        assert tags_of(got[6]) == {"batch": outer} and body(got[6]).endswith(f"BATCH -{inner}")
        await carol.send("CHATHISTORY LATEST #test * 10")
        got = await carol.sync()
        lines = [line for line in got if " PRIVMSG " in line]
        assert [body(line).split("#test ", 1)[1] for line in lines] == ["hello", ":how is ", "everyone?"]
        assert [tags_of(line).get("msgid") for line in lines] == [msgid, None, None]


async def test_a_client_without_batch_gets_the_lines_and_may_not_send_a_batch():
    async with channel_of_three() as (gateway, alice, _, _):
        dave = await connect(gateway)
        await dave.register("dave", caps="draft/multiline")  # no batch: the fallback
        await dave.send("JOIN #test")
        await dave.sync()
        await alice.sync()
        await alice.send("BATCH +1 draft/multiline #test", "@batch=1 PRIVMSG #test :one",
                         "@batch=1 PRIVMSG #test :two",
                         "BATCH -1")
        await alice.sync()
        assert await dave.sync() == [":alice!~alice@127.0.0.1 PRIVMSG #test one",
                                     ":alice!~alice@127.0.0.1 PRIVMSG #test two"]
        await dave.send("BATCH +2 draft/multiline #test")
        assert (await dave.sync())[-1].startswith(":irc.test FAIL BATCH MULTILINE_INVALID ")
        await dave.close()


async def test_a_private_multiline_message_and_one_to_a_channels_operators():
    async with channel_of_three() as (gateway, alice, bob, carol):
        await alice.send("BATCH +p draft/multiline bob", "@batch=p PRIVMSG bob :line one",
                         "@batch=p PRIVMSG bob :line two", "BATCH -p")
        await alice.sync()
        got = await bob.sync()
        assert body(got[0]).endswith(" draft/multiline bob") and len(got) == 4
        alice_uid, bob_uid = await _uid(gateway, "alice"), await _uid(gateway, "bob")
        private = gateway.chatlog.private(f"~{alice_uid}", f"~{bob_uid}")
        [message] = await gateway.chatlog.latest(private, 10)
        assert message.text == "line one\nline two"
        # alice created #test: she is its operator, and the only one a STATUSMSG to @#test reaches.
        await bob.send("BATCH +s draft/multiline @#test", "@batch=s PRIVMSG @#test :to ops",
                       "@batch=s PRIVMSG @#test :only", "BATCH -s")
        await bob.sync()
        got = await alice.sync_until(lambda line: "BATCH -" in line)
        assert body(got[0]).endswith(" draft/multiline @#test")
        assert [body(line) for line in got[1:-1]] == [":bob!~bob@127.0.0.1 PRIVMSG @#test :to ops",
                                                     ":bob!~bob@127.0.0.1 PRIVMSG @#test only"]
        assert await carol.sync() == []  # not an operator
        assert [m.text for m in await stored(gateway)] == []  # STATUSMSG is not history


async def _uid(gateway: IrcServer, nick: str) -> str:
    user = await gateway.store.user_by_nick(nick)
    assert user is not None
    return user.uid


async def test_the_channels_rules_apply_to_the_whole_batch():
    async with channel_of_three() as (gateway, alice, bob, carol):
        outsider = await connect(gateway)
        await outsider.register("dave", caps=ML)
        await outsider.send("BATCH +o draft/multiline #test", "@batch=o PRIVMSG #test :hi", "BATCH -o")
        assert [commands(await outsider.sync())] == [["404"]]  # +n: not a member
        await alice.send("MODE #test +m")
        await alice.sync()
        await carol.sync(), await bob.sync()
        await bob.send("BATCH +m draft/multiline #test", "@batch=m PRIVMSG #test :hi", "BATCH -m")
        assert commands(await bob.sync()) == ["404"]  # +m: not voiced
        await bob.send("BATCH +n draft/multiline #test", "@batch=n NOTICE #test :hi", "BATCH -n")
        assert await bob.sync() == []  # a NOTICE is never answered
        await alice.send("MODE #test -m+b bob!*@*")
        await alice.sync()
        await bob.send("BATCH +b draft/multiline #test", "@batch=b PRIVMSG #test :hi", "BATCH -b")
        assert commands(await bob.sync())[-1] == "404"  # banned
        await bob.send("BATCH +x draft/multiline #nowhere", "@batch=x PRIVMSG #nowhere :hi", "BATCH -x")
        assert commands(await bob.sync()) == ["403"]
        heard = await carol.sync()
        assert not any(" PRIVMSG " in line or " NOTICE " in line or "BATCH" in line for line in heard)
        assert await stored(gateway) == []
        await outsider.close()


@pytest.mark.parametrize(("lines", "code"), [
    (["@batch=9 PRIVMSG #test :hi", "@batch=9 PRIVMSG #other :hi"], "MULTILINE_INVALID_TARGET #test #other"),
    (["@batch=9 PRIVMSG #test :hi", "@batch=9;draft/multiline-concat PRIVMSG #test :"], "MULTILINE_INVALID"),
    (["@batch=9 PRIVMSG #test :hi", "@batch=9 NOTICE #test :hi"], "MULTILINE_INVALID"),
    (["@batch=9 PRIVMSG #test :hi", "@batch=8 PRIVMSG #test :hi"], "MULTILINE_INVALID"),
    (["@batch=9 PRIVMSG #test :hi", "@batch=9 TAGMSG #test"], "MULTILINE_INVALID"),
    (["@batch=9 PRIVMSG #test :" + "x" * 400] * 11, "MULTILINE_MAX_BYTES 4096"),
    (["@batch=9 PRIVMSG #test :x"] * 101, "MULTILINE_MAX_LINES 100"),
    (["BATCH +10 draft/multiline #test"], "MULTILINE_INVALID"),  # nested
    (["JOIN #elsewhere"], "MULTILINE_INVALID"),  # another command
])
async def test_a_bad_batch_is_answered_once_and_delivers_nothing(lines, code):
    async with channel_of_three(flood_lines=1000) as (gateway, alice, bob, carol):
        await alice.send("@label=L1 BATCH +9 draft/multiline #test", *lines, "@batch=9 PRIVMSG #test :after",
                         "BATCH -9")
        got = await alice.sync()
        fails = [line for line in got if " FAIL " in line]
        assert len(fails) == 1 and body(fails[0]).startswith(f":irc.test FAIL BATCH {code} "), got
        assert tags_of(fails[0]).get("label") == "L1"  # the answer the opening's label waited for
        assert not any(" PRIVMSG " in line or "BATCH +" in line for line in got if line not in fails)
        assert await bob.sync() == [] and await carol.sync() == []
        assert await stored(gateway) == []


async def test_a_refusal_that_leaves_the_open_batch_does_not_take_its_label():
    async with channel_of_three() as (gateway, alice, _, _):
        await alice.send("@label=L2 BATCH +g draft/multiline #test", "@batch=g PRIVMSG #test :kept",
                         "BATCH +h example.com/other", "BATCH -g")
        got = await alice.sync()
        fail = next(line for line in got if " FAIL " in line)
        assert body(fail).startswith(":irc.test FAIL BATCH INVALID_PARAMS example.com/other ")
        assert "label" not in tags_of(fail)
        assert tags_of(next(line for line in got if " BATCH +" in line))["label"] == "L2"  # the echo
        assert (await stored(gateway))[0].text == "kept"


async def test_a_batch_of_blank_lines_is_refused_at_its_end():
    async with channel_of_three() as (gateway, alice, bob, _):
        await alice.send("BATCH +e draft/multiline #test", "@batch=e PRIVMSG #test :",
                         "@batch=e PRIVMSG #test :",
                         "BATCH -e", "BATCH +f draft/multiline #test", "BATCH -f")
        got = await alice.sync()
        assert [body(line).split(" :")[0] for line in got] == [":irc.test FAIL BATCH MULTILINE_INVALID"] * 2
        assert await bob.sync() == [] and await stored(gateway) == []


async def test_an_interrupting_command_still_runs_and_keep_alives_do_not_interrupt():
    async with channel_of_three() as (gateway, alice, bob, _):
        await alice.send("BATCH +k draft/multiline #test", "@batch=k PRIVMSG #test :a", "PONG x", "PING y",
                         "@batch=k PRIVMSG #test :b", "BATCH -k")
        got = await alice.sync()
        assert "FAIL" not in commands(got) and "PONG" in commands(got)
        assert (await stored(gateway))[0].text == "a\nb"
        await alice.send("BATCH +q draft/multiline #test", "@batch=q PRIVMSG #test :a", "PART #test",
                         "BATCH -q")
        got = await alice.sync()
        assert commands(got) == ["FAIL", "PART"]
        assert any(" PART #test" in line for line in await bob.sync())


async def test_lines_outside_a_batch_and_batches_before_registration_are_refused():
    async with running_gateway() as gateway:
        early = await connect(gateway)
        await early.send("CAP LS 302", f"CAP REQ :{ML}", "BATCH +1 draft/multiline #test")
        assert commands(await early.sync())[-1] == "451"
        await early.send("NICK early", "USER early 0 * :Early", "CAP END")
        await early.sync()
        # The end of the refused "nope" is quiet: one mistake, one FAIL.
        await early.send("@batch=nope PRIVMSG #test :hi", "BATCH -nope", "BATCH -other", "BATCH nope")
        got = await early.sync()
        assert [body(line).split(" ")[3] for line in got] == ["MULTILINE_INVALID"] * 3
        await early.close()


async def test_an_unterminated_batch_dies_with_its_connection():
    async with channel_of_three() as (gateway, alice, bob, _):
        await alice.send("BATCH +u draft/multiline #test", "@batch=u PRIVMSG #test :never sent")
        await alice.sync()
        await alice.close()
        got = await bob.sync_until(lambda line: " QUIT " in line)
        assert [commands([line])[0] for line in got] == ["QUIT"]
        assert await stored(gateway) == []


async def test_the_lines_of_a_batch_count_against_flood_control_and_the_batch_still_arrives_whole():
    async with channel_of_three(flood_lines=5, flood_window=1.0) as (gateway, alice, bob, _):
        throttled = gateway.counts["throttled"]
        said = [f"@batch=f PRIVMSG #test :line {i}" for i in range(12)]
        await alice.send("BATCH +f draft/multiline #test", *said,
                         "BATCH -f")
        await wait_for(lambda: gateway.counts["throttled"] > throttled)
        got = await bob.sync_until(lambda line: "BATCH -" in line, rounds=50)
        assert len([line for line in got if " PRIVMSG " in line]) == 12
        assert (await stored(gateway))[0].text == "\n".join(f"line {i}" for i in range(12))


async def test_a_batch_crosses_replicas_as_a_batch_and_as_lines():
    shared = fakeredis.FakeServer()
    async with running_gateway(shared, instance="ircd-a") as one, \
            running_gateway(shared, instance="ircd-b") as two:
        alice, bob, carol = await connect(one), await connect(two), await connect(two)
        for client, nick, caps in ((alice, "alice", ML), (bob, "bob", ML), (carol, "carol", BASE)):
            await client.register(nick, caps=caps)
            await client.send("JOIN #test")
            await client.sync()
        await alice.sync_until(lambda line: ":carol!" in line)
        await alice.send("BATCH +123 draft/multiline #test", *SAID, "BATCH -123")
        echo = await alice.sync()
        msgid = tags_of(next(line for line in echo if " BATCH +" in line))["msgid"]
        got = await bob.sync_until(lambda line: "BATCH -" in line)
        got = got[got.index(next(line for line in got if "BATCH +" in line)):]
        assert tags_of(got[0])["msgid"] == msgid and len(got) == 6
        assert tags_of(got[4]).get("draft/multiline-concat") == ""
        heard = await carol.sync_until(lambda line: "everyone?" in line)
        fallback = [line for line in heard if " PRIVMSG " in line]
        assert [tags_of(line).get("msgid") for line in fallback] == [msgid, None, None]
        for client in (alice, bob, carol):
            await client.close()
