"""The message envelope carried on every channel that carries messages (docs/architecture.md)."""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from apps.kit.logs import REQUEST_ID_PATTERN
from apps.kit.names import SERVICE_NAME_PATTERN

ServiceName = Annotated[str, Field(pattern=SERVICE_NAME_PATTERN)]
#: What a message is about: 1 to 64 characters, none of them a control character.
Kind = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]{1,64}$")]


def new_id() -> str:
    """A fresh id for an envelope or a request: 32 hex digits from 16 random bytes (a third of
    `uuid4().hex`'s cost, on every send and every request that comes without an id)."""
    return secrets.token_hex(16)


class Envelope(BaseModel):
    """`{"id", "from", "to", "kind", "body", "sent_at", "deadline", "request_id"}`; `from` is
    `sender` here. `request_id` is that of the HTTP request that caused the message, if any."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    id: str = Field(default_factory=new_id, pattern=r"^[0-9a-f]{1,64}$")
    sender: ServiceName = Field(alias="from")
    to: ServiceName
    kind: Kind
    body: Any = None
    sent_at: float = Field(default_factory=time.time)
    deadline: float | None = None
    request_id: str | None = Field(default=None, pattern=REQUEST_ID_PATTERN)

    @classmethod
    def parse(cls, raw: str | bytes) -> Envelope:
        """Validate a JSON envelope; raises MalformedEnvelope naming what is wrong."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise MalformedEnvelope(_describe(exc)) from None

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    def expired(self, now: float | None = None) -> bool:
        """True once the deadline (if any) has passed."""
        return self.deadline is not None and (time.time() if now is None else now) > self.deadline


class MalformedEnvelope(ValueError):
    """Raised for bytes on a channel that are not a valid envelope."""


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False)[:3]:
        where = ".".join(str(part) for part in error["loc"]) or "envelope"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)
