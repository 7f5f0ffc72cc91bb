"""Settings of the directory service."""

from __future__ import annotations

from apps.kit.settings import KitSettings


class DirectorySettings(KitSettings):
    """Kit settings plus the exercise 2.1 static address list."""

    service_name: str = "directory"
    #: JSON list of {"service", "url", "instance"?} written without TTL at start-up.
    directory_static: str = ""
    #: Path to a JSON file holding the same list.
    directory_static_file: str = ""
