"""The IRCv3 capabilities the gateway offers: one table, from which come CAP LS's names and
CAP 302 values and the ISUPPORT tokens that go with a capability.

A capability is in the table only once it works; what a line needs to be sent is said by the
line (`needs`, apps/ircd/lines.py) and checked by apps/ircd/render.py. docs/ircd.md has the
table beside Ergo's and ngIRCd's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from apps.ircd.settings import IrcdSettings


@dataclass(frozen=True, slots=True)
class Offer:
    """What decides a capability's value for one connection: the replica's settings, how the
    connection came (TLS, the host name asked for), and whether a users service can check
    passwords now."""

    settings: IrcdSettings
    secure: bool = False
    sasl: bool = False
    #: The host name a TLS client asked for (SNI), and whether the connection is IRC's own
    #: (TCP or TLS, not a WebSocket).
    server_name: str = ""
    direct: bool = True


def _plain(offer: Offer) -> str | None:
    return ""


def _no_tokens(settings: IrcdSettings) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True, slots=True)
class Capability:
    """One capability. `value`: its CAP 302 value for a connection, "" for none, None when it
    is not offered to that connection now; `isupport`: the ISUPPORT tokens that go with it;
    `requestable`: False for a capability a client must not REQ (sts: CAP NAK)."""

    name: str
    value: Callable[[Offer], str | None] = _plain
    isupport: Callable[[IrcdSettings], tuple[str, ...]] = _no_tokens
    requestable: bool = True


def _sasl(offer: Offer) -> str | None:
    return "PLAIN" if offer.sasl else None


def _account_registration(offer: Offer) -> str | None:
    """IRCv3 account-registration, while a users service can be found (as SASL). No
    `email-required` (the users service keeps no address), no `custom-account-name` (an
    account is named for the nick its client holds, so nobody can take another's nick);
    `before-connect` unless the server wants a password first (see `before_connect`)."""
    if not offer.sasl:
        return None
    return "before-connect" if before_connect(offer.settings) else ""


def before_connect(settings: IrcdSettings) -> bool:
    """Whether REGISTER is taken before the connection is registered: as set, and never with a
    server password, which REGISTER must not let a client get round."""
    return settings.account_registration_before_connect and not settings.irc_password


def _sts(offer: Offer) -> str | None:
    """IRCv3 STS, only with TLS served and STS on, on IRC's own connections (a WebSocket's
    page has HTTPS's rules). A plain connection is told the port to upgrade to (the "upgrade
    policy"); a TLS one the "persistence policy", only for a host name the client asked for
    (SNI) and the policy covers: "If no hostname has been provided for the connection, an STS
    persistence policy SHOULD NOT be advertised"."""
    s = offer.settings
    if not (s.sts and s.tls_cert and s.tls_key and offer.direct):
        return None
    if not offer.secure:
        return f"port={s.sts_port or s.irc_tls_port}"
    if not _covered(offer.server_name, s.sts_hostnames):
        return None
    return f"duration={s.sts_duration}" + (",preload" if s.sts_preload else "")


def _covered(server_name: str, hostnames: str) -> bool:
    """Whether the STS persistence policy is given for `server_name` (SNI): one of
    `hostnames`, or with none listed any name but an IP address."""
    if not server_name:
        return False
    listed = {name.strip().lower() for name in hostnames.split(",") if name.strip()}
    if listed:
        return server_name.lower() in listed
    try:
        ipaddress.ip_address(server_name)
    except ValueError:
        return True
    return False


def _multiline(offer: Offer) -> str | None:
    """IRCv3 draft/multiline: its limits, as the spec requires (`max-bytes`) and recommends
    (`max-lines`); not offered with MULTILINE_MAX_BYTES=0. It needs `batch`, which the spec
    forbids enforcing at negotiation: a batch from a client without it is refused instead."""
    s = offer.settings
    if not s.multiline_max_bytes:
        return None
    return f"max-bytes={s.multiline_max_bytes},max-lines={s.multiline_max_lines}"


#: IRCv3 draft/event-playback: CHATHISTORY also replays the events kept (JOIN, TOPIC...).
EVENT_PLAYBACK = "draft/event-playback"


def _event_playback(offer: Offer) -> str | None:
    """Offered while the network keeps some events (HISTORY_EVENTS not empty)."""
    return "" if offer.settings.history_events else None


def _chathistory_tokens(settings: IrcdSettings) -> tuple[str, ...]:
    return f"CHATHISTORY={settings.chat_history_limit}", "MSGREFTYPES=msgid,timestamp"


CAPABILITIES: tuple[Capability, ...] = (
    Capability("account-notify"),
    Capability("account-tag"),
    Capability("away-notify"),
    Capability("batch"),
    Capability("cap-notify"),
    Capability("chghost"),
    Capability("draft/account-registration", value=_account_registration),
    Capability("draft/chathistory", isupport=_chathistory_tokens),
    Capability(EVENT_PLAYBACK, value=_event_playback),
    Capability("draft/pre-away"),
    Capability("draft/message-redaction"),
    Capability("draft/multiline", value=_multiline),
    Capability("draft/read-marker"),
    Capability("echo-message"),
    Capability("extended-join"),
    Capability("extended-monitor"),
    Capability("invite-notify"),
    Capability("labeled-response"),
    Capability("message-tags"),
    Capability("multi-prefix"),
    Capability("no-implicit-names"),
    Capability("sasl", value=_sasl),
    Capability("server-time"),
    Capability("setname"),
    Capability("standard-replies"),
    Capability("sts", value=_sts, requestable=False),
    Capability("userhost-in-names"),
)
BY_NAME = {cap.name: cap for cap in CAPABILITIES}


def offered(offer: Offer) -> dict[str, str]:
    """The capabilities offered to one connection now, each with its value ("" for none)."""
    out = {}
    for cap in CAPABILITIES:
        value = cap.value(offer)
        if value is not None:
            out[cap.name] = value
    return out


def requestable(name: str, offer: Offer) -> bool:
    """Whether a client may CAP REQ `name` now."""
    cap = BY_NAME.get(name)
    return cap is not None and cap.requestable and cap.value(offer) is not None


def isupport_tokens(settings: IrcdSettings) -> list[str]:
    """The ISUPPORT tokens the capabilities bring."""
    return [token for cap in CAPABILITIES for token in cap.isupport(settings)]
