"""Settings of the directory service."""

from __future__ import annotations

from pydantic import Field

from apps.kit.settings import KitSettings


class DirectorySettings(KitSettings):
    """Kit settings, the exercise 2.1 static address list, the index's pruning, and the DNS
    interface."""

    service_name: str = "directory"
    #: JSON list of {"service", "url", "instance"?} written without TTL at start-up.
    directory_static: str = ""
    #: Path to a JSON file holding the same list.
    directory_static_file: str = ""
    #: Seconds between two prunings of the index of service names (names whose hash is gone,
    #: a bogus one among them, are taken out); 0: never.
    directory_prune_interval: float = Field(default=60, ge=0)
    #: UDP and TCP port of the DNS interface (Caddy's `dynamic srv` asks it); 0 turns it off.
    dns_port: int = Field(default=8600, ge=0, le=65535)
    #: Address the DNS interface listens on; empty: the same as HOST.
    dns_host: str = ""
    #: The zone it answers for: `<service>.service.<domain>`.
    dns_domain: str = Field(default="canaduck", pattern=r"^[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})*$")
    #: Seconds between two full reads of the directory (a (de)registration event reads at once).
    dns_refresh: float = Field(default=0.25, gt=0)
    #: Entries larger than this are not routed (a huge field cannot slow every answer down).
    dns_max_entry_bytes: int = Field(default=4096, gt=0)
