"""Who is who: WHO, WHOIS, WHOWAS, ISON, USERHOST, AWAY and MONITOR."""

from __future__ import annotations

import time

from apps.ircd import numerics as n
from apps.ircd.client import Client
from apps.ircd.handlers.channels import prefix_of
from apps.ircd.handlers.connection import channels_of
from apps.ircd.protocol import Message, casefold, is_channel, mask_matches, valid_nick
from apps.ircd.registry import command


def _who_line(client: Client, channel: str, user: dict[str, str], status: str) -> None:
    flags = ("G" if user.get("away") else "H") + ("*" if "o" in user.get("modes", "") else "")
    flags += prefix_of(status, client)
    client.reply(n.RPL_WHOREPLY, channel, user["user"], user["host"], client.server.name, user["nick"],
                 flags, f"0 {user.get('real', '')}")


@command("WHO")
async def who(client: Client, message: Message) -> None:
    store = client.server.store
    mask = message.params[0] if message.params and message.params[0] else "*"
    if is_channel(mask):
        cf = casefold(mask)
        info = await store.channel(cf)
        if info:
            members = await store.members(cf)
            visible = client.uid in members or "s" not in info.get("modes", "")
            if visible:
                users = await store.users(members)
                for uid, status in members.items():
                    if uid in users:
                        _who_line(client, info.get("name", mask), users[uid], status)
    elif "*" not in mask and "?" not in mask:
        user = await store.user_by_nick(casefold(mask))
        if user is not None:
            _who_line(client, "*", user, "")
    else:
        shared = await channels_of(client)
        for uid, user in (await store.users(await store.all_uids())).items():
            hidden = "i" in user.get("modes", "") and uid != client.uid
            if hidden and not shared & await store.user_channels(uid):
                continue
            hostmask = f"{user['nick']}!{user['user']}@{user['host']}"
            if mask_matches(mask, user["nick"]) or mask_matches(mask, hostmask) or mask == "*":
                _who_line(client, "*", user, "")
    client.reply(n.RPL_ENDOFWHO, mask, "End of /WHO list")


@command("WHOIS", params=1)
async def whois(client: Client, message: Message) -> None:
    server, store = client.server, client.server.store
    nick = message.params[-1].split(",")[0]
    user = await store.user_by_nick(casefold(nick)) if nick else None
    if user is None:
        client.reply(n.ERR_NOSUCHNICK, nick or "*", "No such nick/channel")
        client.reply(n.RPL_ENDOFWHOIS, nick or "*", "End of /WHOIS list")
        return
    uid, nick = user["uid"], user["nick"]
    client.reply(n.RPL_WHOISUSER, nick, user["user"], user["host"], "*", user.get("real", ""))
    mine = await channels_of(client)
    entries = []
    for cf in sorted(await store.user_channels(uid)):
        info, status = await store.channel_and_status(cf, uid)
        if not info or status is None or ("s" in info.get("modes", "") and cf not in mine):
            continue
        entries.append(prefix_of(status, client) + info.get("name", cf))
    if entries:
        client.reply(n.RPL_WHOISCHANNELS, nick, " ".join(entries))
    client.reply(n.RPL_WHOISSERVER, nick, server.name, server.settings.network_name)
    if "o" in user.get("modes", ""):
        client.reply(n.RPL_WHOISOPERATOR, nick, "is an IRC operator")
    if user.get("away"):
        client.reply(n.RPL_AWAY, nick, user["away"])
    if user.get("account"):
        client.reply(n.RPL_WHOISACCOUNT, nick, user["account"], "is logged in as")
    if user.get("secure"):
        client.reply(n.RPL_WHOISSECURE, nick, "is using a secure connection")
    if uid == client.uid:
        client.reply(n.RPL_WHOISHOST, nick, f"is connecting from *@{user['host']} {user['host']}")
    local = server.clients.get(uid)
    if local is not None:
        idle = int(server.clock() - local.last_message)
        client.reply(n.RPL_WHOISIDLE, nick, str(max(idle, 0)), user.get("signon", "0"),
                     "seconds idle, signon time")
    client.reply(n.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")


@command("WHOWAS", params=1)
async def whowas(client: Client, message: Message) -> None:
    nick = message.params[0]
    try:
        count = int(message.params[1]) if len(message.params) > 1 else 0
    except ValueError:
        count = 0
    keep = client.server.settings.whowas_length
    entries = await client.server.store.whowas(casefold(nick), count if count > 0 else keep)
    if not entries:
        client.reply(n.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
    for entry in entries:
        client.reply(n.RPL_WHOWASUSER, entry["nick"], entry["user"], entry["host"], "*", entry["real"])
        when = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(int(entry.get("at", "0"))))
        client.reply(n.RPL_WHOISSERVER, entry["nick"], entry.get("server", client.server.name), when)
    client.reply(n.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")


@command("ISON", params=1)
async def ison(client: Client, message: Message) -> None:
    store = client.server.store
    nicks = " ".join(message.params).split()
    present = []
    for nick in nicks:
        user = await store.user_by_nick(casefold(nick))
        if user is not None:
            present.append(user["nick"])
    client.reply(n.RPL_ISON, " ".join(present))


@command("USERHOST", params=1)
async def userhost(client: Client, message: Message) -> None:
    store = client.server.store
    replies = []
    for nick in message.params[:5]:
        user = await store.user_by_nick(casefold(nick))
        if user is not None:
            away = "-" if user.get("away") else "+"
            replies.append(f"{user['nick']}={away}{user['user']}@{user['host']}")
    client.reply(n.RPL_USERHOST, " ".join(replies))


@command("AWAY")
async def away(client: Client, message: Message) -> None:
    server = client.server
    text = message.params[0] if message.params else ""
    text = text.encode()[:390].decode("utf-8", "ignore")
    client.away = text
    await server.store.update_user(client.uid, away=text)
    if text:
        client.reply(n.RPL_NOWAWAY, "You have been marked as being away")
    else:
        client.reply(n.RPL_UNAWAY, "You are no longer marked as being away")
    event = server.event(client.prefix, "AWAY", [text] if text else [], cap="away-notify", id=server.new_id())
    server.seen(event).add(client.uid)
    channels = await channels_of(client)
    if channels:
        await server.to_channels(channels, event)


@command("MONITOR", params=1)
async def monitor(client: Client, message: Message) -> None:
    server, store = client.server, client.server.store
    sub = message.params[0]
    watcher = f"{server.instance} {client.uid}"
    if sub in ("+", "-") and len(message.params) < 2:
        client.reply(n.ERR_NEEDMOREPARAMS, "MONITOR", "Not enough parameters")
        return
    if sub == "+":
        online, offline = [], []
        nicks = [x for x in message.params[1].split(",") if x]
        for i, nick in enumerate(nicks):
            cf = casefold(nick)
            if cf in client.monitoring:
                continue
            if len(client.monitoring) >= server.settings.max_monitor:
                client.reply(n.ERR_MONLISTFULL, str(server.settings.max_monitor), ",".join(nicks[i:]),
                             "Monitor list is full")
                break
            if not valid_nick(nick, 64):
                continue
            client.monitoring.add(cf)
            await store.watch(cf, watcher)
            user = await store.user_by_nick(cf)
            if user is not None:
                online.append(f"{user['nick']}!{user['user']}@{user['host']}")
            else:
                offline.append(nick)
        if online:
            client.reply(n.RPL_MONONLINE, ",".join(online))
        if offline:
            client.reply(n.RPL_MONOFFLINE, ",".join(offline))
    elif sub == "-":
        for nick in message.params[1].split(","):
            cf = casefold(nick)
            if cf in client.monitoring:
                client.monitoring.discard(cf)
                await store.unwatch(cf, watcher)
    elif sub.upper() == "C":
        for cf in list(client.monitoring):
            await store.unwatch(cf, watcher)
        client.monitoring.clear()
    elif sub.upper() == "L":
        if client.monitoring:
            client.reply(n.RPL_MONLIST, ",".join(sorted(client.monitoring)))
        client.reply(n.RPL_ENDOFMONLIST, "End of MONITOR list")
    elif sub.upper() == "S":
        online, offline = [], []
        for cf in sorted(client.monitoring):
            user = await store.user_by_nick(cf)
            if user is not None:
                online.append(f"{user['nick']}!{user['user']}@{user['host']}")
            else:
                offline.append(cf)
        if online:
            client.reply(n.RPL_MONONLINE, ",".join(online))
        if offline:
            client.reply(n.RPL_MONOFFLINE, ",".join(offline))
