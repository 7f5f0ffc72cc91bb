"""labeled-response: a command sent with a `label` tag gets its replies labelled.

No reply: an ACK with the label; one: the label on it; more: a `labeled-response` batch. The
replies are held while the command runs (`Client.hold`), then sent labelled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from apps.ircd.client import LABELLING, Client
from apps.ircd.protocol import format_line


@contextlib.contextmanager
def labelled(client: Client, label: str) -> Iterator[None]:
    """Hold what `client` is sent by the command run inside, then send it labelled."""
    client.hold()
    token = LABELLING.set(client)
    try:
        yield
    finally:
        LABELLING.reset(token)
        _send_labelled(client, label, client.release())


def _send_labelled(client: Client, label: str, lines: list[str]) -> None:
    if not lines:
        client.send(format_line("ACK", [], source=client.server_name, tags={"label": label}))
    elif len(lines) == 1:
        client.send(_with_tag(lines[0], _tag("label", label)))
    elif "batch" not in client.caps:
        for line in lines:
            client.send(line)
    else:
        ref = client.new_batch()
        client.send(format_line("BATCH", [f"+{ref}", "labeled-response"], source=client.server_name,
                                tags={"label": label}))
        for line in lines:
            client.send(_with_tag(line, f"batch={ref}"))
        client.send(format_line("BATCH", [f"-{ref}"], source=client.server_name))


def _tag(key: str, value: str) -> str:
    """`key=value` escaped as a message tag."""
    return format_line("X", [], tags={key: value}).split(" ", 1)[0][1:]


def _with_tag(line: str, tag: str) -> str:
    """A formatted line with one more tag in front of its others."""
    return f"@{tag};{line[1:]}" if line.startswith("@") else f"@{tag} {line}"
