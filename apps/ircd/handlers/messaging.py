"""PRIVMSG, NOTICE and TAGMSG (apps/ircd/operations/messaging.py); a line of a multiline batch
(tagged `batch`) is kept by the client's open batch instead (apps/ircd/multiline.py)."""

from __future__ import annotations

from apps.chat.conversations import MessageLine
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import Fail, NoRecipient, NoTextToSend, TooManyTargets
from apps.ircd.failures import answered, reply_to_batch
from apps.ircd.labels import deferred
from apps.ircd.multiline import CONCAT_TAG, ClientBatches, Limits
from apps.ircd.operations.messaging import send
from apps.ircd.protocol import Message
from apps.ircd.registry import command
from apps.ircd.render import deliver


@command("PRIVMSG", "NOTICE", "TAGMSG")
async def privmsg(ctx: Context, client: Client, message: Message) -> None:
    """A NOTICE never gets an automatic reply: the dispatcher and `answered` keep quiet."""
    command_, params = message.command, message.params
    if "batch" in message.tags:
        batched(ctx, client, message)
        return
    if not params or not params[0]:
        raise NoRecipient(command_)
    if command_ != "TAGMSG" and (len(params) < 2 or not params[1]):
        raise NoTextToSend()
    targets = params[0].split(",")
    if len(targets) > ctx.settings.max_targets:
        raise TooManyTargets(params[0])
    text = params[1] if command_ != "TAGMSG" else ""
    for target in targets:
        await send_to(ctx, client, command_, target, text, client_tags(client, message))


def client_tags(client: Client, message: Message) -> dict[str, str]:
    """The client-only tags (`+...`) a message carries, relayed to those with message-tags."""
    if "message-tags" not in client.caps:
        return {}
    return {k: v for k, v in message.tags.items() if k.startswith("+")}


async def send_to(ctx: Context, client: Client, command_: str, target: str, text: str, tags: dict[str, str],
                  lines: tuple[MessageLine, ...] = ()) -> None:
    """Send to one target and answer: its refusal (not a NOTICE's), the away message of the
    nick it went to (PRIVMSG), the echo (echo-message). `lines`: a multiline message's."""
    with answered(client, quiet=command_ == "NOTICE"):
        sent = await send(ctx, client, command_, target, text, tags, lines)
        if command_ == "PRIVMSG" and sent.away:
            client.reply_away(sent.nick, sent.away)
        if "echo-message" in client.caps:
            deliver(client, sent.line)


def batched(ctx: Context, client: Client, message: Message) -> None:
    """A line of a multiline batch: kept until the batch's end, which answers it (labelled with
    the opening's label). A refusal is `FAIL BATCH`, for a NOTICE too: it is the batch's."""
    batches = client.multiline = client.multiline or ClientBatches()
    limits = Limits(ctx.settings.multiline_max_bytes, ctx.settings.multiline_max_lines)
    label = batches.label
    try:
        batches.add(message.tags["batch"], message.command, message.params, CONCAT_TAG in message.tags,
                    limits)
    except Fail as error:
        reply_to_batch(client, error, label)
    deferred()
