"""What the gateway says it is and does: 004's mode strings and the ISUPPORT (005) tokens,
only what it does, the mode strings derived from the mode table (apps/chat/modes.py)."""

from __future__ import annotations

from apps.chat import casemap, modes
from apps.ircd.capabilities import isupport_tokens
from apps.ircd.protocol import AWAY_LENGTH, KICK_LENGTH, USER_LENGTH
from apps.ircd.settings import IrcdSettings

VERSION = "canaduck-ircd-0.1"


def myinfo(server: str) -> list[str]:
    """004's parameters after the nick: server, version, user modes, channel modes, the channel
    modes that take a parameter."""
    return [server, VERSION, modes.MYINFO_USER_MODES, modes.MYINFO_CHANNEL_MODES,
            modes.MYINFO_PARAMETER_MODES]


def tokens(s: IrcdSettings) -> list[str]:
    """The ISUPPORT tokens, those that go with a capability among them, in alphabetical order."""
    return sorted([*isupport_tokens(s),
        f"AWAYLEN={AWAY_LENGTH}", f"CASEMAPPING={casemap.CASEMAPPING}",
        f"CHANLIMIT={casemap.CHANTYPES}:{s.max_channels_per_user}", f"CHANMODES={modes.CHANMODES}",
        f"CHANNELLEN={s.channel_length}", f"CHANTYPES={casemap.CHANTYPES}",
        "ELIST=CMNTU", f"EXCEPTS={modes.EXCEPTS}",
        f"INVEX={modes.INVEX}", f"KICKLEN={KICK_LENGTH}", f"MAXLIST={modes.LISTS}:{s.max_list_entries}",
        f"MODES={modes.MAX_PARAMETER_CHANGES}",
        f"MONITOR={s.max_monitor}", f"NETWORK={s.network_name}",
        f"NICKLEN={s.nick_length}", f"PREFIX={modes.PREFIX}", f"STATUSMSG={modes.STATUSMSG}",
        f"TARGMAX=PRIVMSG:{s.max_targets},NOTICE:{s.max_targets},TAGMSG:{s.max_targets},"
        "JOIN:,PART:,NAMES:,LIST:,MONITOR:,ISON:,USERHOST:5,WHOIS:1,"
        f"KICK:{s.max_targets}",
        f"TOPICLEN={s.topic_length}", f"USERLEN={USER_LENGTH}", "UTF8ONLY", "WHOX",
    ])
