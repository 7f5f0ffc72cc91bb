"""IRCv3 capability negotiation (CAP 302) and SASL PLAIN against the users service."""

from __future__ import annotations

import base64
import binascii
import logging

import httpx

from apps.ircd import numerics as n
from apps.ircd.client import Client
from apps.ircd.handlers.connection import try_register
from apps.ircd.protocol import Message, format_line
from apps.ircd.registry import command
from apps.kit.casemap import casefold

log = logging.getLogger("canaduck.ircd.sasl")

#: What the gateway implements, each with its CAP 302 value.
CAPABILITIES = {
    "account-tag": "", "away-notify": "", "batch": "", "cap-notify": "", "draft/chathistory": "",
    "echo-message": "", "extended-join": "", "extended-monitor": "", "labeled-response": "",
    "message-tags": "", "multi-prefix": "", "server-time": "", "setname": "", "userhost-in-names": "",
}
SASL_CHUNK = 400


def offered(client: Client) -> dict[str, str]:
    caps = dict(CAPABILITIES)
    if client.server.settings.users_url:
        caps["sasl"] = "PLAIN"
    return caps


def _cap(client: Client, *params: str) -> None:
    client.send(format_line("CAP", [client.nick, *params], source=client.server.name))


@command("CAP", params=1, registered=False)
async def cap(client: Client, message: Message) -> None:
    sub = message.params[0].upper()
    caps = offered(client)
    if sub == "LS":
        if not client.registered:
            client.negotiating = True
        version = message.params[1] if len(message.params) > 1 else ""
        if version.isdigit() and int(version) >= 302:
            client.cap_version = 302
            client.caps.add("cap-notify")
        items = [f"{k}={v}" if v and client.cap_version >= 302 else k for k, v in sorted(caps.items())]
        _cap(client, "LS", " ".join(items))
    elif sub == "LIST":
        _cap(client, "LIST", " ".join(sorted(client.caps)))
    elif sub == "REQ":
        if not client.registered:
            client.negotiating = True
        wanted = message.params[1].split() if len(message.params) > 1 else []
        changes = [(c[1:], False) if c.startswith("-") else (c, True) for c in wanted]
        if not wanted or any(name not in caps for name, _ in changes):
            _cap(client, "NAK", " ".join(wanted))
            return
        if any(name == "cap-notify" and not on and client.cap_version >= 302 for name, on in changes):
            _cap(client, "NAK", " ".join(wanted))
            return
        for name, on in changes:
            if on:
                client.caps.add(name)
            else:
                client.caps.discard(name)
        _cap(client, "ACK", " ".join(wanted))
    elif sub == "END":
        if not client.registered:
            client.negotiating = False
            await try_register(client)
    else:
        client.reply(n.ERR_INVALIDCAPCMD, message.params[0], "Invalid CAP command")


@command("AUTHENTICATE", params=1, registered=False)
async def authenticate(client: Client, message: Message) -> None:
    settings = client.server.settings
    arg = message.params[0]
    if not settings.users_url:
        client.reply(n.ERR_SASLFAIL, "SASL authentication failed")
        return
    if arg == "*":
        client.sasl_mechanism, client.sasl_buffer = "", ""
        client.reply(n.ERR_SASLABORTED, "SASL authentication aborted")
        return
    if client.account:
        client.reply(n.ERR_SASLALREADY, "You have already authenticated using SASL")
        return
    if not client.sasl_mechanism:
        if arg.upper() != "PLAIN":
            client.reply(n.RPL_SASLMECHS, "PLAIN", "are available SASL mechanisms")
            client.reply(n.ERR_SASLFAIL, "SASL authentication failed")
            return
        client.sasl_mechanism = "PLAIN"
        client.send("AUTHENTICATE +")
        return
    if len(arg) > SASL_CHUNK:
        client.sasl_mechanism, client.sasl_buffer = "", ""
        client.reply(n.ERR_SASLTOOLONG, "SASL message too long")
        return
    if arg != "+":
        client.sasl_buffer += arg
        if len(client.sasl_buffer) > 4 * SASL_CHUNK:  # 905 is for one line over 400 bytes
            client.sasl_mechanism, client.sasl_buffer = "", ""
            client.reply(n.ERR_SASLFAIL, "SASL authentication failed: message too long")
            return
        if len(arg) == SASL_CHUNK:
            return  # more chunks follow
    payload, client.sasl_buffer, client.sasl_mechanism = client.sasl_buffer, "", ""
    try:
        authzid, authcid, password = base64.b64decode(payload, validate=True).decode().split("\0")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        client.reply(n.ERR_SASLFAIL, "SASL authentication failed: bad PLAIN message")
        return
    account = await verify(client, authcid, password)
    if account is None or (authzid and authzid != authcid):
        client.reply(n.ERR_SASLFAIL, "SASL authentication failed")
        return
    client.account = account
    if client.registered:
        await client.server.store.log_in(client.uid, account)
    client.reply(n.RPL_LOGGEDIN, client.prefix if client.registered else f"{client.nick}!*@*", account,
                 f"You are now logged in as {account}")
    client.reply(n.RPL_SASLSUCCESS, "SASL authentication successful")


async def verify(client: Client, account: str, password: str) -> str | None:
    """The account's name if the users service takes `password` for `account`, else None.

    The password may be a web session token of that account (the chat page logs in with
    its token, never the password): that is asked first, as it is cheap and not counted,
    whereas a wrong password costs the users service a hash and counts towards throttling
    the account, which would lock out a page that reloads or reconnects often. Anything
    else is the users service's password check, unchanged."""
    owner = await _ask_users(client, "/internal/sessions/check", {"token": password})
    if owner is not None and casefold(owner) == casefold(account):
        return owner
    return await _ask_users(client, "/internal/verify", {"account": account, "password": password,
                                                         "address": client.transport.peer_ip})


async def _ask_users(client: Client, route: str, body: dict[str, str]) -> str | None:
    """The `account` of the users service's 200 answer to `route`; None for any other answer."""
    url = client.server.settings.users_url.rstrip("/") + route
    try:
        response = await client.server.users_http.post(url, json=body)
    except httpx.HTTPError as exc:
        log.warning("users service unreachable for SASL: %s", exc)
        return None
    if response.status_code != 200:
        return None
    try:
        account = response.json().get("account")
    except (ValueError, AttributeError):
        return None
    return account if isinstance(account, str) and account else None
