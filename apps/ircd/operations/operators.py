"""IRC operators: OPER, and what only they may do (KILL, WALLOPS, CHGHOST)."""

from __future__ import annotations

import hmac
from dataclasses import replace

from apps.chat.events import Kill
from apps.chat.records import User
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import Fail, NoOperHost, NoPrivileges, NoSuchNick, PasswordMismatch
from apps.ircd.lines import client_line, line, user_line
from apps.ircd.operations import devices
from apps.ircd.operations.leave import leave
from apps.ircd.operations.lookup import user_named
from apps.ircd.operations.neighbours import tell_neighbours_of
from apps.ircd.protocol import format_line, valid_host, valid_new_user


def _operators(ctx: Context) -> dict[str, str]:
    """IRC_OPERS: `name:password` pairs."""
    pairs = [p.split(":", 1) for p in ctx.settings.irc_opers.split(",") if ":" in p]
    return {name: password for name, password in pairs}


async def oper(ctx: Context, client: Client, name: str, password: str) -> None:
    """Become an IRC operator (user mode +o); NoOperHost, PasswordMismatch."""
    expected = _operators(ctx).get(name)
    if expected is None:
        raise NoOperHost()
    if not hmac.compare_digest(expected.encode(), password.encode()):
        raise PasswordMismatch()
    if not client.oper:
        client.set_mode("o", True)
        await ctx.store.count_user_mode("o", client.uid, True)
        await ctx.store.update_user(client.to_user(ctx.instance), "modes")
        client.send(format_line("MODE", [client.nick, "+o"], source=client.prefix))
        await devices.sync(ctx, client, line(client.prefix, "MODE", [client.nick, "+o"], ctx.clock(),
                                             id=ctx.new_id()))


def _operator_only(client: Client) -> None:
    if not client.oper:
        raise NoPrivileges()


async def kill(ctx: Context, client: Client, nick: str, reason: str) -> None:
    """Close `nick`'s connection, on whichever replica holds it; NoPrivileges, NoSuchNick."""
    _operator_only(client)
    user = await user_named(ctx, nick)
    reason = f"Killed ({client.nick} ({reason}))"
    if not user.instances:  # an always-on user with no device: nothing to close, it just goes
        await leave(ctx, user, reason)
        return
    await ctx.delivery.to_uids({user.uid: user.instance}, Kill(reason))


async def wallops(ctx: Context, client: Client, text: str) -> None:
    """A message to every client with user mode +w, on every replica; NoPrivileges."""
    _operator_only(client)
    await ctx.delivery.to_everyone(client_line(client, "WALLOPS", [text], ctx.clock(), umode="w"))


async def change_host(ctx: Context, client: Client, nick: str, username: str, host: str) -> User:
    """CHGHOST: give `nick`'s user a new user name and host, on whichever replica its devices
    are; they and the clients sharing a channel with it (or MONITORing it, with
    extended-monitor) are told with `chghost` (`:nick!olduser@oldhost CHGHOST <user> <host>`).
    Its record as it is now. NoPrivileges, Fail INVALID_PARAMS, NoSuchNick."""
    _operator_only(client)
    if not valid_new_user(username):
        raise Fail("CHGHOST", "INVALID_PARAMS", (), "Invalid user name")
    if not valid_host(host):
        raise Fail("CHGHOST", "INVALID_PARAMS", (), "Invalid host")
    user = await user_named(ctx, nick)
    if (user.username, user.host) == (username, host):
        return user  # nothing changes: nothing to tell
    if not await ctx.store.set_host(user.uid, username, host):
        raise NoSuchNick(nick)  # it left since it was found
    changed = replace(user, username=username, host=host)
    line = user_line(user.prefix, user.account, "CHGHOST", [username, host], ctx.clock(),
                     needs=("chghost",), id=ctx.new_id())
    # Its devices first: each takes the new host before the line reaches it through a
    # channel, so that what it says next already carries the new prefix.
    await devices.impose(ctx, changed, line)
    await tell_neighbours_of(ctx, changed, line)
    return changed
