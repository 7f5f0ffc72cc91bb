"""Operators and server information: OPER, KILL, WALLOPS, CHGHOST, TIME, INFO, HELP."""

from __future__ import annotations

import time

from apps.chat import numerics as n
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.help import TOPICS, index
from apps.ircd.isupport import VERSION
from apps.ircd.operations import operators
from apps.ircd.protocol import Message, format_line
from apps.ircd.registry import command


@command("OPER", params=2)
async def oper(ctx: Context, client: Client, message: Message) -> None:
    await operators.oper(ctx, client, message.params[0], message.params[1])
    client.reply(n.RPL_YOUREOPER, "You are now an IRC operator")


@command("KILL", params=1)
async def kill(ctx: Context, client: Client, message: Message) -> None:
    reason = message.params[1] if len(message.params) > 1 else client.nick
    await operators.kill(ctx, client, message.params[0], reason)


@command("WALLOPS", params=1)
async def wallops(ctx: Context, client: Client, message: Message) -> None:
    await operators.wallops(ctx, client, message.params[0])


@command("CHGHOST", params=3)
async def chghost(ctx: Context, client: Client, message: Message) -> None:
    """`CHGHOST <nick> <user> <host>`, as InspIRCd's and UnrealIRCd's operators know it; the
    operator is told it is done in a NOTICE (it may share no channel with the user)."""
    nick, username, host = message.params[:3]
    user = await operators.change_host(ctx, client, nick, username, host)
    client.send(format_line("NOTICE", [client.nick, f"{user.nick} is now {user.prefix}"],
                            source=ctx.name))


@command("TIME")
async def time_(ctx: Context, client: Client, message: Message) -> None:
    now = ctx.clock()
    client.reply(n.RPL_TIME, ctx.name, str(int(now)), "0",
                 time.strftime("%A %B %d %Y -- %H:%M:%S +00:00", time.gmtime(now)))


@command("INFO")
async def info(ctx: Context, client: Client, message: Message) -> None:
    for line in (f"{VERSION}: the canaduck chat's IRC gateway.",
                 "Stateless replicas sharing nicks, channels and history through Redis."):
        client.reply(n.RPL_INFO, line)
    client.reply(n.RPL_ENDOFINFO, "End of /INFO list")


@command("HELP", "HELPOP")
async def help_(ctx: Context, client: Client, message: Message) -> None:
    """`HELP [<subject>]` (Modern's numerics): a command's syntax and what it does, or without a
    subject the list of commands; 524 for a subject there is no help on."""
    subject = message.params[0].upper() if message.params else ""
    lines = list(TOPICS[subject]) if subject in TOPICS else (index() if not subject else None)
    named = subject or "*"
    if lines is None:
        client.reply(n.ERR_HELPNOTFOUND, message.params[0], "No help available on this topic")
        return
    client.reply(n.RPL_HELPSTART, named, lines[0])
    for line in lines[1:]:
        client.reply(n.RPL_HELPTXT, named, line)
    client.reply(n.RPL_ENDOFHELP, named, "End of /HELP")
