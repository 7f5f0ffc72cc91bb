"""A line as one client sees it: only if it has what the line needs, with only the tags it
negotiated; formatted once per set of tags when one line goes to many clients.

A multiline message (IRCv3 draft/multiline: a `Line` with `lines`) goes as a `draft/multiline`
batch to the clients that negotiated it (and `batch`), its tags (msgid, time, account, client
tags) on the batch's start; to the others as its lines, one PRIVMSG or NOTICE each, blank ones
left out, the msgid on the first line only (the spec's fallback, keeping the sender's lines).
"""

from __future__ import annotations

import re

from apps.chat.events import Line
from apps.ircd.client import NOTHING, Client
from apps.ircd.multiline import BATCH_TYPE, CONCAT_TAG
from apps.ircd.protocol import format_line


class Rendered(dict[tuple[str, ...], tuple[str, ...]]):
    """One line's formatted forms (a multiline message's are several), by the tags its
    recipients get (see `deliver`); and its alternative's (`Line.alt`), made when first needed."""

    __slots__ = ("_alt",)

    def __init__(self) -> None:
        super().__init__()
        self._alt: Rendered | None = None

    def alternative(self) -> Rendered:
        """The cache of the line's alternative: the same for every recipient of the line."""
        if self._alt is None:
            self._alt = Rendered()
        return self._alt


#: What a batch's reference may hold (the batch spec); the rest of a msgid is left out of it.
_NOT_IN_REF = re.compile(r"[^A-Za-z0-9-]")


def tags_for(client: Client, tags: dict[str, str]) -> dict[str, str]:
    """The subset of a line's tags this client negotiated."""
    if not tags:
        return {}
    out = {}
    caps = client.caps
    for key, value in tags.items():
        if key == "time":
            if "server-time" in caps:
                out[key] = value
        elif key == "account":
            if "account-tag" in caps:
                out[key] = value
        elif key == "batch":
            if "batch" in caps:
                out[key] = value
        elif "message-tags" in caps:
            out[key] = value
    return out


def reads_multiline(client: Client) -> bool:
    """Whether a client takes multiline messages as batches: it negotiated draft/multiline and
    the batch capability the spec makes it depend on."""
    return BATCH_TYPE in client.caps and "batch" in client.caps


def deliver(client: Client, line: Line, rendered: Rendered | None = None) -> None:
    """Send `line` to `client` as it should see it. `rendered` caches the formatted line of one
    line sent to many clients, by the tags they get (pass the same dict for each of them)."""
    for text in forms(client, line, rendered):
        client.send(text)


def forms(client: Client, line: Line, rendered: Rendered | None = None) -> tuple[str, ...]:
    """The lines `client` gets for `line` (none if it does not get it): what `deliver` sends.
    They depend on the client's capabilities among `telling_caps(line)` and, for a line with a
    `umode`, its user modes; nothing else of the client."""
    caps = client.caps
    if line.umode and line.umode not in client.modes:
        return ()
    for cap in line.needs:
        if cap not in caps:
            if line.alt is not None:
                # Cached too: a JOIN to a channel of thousands goes to most members as
                # extended-join's plain JOIN, and a string per recipient held thousands of
                # copies of it until the next write (docs/ircd.md, "Memory per connection").
                return forms(client, line.alt, None if rendered is None else rendered.alternative())
            return ()
    if line.command == "TAGMSG" and "message-tags" not in caps:
        return ()
    tags = tags_for(client, line.tags)
    batched = bool(line.lines) and reads_multiline(client)
    if rendered is None:
        return _format(line, tags, batched)
    # Tag names hold no space: the marks cannot be taken for a tag.
    key = (*tags, " batch" if batched else " lines") if line.lines else tuple(tags)
    cached = rendered.get(key)
    if cached is None:
        cached = rendered[key] = _format(line, tags, batched)
    return cached


#: The capabilities `forms` looks at for any line (`tags_for`, `reads_multiline`, TAGMSG).
_FORM_CAPS = frozenset({"server-time", "account-tag", "batch", "message-tags", BATCH_TYPE})


def telling_caps(line: Line) -> frozenset[str]:
    """The capabilities that decide which form of `line` (and of its alternatives) a client
    gets: two clients with the same of these get the same lines."""
    caps = set(_FORM_CAPS)
    while True:
        caps.update(line.needs)
        if line.alt is None:
            return frozenset(caps)
        line = line.alt


class Fanout:
    """One line for many clients: its forms worked out once per kind of recipient (the
    capabilities that tell them apart, `telling_caps`, and the user mode it needs), so that each
    further recipient costs a set intersection and a dict lookup. A JOIN to a channel of
    thousands goes to every member: the tag and capability checks of `forms`, repeated for
    each, were half of a delivery's cost (docs/ircd.md, "CPU of a join wave")."""

    __slots__ = ("_by_kind", "_line", "_rendered", "_telling")

    def __init__(self, line: Line) -> None:
        self._line = line
        self._telling = telling_caps(line)
        self._rendered = Rendered()
        self._by_kind: dict[object, tuple[str, ...]] = {}

    def forms(self, client: Client) -> tuple[str, ...]:
        """What `forms(client, line)` gives, from the cache once one client of its kind had it."""
        umode = self._line.umode
        caps = client.caps
        # Most clients share none of the telling capabilities (a plain client): told apart
        # without making a set for each of them.
        kind: object = NOTHING if self._telling.isdisjoint(caps) else self._telling.intersection(caps)
        if umode:
            kind = (kind, umode in client.modes)
        cached = self._by_kind.get(kind)
        if cached is None:
            cached = self._by_kind[kind] = forms(client, self._line, self._rendered)
        return cached

    def deliver(self, client: Client, *, can_wait: bool = False) -> None:
        """Send the line to `client` as it should see it (`Client.send`'s `can_wait`)."""
        for text in self.forms(client):
            client.send(text, can_wait=can_wait)


def _format(line: Line, tags: dict[str, str], batched: bool) -> tuple[str, ...]:
    if not line.lines:
        return (format_line(line.command, line.params, source=line.source, tags=tags),)
    if batched:
        return multiline_batch(line, tags)
    return multiline_fallback(line, tags)


def multiline_batch(line: Line, tags: dict[str, str]) -> tuple[str, ...]:
    """A multiline message as a `draft/multiline` batch: `tags` on its start (and the batch it
    is in, when replayed inside a chathistory batch, on its start and end), each line tagged
    with the batch, a concat line with `draft/multiline-concat`."""
    target = line.params[0]
    start = dict(tags)
    outer = start.get("batch")
    ref = multiline_ref(line)
    out = [format_line("BATCH", [f"+{ref}", BATCH_TYPE, target], source=line.source, tags=start)]
    for part in line.lines:
        inner = {"batch": ref, CONCAT_TAG: ""} if part.concat else {"batch": ref}
        out.append(format_line(line.command, [target, part.text], source=line.source, tags=inner))
    end = {"batch": outer} if outer else None
    out.append(format_line("BATCH", [f"-{ref}"], source=line.source, tags=end))
    return tuple(out)


def multiline_fallback(line: Line, tags: dict[str, str]) -> tuple[str, ...]:
    """A multiline message for a client without draft/multiline: each line that is not blank
    ("Servers MUST NOT send blank lines" to such clients), as the sender split it, with the
    message's tags; its msgid on the first only."""
    target = line.params[0]
    rest = {key: value for key, value in tags.items() if key != "msgid"}
    texts = [part.text for part in line.lines if part.text]
    return tuple(format_line(line.command, [target, text], source=line.source, tags=tags if i == 0 else rest)
                 for i, text in enumerate(texts))


def multiline_ref(line: Line) -> str:
    """The reference of a multiline message's batch, from its msgid: the same for every
    recipient, so that the batch is formatted once per set of tags. A batch is written whole
    in one turn, so no two of them are ever open at once on a connection; `ml` keeps it apart
    from the connection's own references (hexadecimal, apps/ircd/client.py `new_batch`)."""
    return "ml" + _NOT_IN_REF.sub("", line.tags.get("msgid", ""))[:32]


def deliver_unlabelled(client: Client, line: Line) -> None:
    """Deliver a line sent to this very client by its own labelled command: that is a delivery,
    not a reply, so only its echo carries the label."""
    held = client.unheld()
    try:
        deliver(client, line)
    finally:
        client.rehold(held)
