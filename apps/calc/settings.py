"""Settings of the calc service."""

from __future__ import annotations

from apps.kit.settings import KitSettings


class CalcSettings(KitSettings):
    """Kit settings; each replica differs only by INSTANCE_ID (and PORT)."""

    service_name: str = "calc"
