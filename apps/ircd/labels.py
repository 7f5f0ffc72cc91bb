"""labeled-response: a command sent with a `label` tag gets its replies labelled.

No reply: an ACK with the label; one: the label on it, and on the start of a reply that is one
multiline batch (an echo: "an existing type applicable to the entire response", and the
multiline spec puts the label there); more: a `labeled-response` batch. The replies are held
while the command runs (`Client.hold`), then sent labelled. A command whose answer comes with a
later one (a multiline batch's opening BATCH and its lines, answered at its end) says so
(`deferred`): no ACK then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from apps.ircd.client import LABELLING, Client
from apps.ircd.protocol import format_line

#: Set by a command running labelled whose answer is a later command's (see `deferred`).
_DEFERRED: ContextVar[bool] = ContextVar("label_deferred", default=False)


def deferred() -> None:
    """The running command's answer comes later, labelled by the command that ends it (a
    multiline batch's end, with its opening's label): if it sends nothing now, no ACK."""
    _DEFERRED.set(True)


@contextlib.contextmanager
def labelled(client: Client, label: str) -> Iterator[None]:
    """Hold what `client` is sent by the command run inside, then send it labelled."""
    client.hold()
    token = LABELLING.set(client)
    later = _DEFERRED.set(False)
    try:
        yield
    finally:
        LABELLING.reset(token)
        held, answered_later = client.release(), _DEFERRED.get()
        _DEFERRED.reset(later)
        if held or not answered_later:
            _send_labelled(client, label, held)


def _send_labelled(client: Client, label: str, lines: list[str]) -> None:
    if not lines:
        client.send(format_line("ACK", [], source=client.server_name, tags={"label": label}))
    elif len(lines) == 1 or _one_batch(lines):
        client.send(_with_tag(lines[0], _tag("label", label)))
        for line in lines[1:]:
            client.send(line)
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


def _one_batch(lines: list[str]) -> bool:
    """Whether a reply is one multiline batch (an echo) from its start to its end, every line
    between in it. Other replies of several lines keep their labeled-response batch."""
    start = _words(lines[0])
    if len(start) < 3 or start[0] != "BATCH" or start[2] != "draft/multiline":
        return False
    ref = start[1].removeprefix("+")
    return _words(lines[-1]) == ["BATCH", f"-{ref}"] and all(_in_batch(line, ref) for line in lines[1:-1])


def _words(line: str) -> list[str]:
    """A formatted line's words, its tags and source left out."""
    words = line.split(" ")
    while words and words[0][:1] in ("@", ":"):
        words.pop(0)
    return words


def _in_batch(line: str, ref: str) -> bool:
    return line.startswith("@") and f"batch={ref}" in line[1:].split(" ", 1)[0].split(";")


def _tag(key: str, value: str) -> str:
    """`key=value` escaped as a message tag."""
    return format_line("X", [], tags={key: value}).split(" ", 1)[0][1:]


def _with_tag(line: str, tag: str) -> str:
    """A formatted line with one more tag in front of its others."""
    return f"@{tag};{line[1:]}" if line.startswith("@") else f"@{tag} {line}"
