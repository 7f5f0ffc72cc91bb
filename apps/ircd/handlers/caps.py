"""IRCv3 capability negotiation (CAP 302) and SASL PLAIN (AUTHENTICATE)."""

from __future__ import annotations

from apps.chat import numerics as n
from apps.ircd.capabilities import Offer, offered, requestable
from apps.ircd.client import Client, shared_caps
from apps.ircd.context import Context
from apps.ircd.errors import InvalidCapCommand, SaslAborted, SaslAlready, SaslFailed, SaslTooLong
from apps.ircd.handlers.registration import finish_registration
from apps.ircd.operations.identity import tell_account
from apps.ircd.operations.registration import log_in
from apps.ircd.protocol import Message, format_line
from apps.ircd.registry import command

#: Bytes of one AUTHENTICATE line; a message of exactly that many continues on the next.
SASL_CHUNK = 400


def offer_for(ctx: Context, client: Client) -> Offer:
    """What decides the capabilities' values for this connection."""
    transport = client.transport
    return Offer(ctx.settings, secure=transport.secure, sasl=ctx.accounts.available,
                 server_name=transport.server_name, direct=transport.direct)


def _cap(ctx: Context, client: Client, *params: str) -> None:
    client.send(format_line("CAP", [client.nick, *params], source=ctx.name))


@command("CAP", params=1, registered=False)
async def cap(ctx: Context, client: Client, message: Message) -> None:
    sub = message.params[0].upper()
    if sub == "LS":
        if not client.registered:
            client.negotiating = True
        version = message.params[1] if len(message.params) > 1 else ""
        if version.isdigit() and int(version) >= 302:
            client.cap_version = 302
            client.caps = shared_caps(client.caps | {"cap-notify"})
        values = client.cap_version >= 302
        caps = offered(offer_for(ctx, client))
        items = [f"{k}={v}" if v and values else k for k, v in sorted(caps.items())]
        _cap(ctx, client, "LS", " ".join(items))
    elif sub == "LIST":
        _cap(ctx, client, "LIST", " ".join(sorted(client.caps)))
    elif sub == "REQ":
        _request(ctx, client, message.params[1].split() if len(message.params) > 1 else [])
    elif sub == "END":
        if not client.registered:
            client.negotiating = False
            await finish_registration(ctx, client)
    else:
        raise InvalidCapCommand(message.params[0])


def _request(ctx: Context, client: Client, wanted: list[str]) -> None:
    """CAP REQ: all of `wanted` (`-name` to drop one) or none of them."""
    if not client.registered:
        client.negotiating = True
    changes = [(c[1:], False) if c.startswith("-") else (c, True) for c in wanted]
    offer = offer_for(ctx, client)
    if not wanted or any(not requestable(name, offer) for name, _ in changes) or \
            any(name == "cap-notify" and not on and client.cap_version >= 302 for name, on in changes):
        _cap(ctx, client, "NAK", " ".join(wanted))
        return
    caps = set(client.caps)
    for name, on in changes:
        (caps.add if on else caps.discard)(name)
    client.caps = shared_caps(caps)
    _cap(ctx, client, "ACK", " ".join(wanted))


@command("AUTHENTICATE", params=1, registered=False)
async def authenticate(ctx: Context, client: Client, message: Message) -> None:
    arg = message.params[0]
    if not ctx.accounts.available:
        raise SaslFailed()
    if arg == "*":
        client.sasl_mechanism, client.sasl_buffer = "", ""
        raise SaslAborted()
    if client.account:
        raise SaslAlready()
    if not client.sasl_mechanism:
        if arg.upper() != "PLAIN":
            client.reply(n.RPL_SASLMECHS, "PLAIN", "are available SASL mechanisms")
            raise SaslFailed()
        client.sasl_mechanism = "PLAIN"
        client.send("AUTHENTICATE +")
        return
    if len(arg) > SASL_CHUNK:
        client.sasl_mechanism, client.sasl_buffer = "", ""
        raise SaslTooLong()
    if arg != "+":
        client.sasl_buffer += arg
        if len(client.sasl_buffer) > 4 * SASL_CHUNK:  # 905 is for one line over 400 bytes
            client.sasl_mechanism, client.sasl_buffer = "", ""
            raise SaslFailed("message too long")
        if len(arg) == SASL_CHUNK:
            return  # more chunks follow
    payload, client.sasl_buffer, client.sasl_mechanism = client.sasl_buffer, "", ""
    account = await log_in(ctx, client, payload)
    success = format_line(n.RPL_SASLSUCCESS, [client.nick, "SASL authentication successful"], source=ctx.name)
    await announce_login(ctx, client, account, success)


async def announce_login(ctx: Context, client: Client, account: str, success: str) -> None:
    """Tell a client it is logged in to `account` (900 RPL_LOGGEDIN, then the `success` line of
    the command that did it), and its neighbours (account-notify)."""
    client.reply(n.RPL_LOGGEDIN, client.prefix if client.registered else f"{client.nick}!*@*", account,
                 f"You are now logged in as {account}")
    client.send(success)
    if client.registered:  # before, nobody sees the client yet: its JOINs will carry the account
        await tell_account(ctx, client)
