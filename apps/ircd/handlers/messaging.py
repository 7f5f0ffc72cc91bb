"""PRIVMSG, NOTICE and TAGMSG to channels and nicks; CHATHISTORY from the channel streams."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.chat import numerics as n
from apps.chat.conversations import ChatMessage, InvalidRef, Ref, party
from apps.ircd.client import Client, server_time
from apps.ircd.handlers.channels import banned
from apps.ircd.handlers.connection import channels_of
from apps.ircd.protocol import Message, casefold, format_line, is_channel
from apps.ircd.registry import command


@command("PRIVMSG", "NOTICE", "TAGMSG")
async def privmsg(client: Client, message: Message) -> None:
    cmd = message.command
    quiet = cmd == "NOTICE"  # a NOTICE never gets an automatic reply
    if not message.params or not message.params[0]:
        if not quiet:
            client.reply(n.ERR_NORECIPIENT, f"No recipient given ({cmd})")
        return
    if cmd != "TAGMSG" and (len(message.params) < 2 or not message.params[1]):
        if not quiet:
            client.reply(n.ERR_NOTEXTTOSEND, "No text to send")
        return
    targets = message.params[0].split(",")
    if len(targets) > client.server.settings.max_targets:
        if not quiet:
            client.reply(n.ERR_TOOMANYTARGETS, message.params[0], "Too many targets")
        return
    client_tags = ({k: v for k, v in message.tags.items() if k.startswith("+")}
                   if "message-tags" in client.caps else {})
    text = message.params[1] if cmd != "TAGMSG" else ""
    for target in targets:
        rank = target[:1] if target[:1] in STATUSMSG and is_channel(target[1:]) else ""
        if rank or is_channel(target):
            await to_channel(client, cmd, target[len(rank):], text, client_tags, quiet, rank=rank)
        else:
            await to_nick(client, cmd, target, text, client_tags, quiet)


#: STATUSMSG: `@#chan` reaches the channel's operators, `+#chan` its operators and voiced.
STATUSMSG = {"@": "o", "+": "ov"}


def _tags(client: Client, client_tags: dict[str, str]) -> dict[str, str]:
    tags = dict(client_tags)
    if client.account:
        tags["account"] = client.account
    return tags


async def to_channel(client: Client, cmd: str, target: str, text: str, client_tags: dict[str, str],
                     quiet: bool, *, rank: str = "") -> None:
    """A message to a channel, or (`rank` "@" or "+", STATUSMSG) to its members of that rank."""
    server, store = client.server, client.server.store
    cf = casefold(target)
    info, status = await store.channel_and_status(cf, client.uid)
    if not info:
        if not quiet:
            client.reply(n.ERR_NOSUCHCHANNEL, target, "No such channel")
        return
    display = info.get("name", target)
    modes = info.get("modes", "")
    refusal = ""
    if status is None and "n" in modes:
        refusal = "Cannot send to channel (no external messages)"
    elif "m" in modes and not status:
        refusal = "Cannot send to channel (+m)"
    elif not status and banned(await store.masks(cf, "be"), client.prefix):
        refusal = "Cannot send to channel (+b)"
    if refusal:
        if not quiet:
            client.reply(n.ERR_CANNOTSENDTOCHAN, display, refusal)
        return
    client.last_message = server.clock()
    if rank:
        event = await to_rank(client, cmd, cf, rank + display, text, client_tags, rank)
    elif cmd == "TAGMSG":  # not history: it goes out on the gateways' own fan-out
        event = server.event(client.prefix, cmd, [display], tags=_tags(client, client_tags))
        event["tags"]["msgid"] = server.new_id()
        await server.to_channels([cf], event, exclude=client.uid)
    else:
        # Stored and published in one step by the kit's chat log; the other replicas get the
        # record on the channel's live channel, this one delivers to its own members now.
        stored = await server.chatlog.append_channel(display, ChatMessage(
            command=cmd, source=client.prefix, target=display, text=text, account=client.account,
            tags=client_tags, origin=server.instance))
        event = server.record_event(stored)
        server.deliver_local([cf], event, exclude=client.uid)
    server.counts["posted"] += 1
    if "echo-message" in client.caps:
        client.send_event(event)


async def to_rank(client: Client, cmd: str, cf: str, target: str, text: str,
                  client_tags: dict[str, str], rank: str) -> dict[str, Any]:
    """A STATUSMSG: sent to each member of that rank by uid (on whichever replica holds it),
    not through the channel's fan-out, and not kept in the channel's history, which every
    member may read."""
    server, store = client.server, client.server.store
    letters = STATUSMSG[rank]
    wanted = [uid for uid, status in (await store.members(cf)).items()
              if uid != client.uid and any(letter in status for letter in letters)]
    users = await store.users(wanted)
    params = [target] if cmd == "TAGMSG" else [target, text]
    event = server.event(client.prefix, cmd, params, tags=_tags(client, client_tags))
    event["tags"]["msgid"] = server.new_id()
    await server.to_uids({uid: user.get("inst", "") for uid, user in users.items()}, event)
    return event


async def to_nick(client: Client, cmd: str, target: str, text: str, client_tags: dict[str, str],
                  quiet: bool) -> None:
    server = client.server
    user = await server.store.user_by_nick(casefold(target))
    if user is None:
        if not quiet:
            client.reply(n.ERR_NOSUCHNICK, target, "No such nick/channel")
        return
    client.last_message = server.clock()
    local = server.clients.get(user["uid"])
    if cmd == "TAGMSG":
        event = server.event(client.prefix, cmd, [user["nick"]], tags=_tags(client, client_tags))
        event["tags"]["msgid"] = server.new_id()
        if local is client:
            client.deliver_unlabelled(event)
        else:
            await server.to_uids({user["uid"]: user.get("inst", "")}, event)
    else:
        # The private conversation's history, published to the recipient's replica (through
        # the nick's live channel) unless the recipient is here.
        live = [] if local is not None else [server.chatlog.nick_live(user["nick"])]
        sender = party(client.uid, client.account)
        stored = await server.chatlog.append_private(
            sender, party(user["uid"], user.get("account", "")),
            ChatMessage(command=cmd, source=client.prefix, target=user["nick"], text=text,
                        account=client.account, tags=client_tags, party=sender, origin=server.instance), live)
        event = server.record_event(stored)
        if local is not None:
            local.deliver_unlabelled(event)
            server.counts["messages"] += 1
    server.counts["posted"] += 1
    if cmd == "PRIVMSG" and user.get("away"):
        client.reply(n.RPL_AWAY, user["nick"], user["away"])
    if "echo-message" in client.caps:
        client.send_event(event)


# -- CHATHISTORY -------------------------------------------------------------------------------

def _ref(reference: str) -> Ref | None:
    """A message reference (msgid=... or timestamp=...); None if malformed."""
    kind, _, value = reference.partition("=")
    try:
        if kind == "msgid" and value:
            return Ref.msgid(value)
        if kind == "timestamp" and value:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return Ref.time(int(when.timestamp() * 1000))
    except (InvalidRef, ValueError):
        return None
    return None


@command("CHATHISTORY", params=1)
async def chathistory(client: Client, message: Message) -> None:
    sub = message.params[0].upper()
    params = message.params[1:]
    if sub == "TARGETS":
        await chathistory_targets(client, params)
        return
    if sub not in ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"):
        client.fail("CHATHISTORY", "INVALID_PARAMS", sub, "Unknown subcommand")
        return
    needed = 4 if sub == "BETWEEN" else 3
    if len(params) < needed:
        client.fail("CHATHISTORY", "INVALID_PARAMS", sub, "Not enough parameters")
        return
    target = params[0]
    server = client.server
    chatlog = server.chatlog
    if is_channel(target):
        # The one history rule (apps/chat/access.py HistoryAccess), as the messages service
        # applies it over HTTP: in the channel, this connection or another of its account.
        readers = await server.history_access.connections_of(client.account) if client.account else []
        if not await server.history_access.may_read_channel(target, [client.uid, *readers]):
            client.fail("CHATHISTORY", "INVALID_TARGET", sub, target, "No history for that target")
            return
        conversation = chatlog.channel(target)
    else:
        # The conversation with whoever holds the nick now, or with the account of that name
        # when nobody does: a guest's conversations are its connection's, so they cannot be
        # reached through a nick it no longer holds.
        other = await server.store.user_by_nick(casefold(target))
        correspondent = party(other["uid"], other.get("account", "")) if other else casefold(target)
        conversation = chatlog.private(party(client.uid, client.account), correspondent)
    try:
        limit = int(params[-1])
        if limit < 1:
            raise ValueError(limit)
    except ValueError:
        client.fail("CHATHISTORY", "INVALID_PARAMS", sub, "Bad limit")
        return
    refs = [None if sub == "LATEST" and params[1] == "*" else _ref(params[1])]
    if sub == "BETWEEN":
        refs.append(_ref(params[2]))
    if any(r is None for r in refs[1:]) or (sub != "LATEST" and refs[0] is None) or \
            (sub == "LATEST" and params[1] != "*" and refs[0] is None):
        client.fail("CHATHISTORY", "INVALID_PARAMS", sub, "Bad message reference")
        return
    first = refs[0]
    if sub == "LATEST":
        found = await chatlog.latest(conversation, limit, after=first)
    elif sub == "BEFORE":
        found = await chatlog.before(conversation, first, limit)  # type: ignore[arg-type]
    elif sub == "AFTER":
        found = await chatlog.after(conversation, first, limit)  # type: ignore[arg-type]
    elif sub == "AROUND":
        found = await chatlog.around(conversation, first, limit)  # type: ignore[arg-type]
    else:
        found = await chatlog.between(conversation, first, refs[1], limit)  # type: ignore[arg-type]
    replay(client, target, found)


async def chathistory_targets(client: Client, params: list[str]) -> None:
    """`CHATHISTORY TARGETS <timestamp> <timestamp> <limit>`: the client's channels and private
    correspondents whose LAST message falls strictly between the two times, oldest first, in
    a `draft/chathistory-targets` batch. A correspondent is named by its account, or for a
    guest by the nick it had in the last message."""
    if len(params) < 3:
        client.fail("CHATHISTORY", "INVALID_PARAMS", "TARGETS", "Not enough parameters")
        return
    bounds = [_ref(p) if p.startswith("timestamp=") else None for p in params[:2]]
    try:
        limit = int(params[2])
    except ValueError:
        limit = 0
    if bounds[0] is None or bounds[1] is None or limit < 1:
        client.fail("CHATHISTORY", "INVALID_PARAMS", "TARGETS", "Bad timestamp or limit")
        return
    server, chatlog = client.server, client.server.chatlog
    low, high = sorted((bounds[0].ms, bounds[1].ms))
    limit = min(limit, server.settings.chat_history_limit)
    found: list[tuple[int, str]] = []
    for other, ms in await chatlog.targets(party(client.uid, client.account), low, high, limit):
        found.append((ms, other))
    for cf in await channels_of(client):
        last = await chatlog.last_id(chatlog.channel(cf))
        ms = int(last.split("-", 1)[0]) if last else 0
        if low < ms < high:
            info = await server.store.channel(cf)
            found.append((ms, info.get("name", cf)))
    batch = client.new_batch() if "batch" in client.caps else ""
    if batch:
        client.send(format_line("BATCH", [f"+{batch}", "draft/chathistory-targets"], source=server.name))
    for ms, name in sorted(found)[:limit]:
        client.send(format_line("CHATHISTORY", ["TARGETS", name, server_time(ms / 1000)],
                                source=server.name, tags={"batch": batch} if batch else None))
    if batch:
        client.send(format_line("BATCH", [f"-{batch}"], source=server.name))


def replay(client: Client, target: str, messages: list[ChatMessage]) -> None:
    """Send history in a `chathistory` batch, oldest first."""
    server = client.server
    batch = client.new_batch() if "batch" in client.caps else ""
    if batch:
        client.send(format_line("BATCH", [f"+{batch}", "chathistory", target], source=server.name))
    for stored in messages:
        event = server.record_event(stored)
        if batch:
            event["tags"]["batch"] = batch
        client.send_event(event)
    if batch:
        client.send(format_line("BATCH", [f"-{batch}"], source=server.name))
