"""Settings every service of the chat reads: the history's limits, and where the users service is."""

from __future__ import annotations

from pydantic import Field

from apps.chat.keys import ChatKeys
from apps.kit.settings import KitSettings


class ChatSettings(KitSettings):
    """Kit settings plus the history limits and the users service, for the services that read
    the chat's history and ask the users service (the ircd, messages)."""

    #: Entries kept per conversation (channel or private): the stream is trimmed past that,
    #: in whole blocks of up to 100 entries (Redis's `MAXLEN ~`).
    chat_history_max: int = Field(default=10_000, ge=1)
    #: Most messages one history query returns (advertised as CHATHISTORY=<n> by the ircd).
    chat_history_limit: int = Field(default=100, ge=1, le=10_000)
    #: Seconds a private conversation with a guest (a connection without an account) is kept
    #: after its last message: nobody can open it again once the guest has gone but the
    #: account on the other side, if any.
    chat_guest_history_ttl: float = Field(default=86_400, gt=0)
    #: The users service: a fixed URL; empty (the default) finds a live instance in the
    #: directory (the ircd asks it for SASL and reserved nicks, messages for session checks).
    users_url: str = ""
    #: Time one call to the users service may take.
    users_timeout: float = Field(default=2.0, gt=0)

    @property
    def chat_keys(self) -> ChatKeys:
        """The chat's Redis keys and channels in this deployment."""
        return ChatKeys(self.key_prefix)
