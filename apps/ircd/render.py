"""A line as one client sees it: only if it has what the line needs, with only the tags it
negotiated; formatted once per set of tags when one line goes to many clients."""

from __future__ import annotations

from apps.chat.events import Line
from apps.ircd.client import Client
from apps.ircd.protocol import format_line

#: One line's formatted forms, by the tags its recipients get (see `deliver`).
Rendered = dict[tuple[str, ...], str]


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


def deliver(client: Client, line: Line, rendered: Rendered | None = None) -> None:
    """Send `line` to `client` as it should see it. `rendered` caches the formatted line of one
    line sent to many clients, by the tags they get (pass the same dict for each of them)."""
    caps = client.caps
    if line.umode and line.umode not in client.modes:
        return
    for cap in line.needs:
        if cap not in caps:
            if line.alt is not None:
                deliver(client, line.alt)  # rare (extended-join's plain JOIN): not cached
            return
    if line.command == "TAGMSG" and "message-tags" not in caps:
        return
    tags = tags_for(client, line.tags)
    if rendered is None:
        client.send(format_line(line.command, line.params, source=line.source, tags=tags))
        return
    key = tuple(tags)
    formatted = rendered.get(key)
    if formatted is None:
        formatted = rendered[key] = format_line(line.command, line.params, source=line.source, tags=tags)
    client.send(formatted)


def deliver_unlabelled(client: Client, line: Line) -> None:
    """Deliver a line sent to this very client by its own labelled command: that is a delivery,
    not a reply, so only its echo carries the label."""
    held = client.unheld()
    try:
        deliver(client, line)
    finally:
        client.rehold(held)
