"""IRCv3 draft/multiline from a client: the batch a connection has open, and its checks.

A client opens `BATCH +<ref> draft/multiline <target>`, sends PRIVMSG (or NOTICE) lines tagged
`batch=<ref>` (one joined to the line before it without a line feed carries
`draft/multiline-concat`), and closes with `BATCH -<ref>`: the whole is then one message,
sent as a PRIVMSG is (apps/ircd/handlers/multiline.py). Nothing is delivered before the end.

Every refusal is a `FAIL BATCH <code>` (a `Fail`), and the batch is dropped at once: its
reference is remembered, so the rest of its lines and its end are ignored without a word. A
refused batch never delivers a part of itself, and one mistake is answered once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from apps.chat.conversations import MessageLine
from apps.ircd.errors import Fail
from apps.ircd.protocol import casefold

BATCH_TYPE = "draft/multiline"
#: The tag of a line joined to the one before it with no line feed.
CONCAT_TAG = "draft/multiline-concat"
#: What a batch reference may be (the batch spec's characters; a bound of our own).
_REF = re.compile(r"[A-Za-z0-9-]{1,64}")
#: References of refused batches kept per connection, their lines ignored quietly.
DROPPED_KEPT = 8
#: Commands that do not break an open batch: its own, and the keep-alives, which a client may
#: have to answer while it sends (a PONG to the server's PING).
DURING_BATCH = frozenset({"BATCH", "PRIVMSG", "NOTICE", "PING", "PONG"})


@dataclass(frozen=True, slots=True)
class Limits:
    """The capability's `max-bytes` (text, a line feed between two lines counting one) and
    `max-lines`."""

    max_bytes: int
    max_lines: int


@dataclass(slots=True)
class OpenBatch:
    """A batch being received: its target as the client wrote it, its client-only tags (sent
    on the opening BATCH, as the spec asks), the label its answer carries (labeled-response),
    and what has come so far."""

    ref: str
    target: str
    tags: dict[str, str]
    label: str = ""
    command: str = ""
    lines: list[MessageLine] = field(default_factory=list)
    size: int = 0

    @property
    def blank(self) -> bool:
        """No line with any text: not a message ("Clients MUST NOT send messages consisting
        entirely of blank lines")."""
        return not any(line.text for line in self.lines)


def _fail(code: str, description: str, *context: str) -> Fail:
    return Fail("BATCH", code, context, description)


def _invalid(description: str) -> Fail:
    return _fail("MULTILINE_INVALID", description)


class ClientBatches:
    """One connection's multiline batches: the one open, and the references of refused ones."""

    __slots__ = ("_dropped", "open")

    def __init__(self) -> None:
        self.open: OpenBatch | None = None
        self._dropped: list[str] = []

    def start(self, ref: str, params: list[str], tags: dict[str, str], *, label: str = "",
              negotiated: bool = True) -> None:
        """`BATCH +<ref> <type> <target>`: `params` are those after the reference. Refused:
        a batch of another type, before draft/multiline and batch are negotiated, without a
        target or with several, with a bad reference, or while another batch is open (which
        is dropped too: a client that nests batches has lost track of them)."""
        if not _REF.fullmatch(ref):
            raise _invalid("Invalid batch reference")
        if not params or params[0] != BATCH_TYPE:
            self._drop(ref)
            raise _fail("INVALID_PARAMS", "Unsupported batch type", params[0] if params else "*")
        if self.open is not None:
            self._drop(self.open.ref)
            self.open = None
            self._drop(ref)
            raise _invalid("A multiline batch is open already")
        if not negotiated:
            self._drop(ref)
            raise _invalid("Negotiate draft/multiline and batch first")
        target = params[1] if len(params) > 1 else ""
        if not target or "," in target:
            self._drop(ref)
            raise _invalid("A multiline batch needs one target")
        self._forget(ref)
        self.open = OpenBatch(ref, target, tags, label)

    def add(self, ref: str, command: str, params: list[str], concat: bool, limits: Limits) -> None:
        """A line tagged `batch=<ref>`: kept, or refused (the batch then dropped). A line of a
        refused batch is ignored."""
        batch = self.open
        if ref in self._dropped and (batch is None or batch.ref != ref):
            return
        if batch is None or batch.ref != ref:
            self._abandon()
            self._drop(ref)
            raise _invalid("Line tagged with a batch that is not open")
        try:
            self._check(batch, command, params, concat, limits)
        except Fail:
            self._abandon()
            raise

    def _check(self, batch: OpenBatch, command: str, params: list[str], concat: bool, limits: Limits) -> None:
        if command not in ("PRIVMSG", "NOTICE") or len(params) < 2:
            raise _invalid("A multiline batch holds PRIVMSG or NOTICE lines with a text")
        if batch.command and command != batch.command:
            raise _invalid("A multiline batch holds PRIVMSG or NOTICE lines, not both")
        target, text = params[0], params[1]
        if casefold(target) != casefold(batch.target):
            raise _fail("MULTILINE_INVALID_TARGET", "Invalid multiline target", batch.target, target)
        if concat and not text:
            raise _invalid("A blank line cannot be concatenated")
        # The first line joins nothing: a concat tag on it means nothing, and is not kept.
        concat = concat and bool(batch.lines)
        size = batch.size + len(text.encode()) + (1 if batch.lines and not concat else 0)
        if size > limits.max_bytes:
            raise _fail("MULTILINE_MAX_BYTES", f"Multiline batch max-bytes ({limits.max_bytes}) exceeded",
                        str(limits.max_bytes))
        if len(batch.lines) + 1 > limits.max_lines:
            raise _fail("MULTILINE_MAX_LINES", f"Multiline batch max-lines ({limits.max_lines}) exceeded",
                        str(limits.max_lines))
        batch.command = command
        batch.size = size
        batch.lines.append(MessageLine(text, concat))

    def end(self, ref: str) -> OpenBatch | None:
        """`BATCH -<ref>`: the batch, whole, to send; None for a refused batch's end (ignored).
        Refused: no such batch open, or a batch with no text."""
        batch = self.open
        if batch is not None and batch.ref == ref:
            self.open = None
            if batch.blank:
                raise _invalid("A multiline batch needs a line with text")
            return batch
        if ref in self._dropped:
            self._forget(ref)
            return None
        self._abandon()
        raise _invalid("No such multiline batch is open")

    @property
    def label(self) -> str:
        """The open batch's label (labeled-response), which its answer carries: its refusal's
        too."""
        return self.open.label if self.open is not None else ""

    def interrupted(self, command: str) -> Fail | None:
        """Another command while a batch is open: the batch is dropped, and this is its FAIL
        (the command itself then runs as usual). None when it does not break a batch."""
        if self.open is None or command in DURING_BATCH:
            return None
        self._abandon()
        return _invalid(f"{command} sent inside a multiline batch")

    def _abandon(self) -> None:
        if self.open is not None:
            self._drop(self.open.ref)
            self.open = None

    def _drop(self, ref: str) -> None:
        self._forget(ref)
        self._dropped.append(ref)
        del self._dropped[:-DROPPED_KEPT]

    def _forget(self, ref: str) -> None:
        if ref in self._dropped:
            self._dropped.remove(ref)
