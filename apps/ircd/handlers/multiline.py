"""BATCH from a client: IRCv3 draft/multiline's opening and end (apps/ircd/multiline.py keeps
the batch and checks it; its lines come as PRIVMSG or NOTICE, apps/ircd/handlers/messaging.py).
At its end the batch is sent as one PRIVMSG or NOTICE is, with its lines."""

from __future__ import annotations

from apps.chat.conversations import joined
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import Fail
from apps.ircd.failures import reply_to_batch
from apps.ircd.handlers.messaging import client_tags, send_to
from apps.ircd.labels import deferred, labelled
from apps.ircd.multiline import ClientBatches, OpenBatch
from apps.ircd.protocol import Message
from apps.ircd.registry import command
from apps.ircd.render import reads_multiline


@command("BATCH", params=1)
async def batch(ctx: Context, client: Client, message: Message) -> None:
    """`BATCH +<ref> draft/multiline <target>` (client-only tags on it are the message's), then
    `BATCH -<ref>`. The opening gets no answer of its own, not even a labelled ACK: the end's
    answer carries the opening's label unless the end has one of its own."""
    reference, params = message.params[0], message.params[1:]
    batches = client.multiline = client.multiline or ClientBatches()
    label = message.tags.get("label", "") if "labeled-response" in client.caps else ""
    opened_with = batches.label
    try:
        if reference.startswith("+"):
            batches.start(reference[1:], params, client_tags(client, message), label=label,
                          negotiated=reads_multiline(client))
            deferred()
            return
        if not reference.startswith("-"):
            raise Fail("BATCH", "MULTILINE_INVALID", (), "A batch reference starts with + or -")
        done = batches.end(reference[1:])
    except Fail as error:
        # A refusal that dropped the open batch is the answer its opening's label waits for.
        reply_to_batch(client, error, opened_with if batches.open is None else "")
        return
    if done is None:
        return
    if done.label and not label:
        with labelled(client, done.label):
            await _send(ctx, client, done)
    else:
        await _send(ctx, client, done)


async def _send(ctx: Context, client: Client, done: OpenBatch) -> None:
    lines = tuple(done.lines)
    await send_to(ctx, client, done.command, done.target, joined(lines), done.tags, lines)
