"""Each refusal's answer: the one place an error (apps/ircd/errors.py) becomes its numeric and
its text. The dispatcher answers what a command raises; a command with several targets
answers each target's refusal and goes on to the next (`answered`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from apps.chat import numerics as n
from apps.ircd import errors as e
from apps.ircd.client import LABELLING, Client
from apps.ircd.labels import labelled


def reply_to(client: Client, error: e.ChatError) -> None:
    """Answer `error` to `client`."""
    match error:
        case e.NoSuchNick(nick):
            client.reply(n.ERR_NOSUCHNICK, nick, "No such nick/channel")
        case e.NoSuchChannel(channel):
            client.reply(n.ERR_NOSUCHCHANNEL, channel, "No such channel")
        case e.NotOnChannel(channel):
            client.reply(n.ERR_NOTONCHANNEL, channel, "You're not on that channel")
        case e.ChanOpPrivsNeeded(channel):
            client.reply(n.ERR_CHANOPRIVSNEEDED, channel, "You're not channel operator")
        case e.UserNotInChannel(nick, channel):
            client.reply(n.ERR_USERNOTINCHANNEL, nick, channel, "They aren't on that channel")
        case e.UserOnChannel(nick, channel):
            client.reply(n.ERR_USERONCHANNEL, nick, channel, "is already on channel")
        case e.CannotJoin(channel, mode) if mode.join_rule is not None:
            client.reply(mode.join_rule.numeric, channel, mode.join_rule.text)
        case e.CannotSendToChannel(channel, reason):
            client.reply(n.ERR_CANNOTSENDTOCHAN, channel, reason)
        case e.TooManyChannels(channel):
            client.reply(n.ERR_TOOMANYCHANNELS, channel, "You have joined too many channels")
        case e.TooManyTargets(targets):
            client.reply(n.ERR_TOOMANYTARGETS, targets, "Too many targets")
        case e.TryAgain(command):
            client.reply(n.RPL_TRYAGAIN, command, "Please wait a while and try again.")
        case e.NeedMoreParams(command, text):
            client.reply(n.ERR_NEEDMOREPARAMS, command, text)
        case e.NoNicknameGiven():
            client.reply(n.ERR_NONICKNAMEGIVEN, "No nickname given")
        case e.ErroneousNickname(nick):
            client.reply(n.ERR_ERRONEUSNICKNAME, nick, "Erroneous nickname")
        case e.NicknameInUse(nick, reserved, crowded):
            client.reply(n.ERR_NICKNAMEINUSE, nick,
                         "Your account is connected from too many devices" if crowded
                         else "Nickname is reserved by an account: log in with SASL" if reserved
                         else "Nickname is already in use")
        case e.NotRegistered():
            client.reply(n.ERR_NOTREGISTERED, "You have not registered")
        case e.AlreadyRegistered():
            client.reply(n.ERR_ALREADYREGISTERED, "You may not reregister")
        case e.PasswordMismatch(closes):
            client.reply(n.ERR_PASSWDMISMATCH, "Password incorrect")
            if closes:
                client.close_link("Bad password", "bad password")
        case e.NoPrivileges():
            client.reply(n.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
        case e.NoOperHost():
            client.reply(n.ERR_NOOPERHOST, "No O-lines for your host")
        case e.UnknownMode(letter):
            client.reply(n.ERR_UNKNOWNMODE, letter, "is unknown mode char to me")
        case e.UsersDontMatch():
            client.reply(n.ERR_USERSDONTMATCH, "Can't change mode for other users")
        case e.UnknownUserModeFlag():
            client.reply(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
        case e.InvalidModeParameter(channel, mode, given) if mode.parameter is not None:
            if mode.parameter.invalid_numeric == n.ERR_INVALIDKEY:
                client.reply(n.ERR_INVALIDKEY, channel, mode.parameter.invalid_text)
            else:
                client.reply(mode.parameter.invalid_numeric, channel, mode.letter, given or "*",
                             mode.parameter.invalid_text)
        case e.ListFull(channel, letter):
            client.reply(n.ERR_BANLISTFULL, channel, letter, "Channel list is full")
        case e.NoRecipient(command):
            client.reply(n.ERR_NORECIPIENT, f"No recipient given ({command})")
        case e.NoTextToSend():
            client.reply(n.ERR_NOTEXTTOSEND, "No text to send")
        case e.WasNoSuchNick(nick):
            client.reply(n.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
        case e.NoOrigin():
            client.reply(n.ERR_NOORIGIN, "No origin specified")
        case e.MonitorListFull(limit, nicks):
            client.reply(n.ERR_MONLISTFULL, str(limit), nicks, "Monitor list is full")
        case e.InvalidCapCommand(subcommand):
            client.reply(n.ERR_INVALIDCAPCMD, subcommand, "Invalid CAP command")
        case e.SaslFailed(why):
            client.reply(n.ERR_SASLFAIL, "SASL authentication failed" + (f": {why}" if why else ""))
        case e.SaslTooLong():
            client.reply(n.ERR_SASLTOOLONG, "SASL message too long")
        case e.SaslAborted():
            client.reply(n.ERR_SASLABORTED, "SASL authentication aborted")
        case e.SaslAlready():
            client.reply(n.ERR_SASLALREADY, "You have already authenticated using SASL")
        case e.Fail(command, code, context, description):
            client.fail(command, code, *context, description)
        case _:
            raise TypeError(f"no answer for {type(error).__name__}") from error


def reply_to_batch(client: Client, error: e.ChatError, label: str) -> None:
    """Answer a multiline batch's refusal: with the label of the BATCH that opened it (the
    answer that label waits for), unless the line being run carries a label of its own."""
    if label and LABELLING.get() is not client:
        with labelled(client, label):
            reply_to(client, error)
    else:
        reply_to(client, error)


@contextlib.contextmanager
def answered(client: Client, *, quiet: bool = False) -> Iterator[None]:
    """Run one target of a command with several: its refusal is answered (unless `quiet`: a
    NOTICE never gets an automatic reply), and the command goes on to the next target."""
    try:
        yield
    except e.ChatError as error:
        if not quiet:
            reply_to(client, error)
