"""Settings of the mult service."""

from __future__ import annotations

from apps.kit.settings import KitSettings


class MultSettings(KitSettings):
    """Kit settings; replicas a, b and backup differ only by INSTANCE_ID (and PORT)."""

    service_name: str = "mult"
