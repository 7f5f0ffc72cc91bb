"""What HELP says: a syntax line and a short description for every command the gateway serves.

A test holds this table to the command table (apps/ircd/registry.py): a command cannot be
added without its help, nor help kept for a command that is gone.
"""

from __future__ import annotations

#: Each command's help, its first line the syntax.
TOPICS: dict[str, tuple[str, ...]] = {
    "AUTHENTICATE": ("AUTHENTICATE <mechanism> | <base64 data>",
                     "Logs in to an account with SASL PLAIN (after CAP REQ sasl)."),
    "AWAY": ("AWAY [<message>]", "Marks you away with a message, or back without one."),
    "BATCH": ("BATCH +<ref> draft/multiline <target> | BATCH -<ref>",
              "Sends one message of several lines (draft/multiline)."),
    "CAP": ("CAP LS [302] | CAP REQ :<capabilities> | CAP LIST | CAP END",
            "Negotiates IRCv3 capabilities."),
    "CHATHISTORY": ("CHATHISTORY LATEST|BEFORE|AFTER|AROUND <target> <msgid=|timestamp=|*> <limit>",
                    "CHATHISTORY BETWEEN <target> <ref> <ref> <limit>",
                    "CHATHISTORY TARGETS <timestamp> <timestamp> <limit>",
                    "Reads the history of a channel you are in or of a private conversation."),
    "CHGHOST": ("CHGHOST <nick> <user> <host>", "Changes a user's user name and host (IRC operators)."),
    "INFO": ("INFO", "Tells what this server is."),
    "INVITE": ("INVITE <nick> <channel>", "Invites someone to a channel (an operator's right in +i)."),
    "ISON": ("ISON <nick> [<nick>...]", "Tells which of the nicks are online."),
    "JOIN": ("JOIN <channel>[,<channel>...] [<key>[,<key>...]] | JOIN 0",
             "Joins channels (creating a new one, you its operator); JOIN 0 leaves them all."),
    "KICK": ("KICK <channel> <nick>[,<nick>...] [<reason>]", "Puts someone out of a channel (operators)."),
    "KILL": ("KILL <nick> <reason>", "Disconnects a user (IRC operators)."),
    "LIST": ("LIST [<channel>[,<channel>...]] [<condition>]",
             "Lists channels: C>/C< creation, T>/T< topic age, U>/U< users, or a mask."),
    "LUSERS": ("LUSERS", "Counts the network's users, operators and channels."),
    "MARKREAD": ("MARKREAD <target> [timestamp=<time>]",
                 "Says how far you have read a conversation, or asks (draft/read-marker)."),
    "MODE": ("MODE <channel> [<changes> [<parameters>...]] | MODE <nick> [<changes>]",
             "Shows or changes a channel's modes (imnstkl, bans b, exceptions e and I, o, v),",
             "or your own (i, w)."),
    "MONITOR": ("MONITOR + <nicks> | - <nicks> | C | L | S",
                "Watches nicks and tells you when they come and go."),
    "MOTD": ("MOTD", "Shows the message of the day."),
    "NAMES": ("NAMES [<channel>[,<channel>...]]", "Lists a channel's members."),
    "NICK": ("NICK <nick>", "Sets or changes your nick."),
    "NOTICE": ("NOTICE <target>[,<target>...] <text>", "Sends a notice: nobody answers one automatically."),
    "OPER": ("OPER <name> <password>", "Makes you an IRC operator."),
    "PART": ("PART <channel>[,<channel>...] [<reason>]", "Leaves channels."),
    "PASS": ("PASS <password>", "Gives the server's password, before registering."),
    "PING": ("PING <token>", "Asks the server for a PONG with the same token."),
    "PONG": ("PONG <token>", "Answers the server's PING."),
    "PRIVMSG": ("PRIVMSG <target>[,<target>...] <text>",
                "Sends a message to a channel (@#chan, +#chan: its operators or voiced) or a nick."),
    "QUIT": ("QUIT [<reason>]", "Leaves the network."),
    "REDACT": ("REDACT <target> <msgid> [<reason>]",
               "Deletes one of your messages, or any in a channel you operate (draft/message-redaction)."),
    "REGISTER": ("REGISTER <account> <email|*> <password>",
                 "Makes an account named for your nick and logs you in (draft/account-registration)."),
    "SETNAME": ("SETNAME <realname>", "Changes your real name."),
    "TAGMSG": ("TAGMSG <target>", "Sends client-only tags alone (typing, a reaction...)."),
    "TIME": ("TIME", "Tells the server's time."),
    "TOPIC": ("TOPIC <channel> [<topic>]", "Shows or sets a channel's topic (operators only in +t)."),
    "USER": ("USER <username> 0 * <realname>", "Gives your user name and real name, to register."),
    "USERHOST": ("USERHOST <nick> [<nick>...]", "Tells the nicks' user@host and whether they are away."),
    "VERIFY": ("VERIFY <account> <code>", "Completes an account's registration; never needed here."),
    "WALLOPS": ("WALLOPS <text>", "Tells every user with mode +w (IRC operators)."),
    "WHO": ("WHO <mask> [<flags>[%<fields>]]", "Lists users matching a mask or in a channel (WHOX)."),
    "WHOIS": ("WHOIS <nick>", "Tells who is behind a nick."),
    "WHOWAS": ("WHOWAS <nick> [<count>]", "Tells who last held a nick."),
    "HELP": ("HELP [<command>]", "Lists the commands, or tells what one does. HELPOP is the same."),
    "HELPOP": ("HELPOP [<command>]", "The same as HELP."),
}


def index(width: int = 300) -> list[str]:
    """The help without a subject: how to ask, then every command, in lines of at most `width`
    characters."""
    lines = ["Commands (HELP <command> tells what one does):"]
    current = ""
    for name in sorted(TOPICS):
        if current and len(current) + 1 + len(name) > width:
            lines.append(current)
            current = ""
        current = f"{current} {name}" if current else name
    return [*lines, current] if current else lines
