"""Settings every service of the chat reads: the history's limits, and where the users service is."""

from __future__ import annotations

from pydantic import Field

from apps.chat.keys import ChatKeys
from apps.chat.search import Tokenizer
from apps.kit.settings import KitSettings


class ChatSettings(KitSettings):
    """Kit settings plus the history limits and the users service, for the services that read
    the chat's history and ask the users service (the ircd, messages)."""

    #: Entries kept per conversation (channel or private): past that, each new message trims
    #: the oldest from the stream and from the search index, in the append script.
    chat_history_max: int = Field(default=10_000, ge=1)
    #: Most messages one history query returns (advertised as CHATHISTORY=<n> by the ircd).
    chat_history_limit: int = Field(default=100, ge=1, le=10_000)
    #: Seconds a private conversation with a guest (a connection without an account) is kept
    #: after its last message: nobody can open it again once the guest has gone but the
    #: account on the other side, if any.
    chat_guest_history_ttl: float = Field(default=86_400, gt=0)
    #: Characters of a word kept in the search index (a longer word is cut, in what is stored
    #: and in what is asked alike). The writer (the ircd) and the readers must agree.
    chat_search_term_length: int = Field(default=40, ge=1, le=200)
    #: Most characters of a search query.
    chat_search_query_max: int = Field(default=200, ge=1, le=2_000)
    #: Most distinct words in a search query.
    chat_search_terms_max: int = Field(default=8, ge=1, le=64)
    #: Most candidate messages one search looks at (its rarest word's, newest first) before
    #: it answers with what it found and where to go on: bounds a search's cost.
    chat_search_scan: int = Field(default=2_000, ge=1)
    #: Candidates read from the index per round trip.
    chat_search_batch: int = Field(default=1_000, ge=1, le=10_000)
    #: The users service: a fixed URL; empty (the default) finds a live instance in the
    #: directory (the ircd asks it for SASL and reserved nicks, messages for session checks).
    users_url: str = ""
    #: Time one call to the users service may take.
    users_timeout: float = Field(default=2.0, gt=0)

    @property
    def search_tokenizer(self) -> Tokenizer:
        """How texts and queries are cut into search terms in this deployment."""
        return Tokenizer(self.chat_search_term_length)

    @property
    def chat_keys(self) -> ChatKeys:
        """The chat's Redis keys and channels in this deployment."""
        return ChatKeys(self.key_prefix)
