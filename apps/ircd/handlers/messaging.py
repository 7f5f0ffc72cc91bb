"""PRIVMSG, NOTICE and TAGMSG (apps/ircd/operations/messaging.py)."""

from __future__ import annotations

from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import NoRecipient, NoTextToSend, TooManyTargets
from apps.ircd.failures import answered
from apps.ircd.operations.messaging import send
from apps.ircd.protocol import Message
from apps.ircd.registry import command
from apps.ircd.render import deliver


@command("PRIVMSG", "NOTICE", "TAGMSG")
async def privmsg(ctx: Context, client: Client, message: Message) -> None:
    """A NOTICE never gets an automatic reply: the dispatcher and `answered` keep quiet."""
    command_, params = message.command, message.params
    if not params or not params[0]:
        raise NoRecipient(command_)
    if command_ != "TAGMSG" and (len(params) < 2 or not params[1]):
        raise NoTextToSend()
    targets = params[0].split(",")
    if len(targets) > ctx.settings.max_targets:
        raise TooManyTargets(params[0])
    tags = ({k: v for k, v in message.tags.items() if k.startswith("+")}
            if "message-tags" in client.caps else {})
    text = params[1] if command_ != "TAGMSG" else ""
    for target in targets:
        with answered(client, quiet=command_ == "NOTICE"):
            sent = await send(ctx, client, command_, target, text, tags)
            if command_ == "PRIVMSG" and sent.away:
                client.reply_away(sent.nick, sent.away)
            if "echo-message" in client.caps:
                deliver(client, sent.line)
