"""Who is who: WHO, WHOIS, WHOWAS, ISON, USERHOST, AWAY and MONITOR."""

from __future__ import annotations

import time

from apps.chat import numerics as n
from apps.ircd.client import Client
from apps.ircd.handlers.channels import prefix_of
from apps.ircd.handlers.connection import channels_of, to_neighbours
from apps.ircd.protocol import Message, casefold, is_channel, mask_matches, valid_nick
from apps.ircd.registry import command

#: Bytes a realname may take (SETNAME).
REALNAME_LENGTH = 390

#: WHOX fields in the order a 354 reply lists them, whatever order they were asked in.
WHOX_FIELDS = "tcuihsnfdlaor"


def _whox_request(message: Message) -> tuple[str, str] | None:
    """`WHO <mask> %<fields>[,<token>]`: the fields asked (in reply order) and the token;
    None for a classic WHO (352 replies)."""
    if len(message.params) < 2 or not message.params[1].startswith("%"):
        return None
    wanted, _, token = message.params[1][1:].partition(",")
    fields = "".join(c for c in WHOX_FIELDS if c in wanted)
    return fields, (token[:3] if token.isdigit() else "0")


def _who_line(client: Client, channel: str, user: dict[str, str], status: str,
              whox: tuple[str, str] | None) -> None:
    """One WHO reply: 352, or a 354 with only the WHOX fields asked for."""
    server = client.server
    flags = ("G" if user.get("away") else "H") + ("*" if "o" in user.get("modes", "") else "")
    flags += prefix_of(status, client)
    if whox is None:
        client.reply(n.RPL_WHOREPLY, channel, user["user"], user["host"], server.name, user["nick"],
                     flags, f"0 {user.get('real', '')}")
        return
    local = server.clients.get(user.get("uid", ""))
    idle = max(0, int(server.clock() - local.last_message)) if local is not None else 0
    values = {"t": whox[1], "c": channel, "u": user["user"], "i": user["host"], "h": user["host"],
              "s": server.name, "n": user["nick"], "f": flags, "d": "0", "l": str(idle),
              "a": user.get("account") or "0", "o": "n/a", "r": user.get("real", "")}
    client.reply(n.RPL_WHOSPCRPL, *(values[field] for field in whox[0]))


@command("WHO")
async def who(client: Client, message: Message) -> None:
    store = client.server.store
    mask = message.params[0] if message.params and message.params[0] else "*"
    whox = _whox_request(message)
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
                        _who_line(client, info.get("name", mask), users[uid], status, whox)
    elif "*" not in mask and "?" not in mask:
        user = await store.user_by_nick(casefold(mask))
        if user is not None:
            _who_line(client, "*", user, "", whox)
    else:
        shared = await channels_of(client)
        for uid, user in (await store.users(await store.all_uids())).items():
            hidden = "i" in user.get("modes", "") and uid != client.uid
            if hidden and not shared & await store.user_channels(uid):
                continue
            hostmask = f"{user['nick']}!{user['user']}@{user['host']}"
            if mask_matches(mask, user["nick"]) or mask_matches(mask, hostmask) or mask == "*":
                _who_line(client, "*", user, "", whox)
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
    await to_neighbours(client, client.event("AWAY", [text] if text else [], cap="away-notify"))


@command("SETNAME", params=1)
async def setname(client: Client, message: Message) -> None:
    """IRCv3 setname: a new realname, confirmed to the client and told to its channels and
    (extended-monitor) its watchers, only to those with the `setname` capability."""
    text = message.params[0]
    if not text or len(text.encode()) > REALNAME_LENGTH:
        client.fail("SETNAME", "INVALID_REALNAME", "Realname is empty or too long")
        return
    client.realname = text
    await client.server.store.update_user(client.uid, real=text)
    event = client.event("SETNAME", [text], cap="setname")
    client.send_event(event)
    await to_neighbours(client, event)


@command("MONITOR", params=1)
async def monitor(client: Client, message: Message) -> None:
    server, store = client.server, client.server.store
    sub = message.params[0]
    watcher = f"{server.instance} {client.uid}"
    if sub in ("+", "-") and len(message.params) < 2:
        client.reply(n.ERR_NEEDMOREPARAMS, "MONITOR", "Not enough parameters")
        return
    if sub == "+":
        added: list[str] = []
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
            added.append(nick)
        await _monitor_status(client, added)
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
        await _monitor_status(client, sorted(client.monitoring))


async def _monitor_status(client: Client, nicks: list[str]) -> None:
    """730 for the nicks online (as nick!user@host), 731 for the others (as given)."""
    online, offline = [], []
    for nick in nicks:
        user = await client.server.store.user_by_nick(casefold(nick))
        if user is not None:
            online.append(f"{user['nick']}!{user['user']}@{user['host']}")
        else:
            offline.append(nick)
    if online:
        client.reply(n.RPL_MONONLINE, ",".join(online))
    if offline:
        client.reply(n.RPL_MONOFFLINE, ",".join(offline))
