"""Settings of the messages service."""

from __future__ import annotations

from pydantic import Field

from apps.chat.settings import ChatSettings


class MessagesSettings(ChatSettings):
    """Chat settings plus the default page size."""

    service_name: str = "messages"
    #: Messages returned when the request gives no `limit`.
    history_page: int = Field(default=50, ge=1, le=10_000)
    #: Messages a search returns when the request gives no `limit`.
    search_page: int = Field(default=20, ge=1, le=10_000)
