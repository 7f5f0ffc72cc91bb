"""The routable view of the directory: which addresses answer for each service.

The directory hash is written by every instance, and by hand with `redis-cli`: anything can
be in it. Only entries that are plainly usable become routes; the rest are skipped one by
one, so a bad entry (a broken URL, a huge field, a name that lies) never hides the others.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from apps.kit.directory import Entry
from apps.kit.names import is_service_name

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
    """A field that is not routed, and why (shown in logs and metrics)."""

    field: str
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


def build_table(raw: Mapping[bytes | str, bytes | str], max_entry_bytes: int = 4096) -> RoutingTable:
    """The routing table of a whole directory hash, as HGETALL returns it."""
    table = RoutingTable()
    for name, value in raw.items():
        field_name = name.decode(errors="replace") if isinstance(name, bytes) else name
        target = _target(field_name, value, max_entry_bytes)
        if isinstance(target, Skipped):
            table.skipped.append(target)
            continue
        service, route = target
        table.services.setdefault(service, []).append(route)
    for targets in table.services.values():
        targets.sort(key=lambda t: (t.started_at, t.instance))
    return table


def _target(field_name: str, value: bytes | str, max_entry_bytes: int) -> tuple[str, Target] | Skipped:
    size = len(value.encode() if isinstance(value, str) else value)
    if size > max_entry_bytes:
        return Skipped(field_name[:200], f"entry of {size} bytes, over {max_entry_bytes}")
    try:
        entry = Entry.from_json(value)
    except (ValueError, KeyError, TypeError, AttributeError):
        return Skipped(field_name[:200], "not a JSON entry")
    if not is_service_name(entry.service) or not 0 < len(entry.instance) <= 128:
        return Skipped(field_name[:200], "bad service or instance name")
    if field_name != entry.field:
        # A field may only speak for itself: `calc/x` cannot add an instance to `mult`.
        return Skipped(field_name[:200], f"field does not match its entry ({entry.field[:100]})")
    address = parse_url(entry.url)
    if isinstance(address, str):
        return Skipped(field_name, address)
    host, port = address
    return entry.service, Target(entry.instance, host, port, entry.started_at, _extra_ports(entry))


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
