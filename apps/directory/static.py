"""Exercise 2.1: a static list of known addresses, from env or a file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter, ValidationError

from apps.directory.settings import DirectorySettings
from apps.kit.directory import Entry
from apps.kit.names import SERVICE_NAME_PATTERN, Keys


class StaticAddress(BaseModel):
    """One known address: which service, where, and optionally which instance."""

    model_config = ConfigDict(extra="forbid")

    service: str = Field(pattern=SERVICE_NAME_PATTERN)
    url: HttpUrl
    instance: str = Field(default="static", min_length=1, max_length=128)


_ADDRESSES = TypeAdapter(list[StaticAddress])


class StaticListError(ValueError):
    """The static list is not valid JSON of the expected shape."""


def load_static_entries(settings: DirectorySettings) -> list[Entry]:
    """Entries from DIRECTORY_STATIC (JSON) or DIRECTORY_STATIC_FILE; [] when neither is set."""
    if settings.directory_static_file:
        raw = Path(settings.directory_static_file).read_text(encoding="utf-8")
    elif settings.directory_static:
        raw = settings.directory_static
    else:
        return []
    try:
        addresses = _ADDRESSES.validate_json(raw)
    except ValidationError as exc:
        raise StaticListError(f"invalid static directory list: {exc}") from None
    keys = Keys(settings.key_prefix)
    return [
        Entry(service=a.service, instance=a.instance, url=str(a.url).rstrip("/"),
              channel=keys.inbox(a.service), started_at=0.0, meta={"static": True})
        for a in addresses
    ]
