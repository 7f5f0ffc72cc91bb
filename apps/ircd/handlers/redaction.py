"""REDACT (draft/message-redaction, apps/ircd/operations/redaction.py)."""

from __future__ import annotations

from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.operations.redaction import redact
from apps.ircd.protocol import Message
from apps.ircd.registry import command


@command("REDACT", params=2)
async def redact_command(ctx: Context, client: Client, message: Message) -> None:
    """REDACT <target> <msgid> [<reason>]."""
    reason = message.params[2] if len(message.params) > 2 else ""
    await redact(ctx, client, message.params[0], message.params[1], reason)
