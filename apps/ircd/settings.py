"""Settings of the IRC gateway."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from apps.chat import casemap
from apps.chat.conversations import EVENT_COMMANDS
from apps.chat.settings import ChatSettings


class LoadSettings(ChatSettings):
    """How a replica holds up under load: its garbage collector, its accept queue and door,
    the work of many connections it runs at once, its Redis connections."""

    #: About 70 times CPython's 700: a wave of 7,000 joins to one channel ran one full collection
    #: a replica where it ran 32, pauses up to 215 ms (docs/ircd.md, "CPU of a join wave").
    gc_young_threshold: int = Field(default=50_000, ge=1)
    #: Connections the kernel queues for each listener before the replica accepts them (capped
    #: by net.core.somaxconn). asyncio's 100 overflows when a dead replica's clients all come
    #: back: dropped SYNs are retried after 1, 3, 7... s, which a reconnect storm then waits for.
    irc_listen_backlog: int = Field(default=4096, ge=1, le=65535)
    #: Seconds of event-loop lag past which a new connection is told to come back later
    #: (ERROR, then closed) instead of joining the work the loop is already late with: a
    #: dead replica's clients all arriving at once are spread over their backoff rather than
    #: all served too slowly to finish. 0: every connection is let in.
    irc_admission_lag: float = Field(default=0.1, ge=0)
    #: Commands of connections not yet registered that run at once (so a storm's turns of the
    #: loop stay short); the others wait their turn, oldest first (apps/ircd/admission.py).
    irc_registrations_at_once: int = Field(default=64, ge=1)
    #: Commands waiting for a registration turn past which a new connection is told to come
    #: back later, as past IRC_ADMISSION_LAG. 0: no limit.
    irc_registrations_waiting: int = Field(default=1000, ge=0)
    #: Connections' clean-ups (apps/ircd/operations/leave.py) that run at once; the others
    #: wait, each with its connection still open. Thousands of connections ending together
    #: each held their clean-up's whole chain of Redis calls alive at once.
    irc_cleanups_at_once: int = Field(default=64, ge=1)
    #: Connections this replica holds at most; past them a new one is told to come back later.
    #: 0: the process's open-file limit less IRC_FILES_KEPT, kept for the replica's own needs.
    irc_max_connections: int = Field(default=0, ge=0)
    irc_files_kept: int = Field(default=512, ge=0)
    #: Channels whose members one replica reads at once for NAMES (apps/ircd/names.py), the
    #: others waiting their turn. Each read holds its channel's members while it runs, and the
    #: process keeps the memory its peak took: fewer, less memory when many large channels are
    #: joined at once, and their joins answered more slowly.
    names_at_once: int = Field(default=8, ge=1)
    #: In a channel with at least this many members on a replica, others' JOIN, PART and QUIT
    #: lines go to those members within PRESENCE_DELAY seconds, several in one write (a line
    #: that cannot wait takes them along): a join wave costs far fewer writes (docs/ircd.md).
    presence_wait_members: int = Field(default=200, ge=1)
    presence_delay: float = Field(default=0.1, ge=0, le=2)
    #: Redis connections of one replica (more concurrent commands wait for a free one), and the
    #: commands of one event-loop turn sent as one pipeline, at most (apps/kit/autopipeline.py).
    redis_pool_size: int = Field(default=64, ge=2, le=10_000)
    redis_batch_size: int = Field(default=256, ge=1, le=100_000)


class IrcdSettings(LoadSettings):
    """Kit settings plus the IRC listeners, the server's identity and its limits (those under
    load in `LoadSettings`)."""

    service_name: str = "ircd"
    #: Address the IRC listeners bind; empty: the same as HOST.
    irc_host: str = ""
    irc_port: int = Field(default=6667, ge=0, le=65535)
    #: IRC over TLS, served only when both TLS_CERT and TLS_KEY are set.
    irc_tls_port: int = Field(default=6697, ge=0, le=65535)
    #: One address for every replica on this host: when set, each replica also listens on
    #: these ports with SO_REUSEPORT, and the kernel hands each new connection to one of the
    #: live listeners (a dead replica's listener is gone, so a reconnecting client lands on a
    #: live one). 0: no shared listener. The TLS one is served only with TLS_CERT and TLS_KEY.
    irc_shared_port: int = Field(default=0, ge=0, le=65535)
    irc_tls_shared_port: int = Field(default=0, ge=0, le=65535)
    #: IRC from a TCP balancer speaking the PROXY protocol v2 (compose's HAProxy, proxy/irc/): a
    #: header says who the client is and whether it came over TLS. Believed only from
    #: TRUSTED_PROXIES, any other peer closed at once. Never publish it. 0: no such listener.
    irc_proxy_port: int = Field(default=0, ge=0, le=65535)
    tls_cert: str = ""
    tls_key: str = ""
    #: IRCv3 STS (a policy that clients connect only over TLS), offered only with TLS served:
    #: off by default, as a local stack's self-signed certificate would lock clients out.
    sts: bool = False
    #: The TLS port a plain connection is told to upgrade to (0: IRC_TLS_PORT); set it when
    #: clients reach TLS on another port (a published container port).
    sts_port: int = Field(default=0, ge=0, le=65535)
    #: Seconds a client keeps the policy, told on TLS connections; 0 lifts a policy set before.
    sts_duration: int = Field(default=0, ge=0)
    #: Whether the network agrees to be on STS preload lists.
    sts_preload: bool = False
    #: Host names (comma-separated) the persistence policy is given for, checked against the
    #: name a TLS client asked for (SNI); empty: any name but an IP address. Without SNI, none.
    sts_hostnames: str = ""
    #: IRCv3 account-registration: whether REGISTER is taken before the connection is
    #: registered (the capability's `before-connect`). Never with IRC_PASSWORD set, so that
    #: an account cannot be made by a client that has not given the server's password.
    account_registration_before_connect: bool = True
    server_name: str = Field(default="irc.canaduck.local", pattern=r"^[A-Za-z0-9.-]{1,63}$")
    network_name: str = Field(default="canaduck", pattern=r"^[A-Za-z0-9-]{1,32}$")
    #: Server password clients must give with PASS before registering; empty: none.
    irc_password: str = Field(default="", repr=False)
    #: Message of the day, lines separated by newlines; empty: 422 (no MOTD).
    motd: str = "Welcome to canaduck: a chat served by stateless gateways sharing Redis."
    #: IRC operators, `name:password` pairs separated by commas (OPER); empty: none.
    irc_opers: str = Field(default="", repr=False)
    nick_length: int = Field(default=casemap.NICKLEN, ge=9, le=64)
    channel_length: int = Field(default=casemap.CHANNELLEN, ge=2, le=200)
    topic_length: int = Field(default=390, ge=1, le=400)
    max_channels_per_user: int = Field(default=50, ge=1)
    max_connections_per_ip: int = Field(default=100, ge=1)
    max_monitor: int = Field(default=100, ge=0)
    max_targets: int = Field(default=4, ge=1)
    #: Entries each channel list (+b, +e, +I) may hold (ISUPPORT MAXLIST); past it, 478.
    max_list_entries: int = Field(default=100, ge=1)
    #: Flood control: at most FLOOD_LINES commands per FLOOD_WINDOW seconds, counted per
    #: connection and per account in Redis; past it the connection is read more slowly.
    flood_lines: int = Field(default=50, ge=1)
    flood_window: float = Field(default=5.0, gt=0)
    #: A connection whose unread output passes this many bytes is closed (a client not reading).
    send_queue_bytes: int = Field(default=1024 * 1024, ge=4096)
    ping_interval: float = Field(default=90.0, gt=0)
    ping_timeout: float = Field(default=60.0, gt=0)
    #: Seconds a client has to register before it is disconnected.
    registration_timeout: float = Field(default=60.0, gt=0)
    #: A connection's clean-up that Redis failed is tried again after this many seconds,
    #: twice that the next time, up to CLEANUP_RETRY_CAP (each wait jittered): left undone it
    #: would leave a ghost holding a nick on a live replica, which no sweep clears.
    cleanup_retry: float = Field(default=0.5, gt=0)
    cleanup_retry_cap: float = Field(default=30.0, gt=0)
    #: IRCv3 draft/multiline: the most bytes of text (a line feed between two lines counts one)
    #: and lines one multiline message may hold; past either the batch is refused. 0 bytes: the
    #: capability is not offered. Each line counts against flood control like any line.
    multiline_max_bytes: int = Field(default=4096, ge=0, le=1024 * 1024)
    multiline_max_lines: int = Field(default=100, ge=1, le=10_000)
    whowas_length: int = Field(default=10, ge=1)
    #: WHO with a mask and LIST read the whole network, SCAN_SLICE records at a time, one such
    #: command at a time on a replica (another: 263); WHO answers WHO_LIMIT users at most.
    who_limit: int = Field(default=500, ge=1)
    scan_slice: int = Field(default=1000, ge=1)
    #: One account, many devices (docs/chat.md): a connection logged in to an account that
    #: asks for the nick its account's user holds becomes one more device of that user.
    multi_device: bool = True
    #: The most devices one user may have at once (0: no limit); past it, 433.
    device_limit: int = Field(default=10, ge=0)
    #: Always-on, for accounts that have not chosen: the user stays (in its channels, its nick
    #: held, away) when its last device goes, until a device comes back or it expires.
    always_on: bool = True
    #: Seconds an always-on user with no device is kept (0: for ever); then it quits.
    always_on_expire: float = Field(default=30 * 86400.0, ge=0)
    #: The away message of an always-on user with no device (when it had none of its own).
    always_on_away: str = Field(default="Disconnected", min_length=1, max_length=200)
    #: Messages of each channel replayed to a device that comes back without draft/chathistory
    #: (those after its account's read marker, or after it left): at most this many; 0: none.
    replay_limit: int = Field(default=100, ge=0, le=1000)
    #: The events kept in the channels' history for clients of draft/event-playback (comma-
    #: separated, of JOIN, PART, KICK, QUIT, NICK, MODE, TOPIC, TAGMSG; empty: none, and the
    #: capability is not offered). Each is one more stream entry (a QUIT or a NICK in each
    #: channel of its user), counted among a conversation's CHAT_HISTORY_MAX entries.
    history_events: Annotated[frozenset[str], NoDecode] = EVENT_COMMANDS
    #: The client-only tags that make a TAGMSG kept (when TAGMSG is among HISTORY_EVENTS): a
    #: reaction, or one taken back, is worth replaying, a typing notification is not.
    history_tagmsg_tags: Annotated[frozenset[str], NoDecode] = frozenset(
        {"+draft/react", "+react", "+draft/unreact", "+unreact", "+draft/persist", "+persist"})
    #: Seconds between two looks for dead replicas whose users must be cleaned up.
    sweep_interval: float = Field(default=5.0, gt=0)
    @field_validator("history_events", "history_tagmsg_tags", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """A set from its comma-separated text (the environment's form)."""
        if isinstance(value, str):
            return frozenset(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("history_events")
    @classmethod
    def _known_events(cls, value: frozenset[str]) -> frozenset[str]:
        upper = frozenset(item.upper() for item in value)
        unknown = upper - EVENT_COMMANDS
        if unknown:
            raise ValueError(f"not events a history keeps: {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(EVENT_COMMANDS))})")
        return upper
