"""Registration (PASS, NICK, USER) and the welcome that ends it, keep-alives (PING, PONG),
QUIT, MOTD and LUSERS."""

from __future__ import annotations

from apps.chat import numerics as n
from apps.ircd.client import Client
from apps.ircd.context import Context, StateError
from apps.ircd.errors import AlreadyRegistered, NeedMoreParams, NoOrigin
from apps.ircd.isupport import VERSION, myinfo, tokens
from apps.ircd.operations.devices import welcome_back
from apps.ircd.operations.identity import NickChange, change_nick
from apps.ircd.operations.queries import network_counts
from apps.ircd.operations.registration import register
from apps.ircd.protocol import USER_LENGTH, Message, format_line, valid_user
from apps.ircd.registry import command
from apps.ircd.store import Counts


@command("PASS", params=1, registered=False)
async def pass_(ctx: Context, client: Client, message: Message) -> None:
    if client.registered:
        raise AlreadyRegistered()
    client.password = message.params[0]


@command("NICK", registered=False)
async def nick(ctx: Context, client: Client, message: Message) -> None:
    if not client.registered and message.params:
        client.asked_nick = message.params[0]
    if await change_nick(ctx, client, message.params[0] if message.params else "") is NickChange.CHOSEN:
        await finish_registration(ctx, client)


@command("USER", params=4, registered=False)
async def user(ctx: Context, client: Client, message: Message) -> None:
    if client.registered or client.username:
        raise AlreadyRegistered()
    username, realname = message.params[0], message.params[3]
    if not valid_user(username) or not realname:
        raise NeedMoreParams("USER")
    client.username = "~" + username[:USER_LENGTH]
    client.realname = realname
    await finish_registration(ctx, client)


async def finish_registration(ctx: Context, client: Client) -> None:
    """Register once NICK, USER and capability negotiation are all done, and welcome. A
    registration that could not be completed (Redis failed half-way) closes the connection
    with an ERROR saying so: the client reconnects, and the connection's end removes whatever
    half of the user was written."""
    try:
        registered = await register(ctx, client)
    except StateError:
        if not client.registered:
            raise  # nothing was made yet: the command's 400, and the client may try again
        client.close_link("Server state unavailable", "Server state unavailable, try again later")
        return
    if registered is not None:
        welcome(ctx, client)
        tell_counts(client, registered.counts)
        motd(ctx, client)
        if client.uid != client.device:  # a device of a user that was there: its channels
            await welcome_back(ctx, client)


def welcome(ctx: Context, client: Client) -> None:
    client.reply(n.RPL_WELCOME, f"Welcome to the {ctx.settings.network_name} IRC network {client.prefix}")
    client.reply(n.RPL_YOURHOST, f"Your host is {ctx.name}, running version {VERSION}")
    client.reply(n.RPL_CREATED, f"This server was created {ctx.created}")
    client.send(format_line(n.RPL_MYINFO, [client.nick, *myinfo(ctx.name)], source=ctx.name))
    supported = tokens(ctx.settings)
    for start in range(0, len(supported), 12):
        client.reply(n.RPL_ISUPPORT, *supported[start:start + 12], "are supported by this server")


async def lusers(ctx: Context, client: Client) -> None:
    """Network-wide counts from Redis."""
    tell_counts(client, await network_counts(ctx))


def tell_counts(client: Client, counts: Counts) -> None:
    """LUSERS' replies: 251 to 266."""
    users, invisible, most = counts.users, counts.invisible, counts.most
    # Every replica presents itself as the one server of the network, so its "local" clients
    # are the network's: a client sees the same counts whichever replica it reached.
    client.reply(n.RPL_LUSERCLIENT,
                 f"There are {users - invisible} users and {invisible} invisible on 1 servers")
    client.reply(n.RPL_LUSEROP, str(counts.opers), "operator(s) online")
    client.reply(n.RPL_LUSERUNKNOWN, str(counts.unregistered), "unknown connection(s)")
    client.reply(n.RPL_LUSERCHANNELS, str(counts.channels), "channels formed")
    client.reply(n.RPL_LUSERME, f"I have {users} clients and 1 servers")
    client.reply(n.RPL_LOCALUSERS, str(users), str(most), f"Current local users {users}, max {most}")
    client.reply(n.RPL_GLOBALUSERS, str(users), str(most), f"Current global users {users}, max {most}")


def motd(ctx: Context, client: Client) -> None:
    text = ctx.settings.motd
    if not text:
        client.reply(n.ERR_NOMOTD, "MOTD File is missing")
        return
    client.reply(n.RPL_MOTDSTART, f"- {ctx.name} Message of the day - ")
    for line in text.splitlines():
        client.reply(n.RPL_MOTD, f"- {line}")
    client.reply(n.RPL_ENDOFMOTD, "End of /MOTD command.")


@command("MOTD")
async def motd_command(ctx: Context, client: Client, message: Message) -> None:
    motd(ctx, client)


@command("LUSERS")
async def lusers_command(ctx: Context, client: Client, message: Message) -> None:
    await lusers(ctx, client)


@command("PING", registered=False)
async def ping(ctx: Context, client: Client, message: Message) -> None:
    if not message.params or not message.params[0]:
        raise NoOrigin()
    client.send(format_line("PONG", [ctx.name, message.params[0]], source=ctx.name))


@command("PONG", registered=False)
async def pong(ctx: Context, client: Client, message: Message) -> None:
    return None  # reading it already counted as activity


@command("QUIT", registered=False)
async def quit_(ctx: Context, client: Client, message: Message) -> None:
    reason = f"Quit: {message.params[0]}" if message.params and message.params[0] else "Quit"
    client.close_link(reason, f"({client.username or '*'}@{client.host}) [{reason}]")
