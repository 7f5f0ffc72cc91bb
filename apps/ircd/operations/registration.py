"""Registration: once NICK, USER and capability negotiation are done, a connection becomes a
user every replica can see; logging in to an account (SASL PLAIN), before or after; making an
account (IRCv3 REGISTER) on the users service, which logs the client in to it."""

from __future__ import annotations

import base64
import binascii

from apps.ircd.accounts import Refusal
from apps.ircd.capabilities import before_connect
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import Fail, NicknameInUse, PasswordMismatch, SaslFailed
from apps.ircd.operations import devices, monitor
from apps.ircd.operations.identity import may_use
from apps.ircd.protocol import casefold, valid_nick
from apps.ircd.store import Registered

#: REGISTER's standard reply for each refusal of the users service, and its text.
REFUSALS: dict[Refusal, tuple[str, str]] = {
    Refusal.EXISTS: ("ACCOUNT_EXISTS", "Account already exists"),
    Refusal.BAD_NAME: ("BAD_ACCOUNT_NAME", "Account name is not a valid nick"),
    Refusal.WEAK_PASSWORD: ("WEAK_PASSWORD", "Password is too short"),
    Refusal.BAD_PASSWORD: ("UNACCEPTABLE_PASSWORD", "Password is too long, blank or has a control character"),
    Refusal.UNAVAILABLE: ("TEMPORARILY_UNAVAILABLE", "Accounts cannot be made now, try again later"),
}


async def register(ctx: Context, client: Client) -> Registered | None:
    """Register the client if it is ready (nick, user, negotiation over): what its welcome
    needs if it did now, else None.
    A client logged in to an account that asked for the nick its account's user holds becomes
    a device of that user (apps/ircd/operations/devices.py). NicknameInUse if its nick is an
    account's it is not logged in to, or its account's user has all the devices it may (the
    nick is given back); PasswordMismatch (closing) without the server's password."""
    if client.registered or not client.nick_cf or not client.username or client.negotiating:
        return None
    if ctx.settings.irc_password and client.password != ctx.settings.irc_password:
        raise PasswordMismatch(closes=True)
    user = await devices.attachable(ctx, client) if client.attach_to else None
    if user is not None:
        await devices.attach(ctx, client, user)
        return Registered({}, await ctx.store.counts())
    if not may_use(client, client.nick_cf, client.nick_reserved):
        await ctx.store.release_nick(client.nick_cf, client.uid)
        nick, client.nick, client.nick_cf = client.nick, "*", ""
        raise NicknameInUse(nick, reserved=True)
    if client.account:
        client.always_on = await ctx.accounts.always_on(client.account, ctx.settings.always_on)
    client.registered = True
    ctx.roster.add(client)
    # One round trip: the record (and unregistered -1), its nick's watchers, LUSERS' counts.
    registered = await ctx.store.register_user(client.to_user(ctx.instance), client.device, client.nick_cf)
    await ctx.roster.follow_nick(client, client.nick)
    await monitor.tell_online(ctx, client.uid, client.nick_cf, client.prefix, registered.watchers)
    return registered


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
    await _logged_in(ctx, client, account)
    return account


async def register_account(ctx: Context, client: Client, wanted: str, password: str) -> str:
    """IRCv3 REGISTER: make the account `wanted` ("*": the client's nick) with `password` on
    the users service, and log the client in to it; the account as registered. A refusal is
    `Fail` with the specification's code. The account must be named for the nick the client
    holds, so that nobody registers a nick someone else is using."""
    def refused(code: str, text: str, account: str = wanted) -> Fail:
        return Fail("REGISTER", code, (account,), text)

    if not ctx.accounts.available:
        raise refused(*REFUSALS[Refusal.UNAVAILABLE])
    if client.account:
        raise refused("ALREADY_AUTHENTICATED", "You are already logged in", client.account)
    if not client.registered and not before_connect(ctx.settings):
        raise refused("COMPLETE_CONNECTION_REQUIRED", "Register your connection first")
    if not client.nick_cf:
        # A nick asked for and refused (432, 433) is not one an account can be named for.
        if not client.asked_nick:
            raise refused("NEED_NICK", "Choose a nick first", "*")
        if not valid_nick(client.asked_nick, ctx.settings.nick_length):
            raise refused(*REFUSALS[Refusal.BAD_NAME], client.asked_nick)
        raise refused("ACCOUNT_EXISTS", "That nick is not available", client.asked_nick)
    account = client.nick if wanted == "*" else wanted
    if casefold(account) != client.nick_cf:
        raise refused("ACCOUNT_NAME_MUST_BE_NICK", "An account is named for your current nick")
    created = await ctx.accounts.register(account, password)
    if isinstance(created, Refusal):
        raise refused(*REFUSALS[created], account)
    await _logged_in(ctx, client, created)
    return created


async def _logged_in(ctx: Context, client: Client, account: str) -> None:
    """The client is now logged in to `account` (and every replica sees it, once registered)."""
    client.account = account
    if client.registered:
        client.always_on = await ctx.accounts.always_on(account, ctx.settings.always_on)
        await ctx.store.log_in(client.to_user(ctx.instance))
