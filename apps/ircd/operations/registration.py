"""Registration: once NICK, USER and capability negotiation are done, a connection becomes a
user every replica can see; logging in to an account (SASL PLAIN), before or after."""

from __future__ import annotations

import base64
import binascii

from apps.ircd.client import Client
from apps.ircd.context import Context, quietly
from apps.ircd.errors import NicknameInUse, PasswordMismatch, SaslFailed
from apps.ircd.operations import monitor
from apps.ircd.protocol import casefold


async def register(ctx: Context, client: Client) -> bool:
    """Register the client if it is ready (nick, user, negotiation over): True if it did now.
    NicknameInUse if its nick is an account's it is not logged in to (the nick is given back),
    PasswordMismatch (closing) without the server's password."""
    if client.registered or not client.nick_cf or not client.username or client.negotiating:
        return False
    if not await may_use(ctx, client, client.nick):
        await ctx.store.release_nick(client.nick_cf, client.uid)
        nick, client.nick, client.nick_cf = client.nick, "*", ""
        raise NicknameInUse(nick, reserved=True)
    if ctx.settings.irc_password and client.password != ctx.settings.irc_password:
        raise PasswordMismatch(closes=True)
    client.registered = True
    ctx.roster.clients[client.uid] = client
    await quietly(ctx.store.unregistered(ctx.instance, -1))
    await ctx.store.add_user(client.to_user(ctx.instance))
    await ctx.roster.follow_nick(client, client.nick)
    await monitor.tell_online(ctx, client.uid, client.nick_cf, client.prefix)
    return True


async def may_use(ctx: Context, client: Client, nick: str) -> bool:
    """False if `nick` is an account's name and the client is not logged in to it (allowed
    when the users service cannot say)."""
    owner = await ctx.accounts.owner_of(nick)
    return owner is None or casefold(owner) == casefold(client.account)


async def log_in(ctx: Context, client: Client, payload: str) -> str:
    """SASL PLAIN: log the client in with a base64 `authzid NUL authcid NUL password`, checked
    by the users service; the account. SaslFailed."""
    try:
        authzid, authcid, password = base64.b64decode(payload, validate=True).decode().split("\0")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SaslFailed("bad PLAIN message") from None
    account = await ctx.accounts.verify(authcid, password, client.transport.peer_ip)
    if account is None or (authzid and authzid != authcid):
        raise SaslFailed()
    client.account = account
    if client.registered:
        await ctx.store.log_in(client.to_user(ctx.instance))
    return account
