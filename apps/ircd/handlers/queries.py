"""Who is who: WHO (and WHOX), WHOIS, WHOWAS, ISON, USERHOST (apps/ircd/operations/queries.py)."""

from __future__ import annotations

import time

from apps.chat import numerics as n
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import ChatError, WasNoSuchNick
from apps.ircd.failures import reply_to
from apps.ircd.operations import queries
from apps.ircd.protocol import Message
from apps.ircd.registry import command

#: WHOX fields in the order a 354 reply lists them, whatever order they were asked in.
WHOX_FIELDS = "tcuihsnfdlaor"
#: Most nicks one USERHOST answers.
USERHOST_NICKS = 5


def _whox_request(message: Message) -> tuple[str, str] | None:
    """`WHO <mask> %<fields>[,<token>]`: the fields asked (in reply order) and the token;
    None for a classic WHO (352 replies)."""
    if len(message.params) < 2 or not message.params[1].startswith("%"):
        return None
    wanted, _, token = message.params[1][1:].partition(",")
    fields = "".join(c for c in WHOX_FIELDS if c in wanted)
    return fields, (token[:3] if token.isdigit() else "0")


def _who_line(ctx: Context, client: Client, row: queries.WhoRow, whox: tuple[str, str] | None) -> None:
    """One WHO reply: 352, or a 354 with only the WHOX fields asked for."""
    channel, user, status = row.channel, row.user, row.status
    flags = ("G" if user.away else "H") + ("*" if user.oper else "")
    flags += status.symbols("multi-prefix" in client.caps)
    if whox is None:
        client.reply(n.RPL_WHOREPLY, channel, user.username, user.host, ctx.name, user.nick, flags,
                     f"0 {user.realname}")
        return
    # The address (`i`) is the connection's own for who asks about itself (a CHGHOST does not
    # change it); another user's is its host, which is public anyway.
    address = client.transport.peer_ip if user.uid == client.uid else user.host
    values = {"t": whox[1], "c": channel, "u": user.username, "i": address, "h": user.host,
              "s": ctx.name, "n": user.nick, "f": flags, "d": "0", "l": str(row.idle),
              "a": user.account or "0", "o": "n/a", "r": user.realname}
    client.reply(n.RPL_WHOSPCRPL, *(values[field] for field in whox[0]))


@command("WHO")
async def who(ctx: Context, client: Client, message: Message) -> None:
    mask = message.params[0] if message.params and message.params[0] else "*"
    whox = _whox_request(message)
    answer = await queries.who(ctx, client, mask)
    for row in answer.rows:
        _who_line(ctx, client, row, whox)
    if answer.truncated:  # ircu's and ratbox's numeric for it
        client.reply(n.ERR_TOOMANYMATCHES, "WHO", "Output too large, truncated")
    client.reply(n.RPL_ENDOFWHO, mask, "End of /WHO list")


@command("WHOIS", params=1)
async def whois(ctx: Context, client: Client, message: Message) -> None:
    nick = message.params[-1].split(",")[0]
    try:
        found = await queries.whois(ctx, client, nick or "*")
    except ChatError as error:  # answered, then the end of the list all the same
        reply_to(client, error)
        client.reply(n.RPL_ENDOFWHOIS, nick or "*", "End of /WHOIS list")
        return
    user, nick = found.user, found.user.nick
    client.reply(n.RPL_WHOISUSER, nick, user.username, user.host, "*", user.realname)
    every = "multi-prefix" in client.caps
    if found.channels:
        client.reply(n.RPL_WHOISCHANNELS, nick, " ".join(status.symbols(every) + name
                                                         for status, name in found.channels))
    client.reply(n.RPL_WHOISSERVER, nick, ctx.name, ctx.settings.network_name)
    if user.oper:
        client.reply(n.RPL_WHOISOPERATOR, nick, "is an IRC operator")
    if user.away:
        client.reply_away(nick, user.away)
    if user.account:
        client.reply(n.RPL_WHOISACCOUNT, nick, user.account, "is logged in as")
    if user.secure:
        client.reply(n.RPL_WHOISSECURE, nick, "is using a secure connection")
    if user.uid == client.uid:
        address = client.transport.peer_ip  # where it connects from, whatever its host shows
        client.reply(n.RPL_WHOISHOST, nick, f"is connecting from *@{address} {address}")
    if found.idle is not None:
        client.reply(n.RPL_WHOISIDLE, nick, str(found.idle), str(user.signon), "seconds idle, signon time")
    client.reply(n.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")


@command("WHOWAS", params=1)
async def whowas(ctx: Context, client: Client, message: Message) -> None:
    nick = message.params[0]
    try:
        count = int(message.params[1]) if len(message.params) > 1 else 0
    except ValueError:
        count = 0
    entries = await queries.whowas(ctx, nick, count)
    if not entries:
        reply_to(client, WasNoSuchNick(nick))
    for entry in entries:
        client.reply(n.RPL_WHOWASUSER, entry.nick, entry.username, entry.host, "*", entry.realname)
        when = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(entry.at))
        client.reply(n.RPL_WHOISSERVER, entry.nick, entry.server or ctx.name, when)
    client.reply(n.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")


@command("ISON", params=1)
async def ison(ctx: Context, client: Client, message: Message) -> None:
    users = await queries.users_named(ctx, " ".join(message.params).split())
    client.reply(n.RPL_ISON, " ".join(user.nick for user in users))


@command("USERHOST", params=1)
async def userhost(ctx: Context, client: Client, message: Message) -> None:
    users = await queries.users_named(ctx, message.params[:USERHOST_NICKS])
    replies = [f"{user.nick}={'-' if user.away else '+'}{user.username}@{user.host}" for user in users]
    client.reply(n.RPL_USERHOST, " ".join(replies))
