"""Settings every service of the chat reads: the history's limits."""

from __future__ import annotations

from pydantic import Field

from apps.chat.keys import ChatKeys
from apps.kit.settings import KitSettings


class ChatSettings(KitSettings):
    """Kit settings plus the history limits, read by every service that uses the chat log."""

    #: Entries kept per conversation (channel or private): the stream is trimmed past that,
    #: in whole blocks of up to 100 entries (Redis's `MAXLEN ~`).
    chat_history_max: int = Field(default=10_000, ge=1)
    #: Most messages one history query returns (advertised as CHATHISTORY=<n> by the ircd).
    chat_history_limit: int = Field(default=100, ge=1, le=10_000)
    #: Seconds a private conversation with a guest (a connection without an account) is kept
    #: after its last message: nobody can open it again once the guest has gone but the
    #: account on the other side, if any.
    chat_guest_history_ttl: float = Field(default=86_400, gt=0)

    @property
    def chat_keys(self) -> ChatKeys:
        """The chat's Redis keys and channels in this deployment."""
        return ChatKeys(self.key_prefix)
