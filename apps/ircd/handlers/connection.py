"""Registration (PASS, NICK, USER), keep-alives (PING, PONG), QUIT, and what leaving undoes."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from apps.chat import casemap
from apps.chat import numerics as n
from apps.ircd.client import Client
from apps.ircd.protocol import Message, casefold, format_line, valid_nick, valid_user
from apps.ircd.registry import command

log = logging.getLogger("canaduck.ircd")

VERSION = "canaduck-ircd-0.1"
USER_MODES = "iow"
CHANNEL_MODES = "Ibeiklmnostv"


def isupport(client: Client) -> list[str]:
    """The ISUPPORT tokens: only what the gateway does."""
    s = client.server.settings
    tokens = [
        "AWAYLEN=390", f"CASEMAPPING={casemap.CASEMAPPING}",
        f"CHANLIMIT={casemap.CHANTYPES}:{s.max_channels_per_user}", "CHANMODES=Ibe,k,l,imnst",
        f"CHANNELLEN={s.channel_length}", f"CHANTYPES={casemap.CHANTYPES}",
        f"CHATHISTORY={s.chat_history_limit}", "ELIST=CMNTU", "EXCEPTS=e", "INVEX=I", "KICKLEN=390",
        f"MAXLIST=beI:{s.max_list_entries}", "MODES=4",
        f"MONITOR={s.max_monitor}", "MSGREFTYPES=msgid,timestamp", f"NETWORK={s.network_name}",
        f"NICKLEN={s.nick_length}", "PREFIX=(ov)@+", "STATUSMSG=@+",
        f"TARGMAX=PRIVMSG:{s.max_targets},NOTICE:{s.max_targets},TAGMSG:{s.max_targets},"
        "JOIN:,PART:,NAMES:,LIST:,MONITOR:,ISON:,USERHOST:5,WHOIS:1,"
        f"KICK:{s.max_targets}",
        f"TOPICLEN={s.topic_length}", "USERLEN=10", "UTF8ONLY", "WHOX",
    ]
    return tokens


@command("PASS", params=1, registered=False)
async def pass_(client: Client, message: Message) -> None:
    if client.registered:
        client.reply(n.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    client.password = message.params[0]


@command("NICK", registered=False)
async def nick(client: Client, message: Message) -> None:
    if not message.params or not message.params[0]:
        client.reply(n.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    wanted = message.params[0]
    server = client.server
    if not valid_nick(wanted, server.settings.nick_length):
        client.reply(n.ERR_ERRONEUSNICKNAME, wanted, "Erroneous nickname")
        return
    if wanted == client.nick:
        return
    wanted_cf = casefold(wanted)
    if wanted_cf != client.nick_cf and not await server.store.claim_nick(wanted_cf, client.uid):
        client.reply(n.ERR_NICKNAMEINUSE, wanted, "Nickname is already in use")
        return
    if client.registered and not await may_use(client, wanted):
        if wanted_cf != client.nick_cf:  # a change of case only: the nick is still ours
            await server.store.release_nick(wanted_cf, client.uid)
        client.reply(n.ERR_NICKNAMEINUSE, wanted, "Nickname is reserved by an account: log in with SASL")
        return
    old_nick, old_cf, old_prefix = client.nick, client.nick_cf, client.prefix
    if old_cf and old_cf != wanted_cf:
        await server.store.release_nick(old_cf, client.uid)
    client.nick, client.nick_cf = wanted, wanted_cf
    if not client.registered:
        await try_register(client)
        return
    await server.store.update_user(client.uid, nick=wanted)
    await server.unfollow_nick(client, old_nick)
    await server.follow_nick(client, wanted)
    await server.store.remember(old_cf, whowas_entry(client, old_nick), server.settings.whowas_length)
    event = client.event("NICK", [wanted], source=old_prefix, id=server.new_id())
    server.seen(event).add(client.uid)
    client.send_event(event)
    await server.to_channels(await channels_of(client), event)
    if old_cf != wanted_cf:
        await notify_monitors(client, old_cf, online=False, nick=old_nick)
        await notify_monitors(client, wanted_cf, online=True)


@command("USER", params=4, registered=False)
async def user(client: Client, message: Message) -> None:
    if client.registered or client.user:
        client.reply(n.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    username, realname = message.params[0], message.params[3]
    if not valid_user(username) or not realname:
        client.reply(n.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
        return
    client.user = "~" + username[:10]
    client.realname = realname
    await try_register(client)


async def try_register(client: Client) -> None:
    """Finish registration once NICK, USER and capability negotiation are all done."""
    if client.registered or not client.nick_cf or not client.user or client.negotiating:
        return
    server = client.server
    if not await may_use(client, client.nick):
        await server.store.release_nick(client.nick_cf, client.uid)
        client.reply(n.ERR_NICKNAMEINUSE, client.nick, "Nickname is reserved by an account: log in with SASL")
        client.nick, client.nick_cf = "*", ""
        return
    if server.settings.irc_password and client.password != server.settings.irc_password:
        client.reply(n.ERR_PASSWDMISMATCH, "Password incorrect")
        client.quit_reason = "Bad password"
        client.send("ERROR :Closing link: bad password")
        client.close()
        return
    client.registered = True
    server.clients[client.uid] = client
    await server.quietly(server.store.unregistered(server.instance, -1))
    await server.store.save_user(client.uid, client.record())
    await server.follow_nick(client, client.nick)
    welcome(client)
    await lusers(client)
    motd(client)
    await notify_monitors(client, client.nick_cf, online=True)


async def may_use(client: Client, nick: str) -> bool:
    """False if `nick` is an account's name and the client is not logged in to it.

    Asks the users service; if it cannot be reached the nick is allowed (the chat stays up
    without the users service, and says so in the log).
    """
    server = client.server
    if not server.settings.users_url or server.users_http is None:
        return True
    url = f"{server.settings.users_url.rstrip('/')}/internal/accounts/{nick}"
    try:
        response = await server.users_http.get(url)
    except httpx.HTTPError as exc:
        log.warning("users service unreachable for nick %s: %s", nick, exc)
        return True
    if response.status_code != 200:
        return True
    owner = str(response.json().get("account", ""))
    return casefold(owner) == casefold(client.account)


def welcome(client: Client) -> None:
    server = client.server
    client.reply(n.RPL_WELCOME, f"Welcome to the {server.settings.network_name} IRC network {client.prefix}")
    client.reply(n.RPL_YOURHOST, f"Your host is {server.name}, running version {VERSION}")
    client.reply(n.RPL_CREATED, f"This server was created {server.created}")
    client.send(format_line(n.RPL_MYINFO, [client.nick, server.name, VERSION, USER_MODES, CHANNEL_MODES,
                                           "Ibeklov"], source=server.name))
    tokens = isupport(client)
    for start in range(0, len(tokens), 12):
        client.reply(n.RPL_ISUPPORT, *tokens[start:start + 12], "are supported by this server")


async def lusers(client: Client) -> None:
    """Network-wide counts from Redis; "local" is this replica's clients."""
    server = client.server
    counts = await server.store.lusers()
    users, invisible = counts["users"], counts["invisible"]
    # Every replica presents itself as the one server of the network, so its "local" clients
    # are the network's: a client sees the same counts whichever replica it reached.
    local, most_local = users, counts["most"]
    client.reply(n.RPL_LUSERCLIENT,
                 f"There are {users - invisible} users and {invisible} invisible on 1 servers")
    client.reply(n.RPL_LUSEROP, str(counts["opers"]), "operator(s) online")
    client.reply(n.RPL_LUSERUNKNOWN, str(counts["unregistered"]), "unknown connection(s)")
    client.reply(n.RPL_LUSERCHANNELS, str(counts["channels"]), "channels formed")
    client.reply(n.RPL_LUSERME, f"I have {local} clients and 1 servers")  # the network's
    client.reply(n.RPL_LOCALUSERS, str(local), str(most_local),
                 f"Current local users {local}, max {most_local}")
    client.reply(n.RPL_GLOBALUSERS, str(users), str(counts["most"]),
                 f"Current global users {users}, max {counts['most']}")


def motd(client: Client) -> None:
    text = client.server.settings.motd
    if not text:
        client.reply(n.ERR_NOMOTD, "MOTD File is missing")
        return
    client.reply(n.RPL_MOTDSTART, f"- {client.server.name} Message of the day - ")
    for line in text.splitlines():
        client.reply(n.RPL_MOTD, f"- {line}")
    client.reply(n.RPL_ENDOFMOTD, "End of /MOTD command.")


@command("MOTD")
async def motd_command(client: Client, message: Message) -> None:
    motd(client)


@command("LUSERS")
async def lusers_command(client: Client, message: Message) -> None:
    await lusers(client)


@command("PING", registered=False)
async def ping(client: Client, message: Message) -> None:
    if not message.params or not message.params[0]:
        client.reply(n.ERR_NOORIGIN, "No origin specified")
        return
    client.send(format_line("PONG", [client.server.name, message.params[0]], source=client.server.name))


@command("PONG", registered=False)
async def pong(client: Client, message: Message) -> None:
    return None  # reading it already counted as activity


@command("QUIT", registered=False)
async def quit_(client: Client, message: Message) -> None:
    reason = message.params[0] if message.params else ""
    client.quit_reason = f"Quit: {reason}" if reason else "Quit"
    client.send(f"ERROR :Closing link: ({client.user or '*'}@{client.host}) [{client.quit_reason}]")
    client.close()


def whowas_entry(client: Client, nick: str) -> dict[str, str]:
    return {"nick": nick, "user": client.user, "host": client.host, "real": client.realname,
            "server": client.server.name, "at": str(int(client.server.clock())),
            "account": client.account}


async def channels_of(client: Client) -> set[str]:
    """The channels a client is in: Redis's view joined with the replica's own."""
    return client.channels | await client.server.store.user_channels(client.uid)


async def notify_monitors(client: Client, nick_cf: str, *, online: bool, nick: str = "") -> None:
    """Tell every client MONITORing `nick_cf` that it came online or went offline."""
    targets = await watchers_of(client, nick_cf)
    if not targets:
        return
    event: dict[str, Any] = ({"num": n.RPL_MONONLINE, "p": [client.prefix]} if online
                             else {"num": n.RPL_MONOFFLINE, "p": [nick or client.nick]})
    await client.server.to_uids(targets, event)


async def watchers_of(client: Client, nick_cf: str) -> dict[str, str]:
    """The clients MONITORing `nick_cf` but `client` itself: uid -> replica."""
    targets: dict[str, str] = {}
    for watcher in await client.server.store.watchers(nick_cf):  # "instance uid"
        instance, _, uid = watcher.partition(" ")
        targets[uid] = instance
    targets.pop(client.uid, None)
    return targets


async def to_neighbours(client: Client, event: dict[str, Any]) -> None:
    """A change about `client` (AWAY, SETNAME) to everyone sharing a channel with it and, with
    extended-monitor, to every client MONITORing its nick: each gets it once (the event id)."""
    server = client.server
    event.setdefault("id", server.new_id())
    server.seen(event).add(client.uid)
    channels = await channels_of(client)
    if channels:
        await server.to_channels(channels, event)
    watchers = await watchers_of(client, client.nick_cf)
    if watchers:
        await server.to_uids(watchers, {**event, "caps": ["extended-monitor"]})


async def quit_everywhere(client: Client) -> None:
    """Undo a connection: QUIT to its channels, leave them, free the nick and the user."""
    server, store = client.server, client.server.store
    for nick_cf in list(client.monitoring):
        await store.unwatch(nick_cf, f"{server.instance} {client.uid}")
    # The nick is free before anyone sees the QUIT: a client that reconnects as soon as it
    # sees its old link quit (the web page logging out and in) gets its nick back.
    if client.nick_cf:
        await store.release_nick(client.nick_cf, client.uid)
    if client.registered:
        channels = await channels_of(client)
        event = client.event("QUIT", [client.quit_reason], id=server.new_id())
        server.seen(event).add(client.uid)
        if channels:
            await server.to_channels(channels, event)
        # Before the clean-up: a watcher must hear this offline before a newcomer's online.
        await notify_monitors(client, client.nick_cf, online=False)
        for cf in channels:
            await store.leave(cf, client.uid)
            await server.forget_membership(client, cf)
        await store.remember(client.nick_cf, whowas_entry(client, client.nick),
                             server.settings.whowas_length)
        await store.delete_user(client.uid, server.instance, client.account)
        await server.unfollow_nick(client, client.nick)
