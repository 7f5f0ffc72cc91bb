"""Settings of the messages service."""

from __future__ import annotations

from pydantic import Field

from apps.chat.settings import ChatSettings


class MessagesSettings(ChatSettings):
    """Chat settings plus how to reach the users service and the default page size."""

    service_name: str = "messages"
    #: A fixed users service URL; empty (the default) finds a live instance in the directory.
    users_url: str = ""
    #: Time a session check with the users service may take.
    users_timeout: float = Field(default=2.0, gt=0)
    #: Messages returned when the request gives no `limit`.
    history_page: int = Field(default=50, ge=1, le=10_000)
