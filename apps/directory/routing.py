"""The routable view of the directory: which addresses answer for each service.

Each service's hash is written by its own instances (redis/users.acl lets no other service
write it), and by hand with `redis-cli`: anything can be in it. Only entries that are plainly
usable become routes; the rest are skipped one by one, so a bad entry (a broken URL, a huge
field, an entry that names another service or instance than its hash and field) never hides
the others.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from apps.kit.directory import Entry, RawHash, as_text, check_entry

#: A DNS host name: labels of letters, digits and dashes, 253 characters at most.
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
#: Names of extra ports an entry may announce in `meta.ports` (e.g. `{"irc": 6667}`).
_PORT_NAME = re.compile(r"[a-z0-9-]{1,32}")


@dataclass(frozen=True, slots=True)
class Target:
    """One routable instance: where it listens, and any extra named ports it announces."""

    instance: str
    host: str  # an IP address or a host name, never empty
    port: int
    started_at: float = 0.0
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The host as an IP address, None for a host name."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    def port_for(self, name: str) -> int | None:
        """The port announced under `name`; `http` is the URL's own port."""
        return self.port if name == "http" else self.ports.get(name)


@dataclass(frozen=True)
class Skipped:
    """An entry that is not routed (`<service>/<field>`), and why (shown in logs)."""

    name: str
    reason: str


@dataclass
class RoutingTable:
    """Targets by service, oldest instance first."""

    services: dict[str, list[Target]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)

    def targets(self, service: str) -> list[Target]:
        return self.services.get(service, [])

    @property
    def size(self) -> int:
        return sum(len(targets) for targets in self.services.values())


def build_table(hashes: Mapping[str, RawHash], max_entry_bytes: int = 4096) -> RoutingTable:
    """The routing table of the directory, as `Directory.hashes` reads it: service -> hash."""
    table = RoutingTable()
    for service, raw in hashes.items():
        for instance, value in raw.items():
            target = _target(service, instance, value, max_entry_bytes)
            if isinstance(target, Skipped):
                table.skipped.append(target)
            else:
                table.services.setdefault(service, []).append(target)
    for targets in table.services.values():
        targets.sort(key=lambda t: (t.started_at, t.instance))
    return table


def _target(service: str, instance: str | bytes, value: str | bytes,
            max_entry_bytes: int) -> Target | Skipped:
    name = f"{service}/{as_text(instance)}"[:200]
    size = len(value.encode() if isinstance(value, str) else value)
    if size > max_entry_bytes:  # checked before parsing: a huge field costs no JSON decoding
        return Skipped(name, f"entry of {size} bytes, over {max_entry_bytes}")
    entry = check_entry(service, instance, value)
    if isinstance(entry, str):
        return Skipped(name, entry)
    address = parse_url(entry.url)
    if isinstance(address, str):
        return Skipped(name, address)
    host, port = address
    return Target(entry.instance, host, port, entry.started_at, _extra_ports(entry))


def parse_url(url: str) -> tuple[str, int] | str:
    """(host, port) of a plain http:// URL, or the reason it cannot be routed to."""
    if len(url) > 512:
        return "url longer than 512 characters"
    try:
        parts = urlsplit(url)
        port = 80 if parts.port is None else parts.port
    except ValueError as exc:
        return f"bad url: {exc}"
    if parts.scheme != "http":
        return "url is not http://"
    host = parts.hostname or ""
    if not host:
        return "url has no host"
    if port < 1:
        return "url has port 0"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost":
            return "127.0.0.1", port
        if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
            return "url host is neither an IP address nor a host name"
    return host, port


def _extra_ports(entry: Entry) -> dict[str, int]:
    ports = entry.meta.get("ports") if isinstance(entry.meta, dict) else None
    if not isinstance(ports, dict):
        return {}
    return {
        name: number for name, number in list(ports.items())[:16]
        if isinstance(name, str) and _PORT_NAME.fullmatch(name)
        and isinstance(number, int) and not isinstance(number, bool) and 0 < number < 65536
    }
