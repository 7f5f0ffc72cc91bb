"""IRCv3 account-registration: REGISTER makes an account on the users service and logs the
client in to it; VERIFY has nothing to complete, as no registration waits for a code."""

from __future__ import annotations

from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import Fail
from apps.ircd.handlers.caps import announce_login
from apps.ircd.operations.registration import register_account
from apps.ircd.protocol import Message, format_line
from apps.ircd.registry import command


@command("REGISTER", params=3, registered=False)
async def register(ctx: Context, client: Client, message: Message) -> None:
    # The email (second parameter) is not kept: the users service has no use for one, so it is
    # never required (no `email-required`) and any given is accepted and dropped.
    wanted, _email, password = message.params[:3]
    account = await register_account(ctx, client, wanted, password)
    success = format_line("REGISTER", ["SUCCESS", account, f"Account {account} registered"], source=ctx.name)
    await announce_login(ctx, client, account, success)


@command("VERIFY", params=2, registered=False)
async def verify(ctx: Context, client: Client, message: Message) -> None:
    # REGISTER never answers VERIFICATION_REQUIRED, so there is no code to check.
    account = message.params[0]
    if client.account:
        raise Fail("VERIFY", "ALREADY_AUTHENTICATED", (client.account,), "You are already logged in")
    raise Fail("VERIFY", "INVALID_CODE", (account,), "No registration is waiting for a code")
