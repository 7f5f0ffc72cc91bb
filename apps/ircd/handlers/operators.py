"""Operators and server information: OPER, KILL, WALLOPS, TIME, INFO."""

from __future__ import annotations

import hmac
import time

from apps.chat import numerics as n
from apps.ircd.client import Client
from apps.ircd.handlers.connection import VERSION
from apps.ircd.protocol import Message, casefold, format_line
from apps.ircd.registry import command


def operators(client: Client) -> dict[str, str]:
    pairs = [p.split(":", 1) for p in client.server.settings.irc_opers.split(",") if ":" in p]
    return {name: password for name, password in pairs}


@command("OPER", params=2)
async def oper(client: Client, message: Message) -> None:
    name, password = message.params[0], message.params[1]
    expected = operators(client).get(name)
    if expected is None:
        client.reply(n.ERR_NOOPERHOST, "No O-lines for your host")
        return
    if not hmac.compare_digest(expected.encode(), password.encode()):
        client.reply(n.ERR_PASSWDMISMATCH, "Password incorrect")
        return
    if not client.oper:
        client.oper = True
        await client.server.store.set_flag("opers", client.uid, True)
        await client.server.store.update_user(client.uid, modes=client.modes)
        client.send(format_line("MODE", [client.nick, "+o"], source=client.prefix))
    client.reply(n.RPL_YOUREOPER, "You are now an IRC operator")


@command("KILL", params=1)
async def kill(client: Client, message: Message) -> None:
    if not client.oper:
        client.reply(n.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
        return
    target = message.params[0]
    reason = message.params[1] if len(message.params) > 1 else client.nick
    user = await client.server.store.user_by_nick(casefold(target))
    if user is None:
        client.reply(n.ERR_NOSUCHNICK, target, "No such nick/channel")
        return
    await client.server.to_uids({user["uid"]: user.get("inst", "")},
                                {"kind": "kill", "reason": f"Killed ({client.nick} ({reason}))"})


@command("WALLOPS", params=1)
async def wallops(client: Client, message: Message) -> None:
    if not client.oper:
        client.reply(n.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
        return
    server = client.server
    await server.to_everyone(client.event("WALLOPS", [message.params[0]], umode="w"))


@command("TIME")
async def time_(client: Client, message: Message) -> None:
    now = client.server.clock()
    client.reply(n.RPL_TIME, client.server.name, str(int(now)), "0",
                 time.strftime("%A %B %d %Y -- %H:%M:%S +00:00", time.gmtime(now)))


@command("INFO")
async def info(client: Client, message: Message) -> None:
    for line in (f"{VERSION}: the canaduck chat's IRC gateway.",
                 "Stateless replicas sharing nicks, channels and history through Redis."):
        client.reply(n.RPL_INFO, line)
    client.reply(n.RPL_ENDOFINFO, "End of /INFO list")
