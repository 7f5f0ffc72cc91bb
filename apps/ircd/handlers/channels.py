"""Channel commands: JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from apps.chat import numerics as n
from apps.ircd.client import Client
from apps.ircd.protocol import Message, casefold, mask_matches, valid_channel
from apps.ircd.registry import command

REFUSALS = {
    n.ERR_CHANNELISFULL: "Cannot join channel (+l)",
    n.ERR_INVITEONLYCHAN: "Cannot join channel (+i)",
    n.ERR_BANNEDFROMCHAN: "Cannot join channel (+b)",
    n.ERR_BADCHANNELKEY: "Cannot join channel (+k)",
}


def prefix_of(status: str, client: Client) -> str:
    """The NAMES/WHO prefix for a status ('o', 'v', 'ov'): all of them with multi-prefix."""
    symbols = ("@" if "o" in status else "") + ("+" if "v" in status else "")
    return symbols if "multi-prefix" in client.caps else symbols[:1]


def matches_any(masks: Iterable[str], hostmask: str) -> bool:
    return any(mask_matches(mask, hostmask) for mask in masks)


def banned(lists: dict[str, dict[str, str]], hostmask: str) -> bool:
    """`hostmask` matches a ban (+b) and no ban exception (+e); `lists` from `Store.masks`."""
    return matches_any(lists.get("b", {}), hostmask) and not matches_any(lists.get("e", {}), hostmask)


@dataclass
class ChannelView:
    """A channel as one command sees it: its names, its info, and the client's status in it."""

    cf: str
    display: str
    info: dict[str, str]
    status: str | None  # None: the client is not a member


async def existing_channel(client: Client, name: str) -> ChannelView | None:
    """The channel `name` and the client's status in it, in one round trip; None (after
    answering 403 ERR_NOSUCHCHANNEL) when it does not exist."""
    cf = casefold(name)
    info, status = await client.server.store.channel_and_status(cf, client.uid)
    if not info:
        client.reply(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        return None
    return ChannelView(cf, info.get("name", name), info, status)


@command("JOIN", params=1)
async def join(client: Client, message: Message) -> None:
    server = client.server
    if message.params[0] == "0":
        for cf in sorted(client.channels):
            info = await server.store.channel(cf)
            await part_one(client, cf, info.get("name", cf), client.nick)
        return
    names = message.params[0].split(",")
    keys = message.params[1].split(",") if len(message.params) > 1 else []
    for i, name in enumerate(names):
        key = keys[i] if i < len(keys) else ""
        if not valid_channel(name, server.settings.channel_length):
            client.reply(n.ERR_NOSUCHCHANNEL, name or "*", "No such channel")
            continue
        await join_one(client, name, key)


async def join_one(client: Client, name: str, key: str) -> None:
    server, store = client.server, client.server.store
    cf = casefold(name)
    if cf in client.channels:
        return
    if len(client.channels) >= server.settings.max_channels_per_user:
        client.reply(n.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
        return
    lists = await store.masks(cf)
    outcome = await store.join(cf, name, client.uid, key=key, banned=banned(lists, client.prefix),
                               invex=matches_any(lists["I"], client.prefix), now=server.clock())
    if outcome in REFUSALS:
        client.reply(outcome, name, REFUSALS[outcome])
        return
    info = await store.channel(cf)
    display = info.get("name", name)
    await server.remember_membership(client, cf)
    plain = client.event("JOIN", [display])
    extended = client.event("JOIN", [display, client.account or "*", client.realname],
                            cap="extended-join", alt=plain)
    await server.to_channels([cf], extended)
    if client.away:  # away-notify: members learn at once that the newcomer is away
        await server.to_channels([cf], client.event("AWAY", [client.away], cap="away-notify"),
                                 exclude=client.uid)
    if info.get("topic"):
        client.reply(n.RPL_TOPIC, display, info["topic"])
        client.reply(n.RPL_TOPICWHOTIME, display, info.get("topic_by", server.name),
                     info.get("topic_at", "0"))
    await names_reply(client, cf, display, info)


async def names_reply(client: Client, cf: str, display: str, info: dict[str, str], *,
                      end: bool = True) -> None:
    """353 lines (as many as 512 bytes need) and, unless `end` is False, 366 for one channel."""
    store = client.server.store
    members = await store.members(cf)
    member = client.uid in members
    if not member and "s" in info.get("modes", ""):
        if end:
            client.reply(n.RPL_ENDOFNAMES, display, "End of /NAMES list")
        return
    users = await store.users(members)
    entries = []
    for uid, status in members.items():
        user = users.get(uid)
        if user is None or (not member and "i" in user.get("modes", "") and uid != client.uid):
            continue
        label = user["nick"]
        if "userhost-in-names" in client.caps:
            label = f"{user['nick']}!{user['user']}@{user['host']}"
        entries.append(prefix_of(status, client) + label)
    symbol = "@" if "s" in info.get("modes", "") else "="
    overhead = len(f":{client.server.name} 353 {client.nick} {symbol} {display} :") + 2
    line: list[str] = []
    for entry in entries:
        if line and overhead + len(" ".join([*line, entry]).encode()) > 512:
            client.reply(n.RPL_NAMREPLY, symbol, display, " ".join(line))
            line = []
        line.append(entry)
    if line:
        client.reply(n.RPL_NAMREPLY, symbol, display, " ".join(line))
    if end:
        client.reply(n.RPL_ENDOFNAMES, display, "End of /NAMES list")


@command("NAMES")
async def names(client: Client, message: Message) -> None:
    if not message.params or not message.params[0]:
        client.reply(n.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    names = message.params[0].split(",")
    for name in names:
        cf = casefold(name)
        info = await client.server.store.channel(cf)
        if info:
            await names_reply(client, cf, info.get("name", name), info, end=False)
    client.reply(n.RPL_ENDOFNAMES, message.params[0], "End of /NAMES list")


@command("PART", params=1)
async def part(client: Client, message: Message) -> None:
    reason = message.params[1] if len(message.params) > 1 else ""
    for name in message.params[0].split(","):
        cf = casefold(name)
        info, status = await client.server.store.channel_and_status(cf, client.uid)
        if not info:
            client.reply(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        elif status is None:
            client.reply(n.ERR_NOTONCHANNEL, info.get("name", name), "You're not on that channel")
        else:
            await part_one(client, cf, info.get("name", name), reason)


async def part_one(client: Client, cf: str, display: str, reason: str) -> None:
    server = client.server
    params = [display, reason] if reason else [display]
    await server.to_channels([cf], client.event("PART", params))
    await server.store.leave(cf, client.uid)
    await server.forget_membership(client, cf)


@command("TOPIC", params=1)
async def topic(client: Client, message: Message) -> None:
    server, store = client.server, client.server.store
    channel = await existing_channel(client, message.params[0])
    if channel is None:
        return
    cf, display, info, status = channel.cf, channel.display, channel.info, channel.status
    if len(message.params) == 1:
        if status is None and "s" in info.get("modes", ""):
            client.reply(n.ERR_NOTONCHANNEL, display, "You're not on that channel")
        elif info.get("topic"):
            client.reply(n.RPL_TOPIC, display, info["topic"])
            client.reply(n.RPL_TOPICWHOTIME, display, info.get("topic_by", ""), info.get("topic_at", "0"))
        else:
            client.reply(n.RPL_NOTOPIC, display, "No topic is set")
        return
    if status is None:
        client.reply(n.ERR_NOTONCHANNEL, display, "You're not on that channel")
        return
    if "t" in info.get("modes", "") and "o" not in status:
        client.reply(n.ERR_CHANOPRIVSNEEDED, display, "You're not channel operator")
        return
    text = message.params[1].encode()[:server.settings.topic_length].decode("utf-8", "ignore")
    if text:
        await store.update_channel(cf, topic=text, topic_by=client.prefix, topic_at=str(int(server.clock())))
    else:
        await store.clear_channel_fields(cf, "topic", "topic_by", "topic_at")
    await server.to_channels([cf], client.event("TOPIC", [display, text]))


@dataclass
class ListFilter:
    """LIST's parameter (ISUPPORT ELIST=CMNTU), comma-separated: channel names or masks
    (`#c*`), masks to leave out (`!*bots*`), member counts (`>5`, `<100`), and the minutes
    since a channel was created or its topic set (`C>60`, `T<10`)."""

    masks: list[str]
    exclude: list[str]
    conditions: list[tuple[str, str, int]]  # (what: users|C|T, "<" or ">", value)

    @classmethod
    def parse(cls, text: str) -> ListFilter:
        masks, exclude, conditions = [], [], []
        for item in (i for i in text.split(",") if i):
            what = item[0] if item[:1] in ("C", "T") and item[1:2] in ("<", ">") else "users"
            rest = item[1:] if what != "users" else item
            if rest[:1] in ("<", ">") and rest[1:].isdigit():
                conditions.append((what, rest[0], int(rest[1:])))
            elif item.startswith("!"):
                exclude.append(item[1:])
            else:
                masks.append(item)
        return cls(masks, exclude, conditions)

    def exact_names(self) -> list[str] | None:
        """The channels to look up by name, when only names were given (no scan needed)."""
        if self.masks and not any(c in m for m in self.masks for c in "*?"):
            return [casefold(m) for m in self.masks]
        return None

    def accepts(self, info: dict[str, str], count: int, now: float) -> bool:
        name = info.get("name", "")
        if self.masks and not any(mask_matches(mask, name) for mask in self.masks):
            return False
        if any(mask_matches(mask, name) for mask in self.exclude):
            return False
        for what, sign, value in self.conditions:
            if what == "users":
                got: float = count
            else:
                since = info.get("created" if what == "C" else "topic_at")
                if not since:
                    return False
                got = (now - float(since)) / 60
            if (sign == ">" and not got > value) or (sign == "<" and not got < value):
                return False
        return True


@command("LIST")
async def list_(client: Client, message: Message) -> None:
    store = client.server.store
    wanted = ListFilter.parse(message.params[0] if message.params else "")
    cfs = wanted.exact_names()
    if cfs is None:
        cfs = await store.channel_names()
    now = client.server.clock()
    client.reply(n.RPL_LISTSTART, "Channel", "Users  Name")
    for info, count in await store.channel_summaries(cfs):
        cf = casefold(info.get("name", ""))
        if "s" in info.get("modes", "") and cf not in client.channels:
            continue
        if wanted.accepts(info, count, now):
            client.reply(n.RPL_LIST, info.get("name", cf), str(count), info.get("topic", ""))
    client.reply(n.RPL_LISTEND, "End of /LIST")


@command("KICK", params=2)
async def kick(client: Client, message: Message) -> None:
    """KICK #chan a,b (one channel, several users) or KICK #a,#b x,y (pairs, RFC 2812)."""
    reason = message.params[2] if len(message.params) > 2 and message.params[2] else client.nick
    channels, nicks = message.params[0].split(","), message.params[1].split(",")
    if len(channels) != 1 and len(channels) != len(nicks):
        client.reply(n.ERR_NEEDMOREPARAMS, "KICK", "Give one channel, or one channel per user")
        return
    if len(nicks) > client.server.settings.max_targets:
        client.reply(n.ERR_TOOMANYTARGETS, message.params[1], "Too many targets")
        return
    pairs = zip(channels * len(nicks) if len(channels) == 1 else channels, nicks, strict=True)
    for name, nick in pairs:
        await kick_one(client, name, nick, reason[:390])


async def kick_one(client: Client, name: str, nick: str, reason: str) -> None:
    server, store = client.server, client.server.store
    channel = await existing_channel(client, name)
    if channel is None:
        return
    cf, display, status = channel.cf, channel.display, channel.status
    if status is None:
        client.reply(n.ERR_NOTONCHANNEL, display, "You're not on that channel")
        return
    if "o" not in status:
        client.reply(n.ERR_CHANOPRIVSNEEDED, display, "You're not channel operator")
        return
    user = await store.user_by_nick(casefold(nick))
    if user is None:
        client.reply(n.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    if await store.status(cf, user["uid"]) is None:
        client.reply(n.ERR_USERNOTINCHANNEL, user["nick"], display, "They aren't on that channel")
        return
    event = client.event("KICK", [display, user["nick"], reason], leave=user["uid"])
    await server.to_channels([cf], event)
    await store.leave(cf, user["uid"])
    kicked = server.clients.get(user["uid"])
    if kicked is not None:
        await server.forget_membership(kicked, cf)


@command("INVITE", params=2)
async def invite(client: Client, message: Message) -> None:
    server, store = client.server, client.server.store
    nick, name = message.params[0], message.params[1]
    cf = casefold(name)
    user = await store.user_by_nick(casefold(nick))
    if user is None:
        client.reply(n.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    info, status = await store.channel_and_status(cf, client.uid)
    if info:
        name = info.get("name", name)
        if status is None:
            client.reply(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
            return
        if "i" in info.get("modes", "") and "o" not in status:
            client.reply(n.ERR_CHANOPRIVSNEEDED, name, "You're not channel operator")
            return
        if await store.status(cf, user["uid"]) is not None:
            client.reply(n.ERR_USERONCHANNEL, user["nick"], name, "is already on channel")
            return
        await store.invite(cf, user["uid"])
    else:
        client.reply(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    client.reply(n.RPL_INVITING, user["nick"], name)
    await server.to_uids({user["uid"]: user.get("inst", "")},
                         client.event("INVITE", [user["nick"], name]))
    if user.get("away"):
        client.reply(n.RPL_AWAY, user["nick"], user["away"])
