"""What a command may use: the replica's settings and identity, the shared state, delivery,
the history, and the users service."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from apps.chat.access import HistoryAccess
from apps.chat.chatlog import ChatLog
from apps.ircd.accounts import Accounts
from apps.ircd.delivery import Delivery
from apps.ircd.names import MemberReads
from apps.ircd.roster import Roster
from apps.ircd.scanturns import ScanTurns
from apps.ircd.settings import IrcdSettings
from apps.ircd.store import Store

log = logging.getLogger("canaduck.ircd")

#: What a read or write of the shared state raises when Redis fails or is too slow: the
#: dispatcher answers it with the command's 400 "try again".
StateError = RedisError


@dataclass(slots=True)
class Context:
    """One replica's services, handed to every command (apps/ircd/server.py builds it)."""

    settings: IrcdSettings
    store: Store
    chatlog: ChatLog
    history_access: HistoryAccess
    roster: Roster
    delivery: Delivery
    clock: Callable[[], float]
    new_id: Callable[[], str]
    #: connections, commands, messages (delivered), posted (sent by local clients), throttled...
    counts: Counter[str]
    accounts: Accounts
    created: str  # when this replica started, as 003 says it
    #: the channels' members as NAMES reads them, one read shared by the NAMES waiting for it
    names: MemberReads
    #: the turns of WHO with a mask and LIST, which read the whole network
    network_scans: ScanTurns

    @property
    def name(self) -> str:
        """The server name replies come from."""
        return self.settings.server_name

    @property
    def instance(self) -> str:
        return self.settings.instance_id


async def quietly(step: Awaitable[object]) -> None:
    """Bookkeeping that may fail while Redis is away without failing the connection."""
    try:
        await step
    except (RedisError, OSError) as exc:
        log.warning("bookkeeping skipped: %s", exc)
