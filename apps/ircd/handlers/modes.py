"""MODE: user modes +i +w (-o), and channel modes +o +v +b +e +I +k +l +i +m +n +s +t."""

from __future__ import annotations

from apps.chat import numerics as n
from apps.ircd.client import Client
from apps.ircd.handlers.channels import existing_channel
from apps.ircd.protocol import Message, casefold, format_line, is_channel, normalize_mask
from apps.ircd.registry import command

FLAGS = "imnst"
LISTS = "beI"  # masks: bans, ban exceptions, invite exceptions
WITH_PARAM = LISTS + "kl"  # plus o and v, which name a member
MAX_PARAM_MODES = 4
#: letter -> (the entry numeric, the end numeric, the end's text)
LIST_REPLIES = {
    "b": (n.RPL_BANLIST, n.RPL_ENDOFBANLIST, "End of channel ban list"),
    "e": (n.RPL_EXCEPTLIST, n.RPL_ENDOFEXCEPTLIST, "End of channel exception list"),
    "I": (n.RPL_INVEXLIST, n.RPL_ENDOFINVEXLIST, "End of channel invite exception list"),
}


@command("MODE", params=1)
async def mode(client: Client, message: Message) -> None:
    if is_channel(message.params[0]):
        await channel_mode(client, message)
    else:
        await user_mode(client, message)


async def user_mode(client: Client, message: Message) -> None:
    target = message.params[0]
    if casefold(target) != client.nick_cf:
        if await client.server.store.uid_of(casefold(target)) is None:
            client.reply(n.ERR_NOSUCHNICK, target, "No such nick/channel")
        else:
            client.reply(n.ERR_USERSDONTMATCH, "Can't change mode for other users")
        return
    if len(message.params) == 1:
        client.reply(n.RPL_UMODEIS, "+" + client.modes)
        return
    adding, applied, unknown = True, "", False
    store = client.server.store
    for char in message.params[1]:
        if char in "+-":
            adding = char == "+"
        elif char == "i" and client.invisible != adding:
            client.invisible = adding
            applied += ("+" if adding else "-") + "i"
            await store.set_flag("invisible", client.uid, adding)
        elif char == "w" and client.wallops != adding:
            client.wallops = adding
            applied += ("+" if adding else "-") + "w"
        elif char == "o" and client.oper and not adding:  # +o only through OPER
            client.oper = False
            applied += "-o"
            await store.set_flag("opers", client.uid, False)
        elif char not in "iwo":
            unknown = True
    if unknown:
        client.reply(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    if applied:
        await store.update_user(client.uid, modes=client.modes)
        client.send(format_line("MODE", [client.nick, applied], source=client.prefix))


async def channel_mode(client: Client, message: Message) -> None:
    server, store = client.server, client.server.store
    channel = await existing_channel(client, message.params[0])
    if channel is None:
        return
    cf, display, info, status = channel.cf, channel.display, channel.info, channel.status
    if len(message.params) == 1:
        modes = "+" + info.get("modes", "").replace("k", "").replace("l", "")
        params = []
        if info.get("key"):
            modes += "k"
            params.append(info["key"] if status is not None else "*")
        if info.get("limit"):
            modes += "l"
            params.append(info["limit"])
        client.reply(n.RPL_CHANNELMODEIS, display, modes, *params)
        client.reply(n.RPL_CREATIONTIME, display, str(int(float(info.get("created", "0")))))
        return
    changes = message.params[1]
    args = list(message.params[2:])
    asked = changes.strip("+-") or "b"
    if asked in LIST_REPLIES and not args:  # a list query: MODE #chan b (or e, I)
        entry, end, text = LIST_REPLIES[asked]
        for mask, how in (await store.masks(cf, asked))[asked].items():
            setter, _, when = how.partition(" ")
            client.reply(entry, display, mask, setter, when)
        client.reply(end, display, text)
        return
    is_op = status is not None and "o" in status
    flags = set(info.get("modes", "")) - {"k", "l"}
    fields: dict[str, str] = {}
    cleared: list[str] = []
    applied: list[tuple[str, str, str]] = []  # (sign, letter, param)
    adding = True
    denied = False
    param_modes = 0
    for char in changes:
        if char in "+-":
            adding = char == "+"
            continue
        if char not in FLAGS and char not in WITH_PARAM and char not in "ov":
            client.reply(n.ERR_UNKNOWNMODE, char, "is unknown mode char to me")
            continue
        takes_param = char in "ov" or char in LISTS or (char == "k" and adding) or (char == "l" and adding)
        param = ""
        if takes_param:
            if not args:
                if char in "kl" or char in LISTS:
                    continue
                client.reply(n.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
                continue
            param = args.pop(0)
            param_modes += 1
            if param_modes > MAX_PARAM_MODES:
                continue
        elif char == "k" and args:
            args.pop(0)  # -k takes the old key, which is not checked
        if char in LISTS and not param:
            continue
        if not is_op:
            denied = True
            continue
        sign = "+" if adding else "-"
        if char in FLAGS:
            if (char in flags) != adding:
                (flags.add if adding else flags.discard)(char)
                applied.append((sign, char, ""))
        elif char == "k":
            if adding:
                if not param or " " in param or "," in param:
                    client.reply(n.ERR_INVALIDKEY, display, "Key is not well-formed")
                    continue
                fields["key"] = param
                applied.append((sign, char, param))
            elif info.get("key") or "key" in fields:
                cleared.append("key")
                fields.pop("key", None)
                applied.append((sign, char, "*"))
        elif char == "l":
            if adding:
                if not param.isdigit() or int(param) <= 0:
                    client.reply(n.ERR_INVALIDMODEPARAM, display, "l", param or "*", "Invalid limit")
                    continue
                fields["limit"] = str(int(param))
                applied.append((sign, char, str(int(param))))
            elif info.get("limit") or "limit" in fields:
                cleared.append("limit")
                fields.pop("limit", None)
                applied.append((sign, char, ""))
        elif char in LISTS:
            mask = normalize_mask(param)
            if adding:
                added = await store.add_mask(cf, char, mask, client.prefix, server.clock(),
                                             server.settings.max_list_entries)
                if added < 0:
                    client.reply(n.ERR_BANLISTFULL, display, char, "Channel list is full")
                elif added:
                    applied.append((sign, char, mask))
            elif await store.remove_mask(cf, char, mask):
                applied.append((sign, char, mask))
        else:  # o, v
            user = await store.user_by_nick(casefold(param))
            if user is None:
                client.reply(n.ERR_NOSUCHNICK, param, "No such nick/channel")
                continue
            current = await store.status(cf, user["uid"])
            if current is None:
                client.reply(n.ERR_USERNOTINCHANNEL, user["nick"], display, "They aren't on that channel")
                continue
            new = "".join(c for c in "ov" if (c in current and c != char) or (c == char and adding))
            if new != current:
                await store.set_status(cf, user["uid"], new)
            applied.append((sign, char, user["nick"]))
    if denied:
        client.reply(n.ERR_CHANOPRIVSNEEDED, display, "You're not channel operator")
    # `modes` lists k and l too while a key or limit is set: the messages service reads it.
    keyed = "key" in fields or (bool(info.get("key")) and "key" not in cleared)
    limited = "limit" in fields or (bool(info.get("limit")) and "limit" not in cleared)
    letters = "".join(sorted(flags | ({"k"} if keyed else set()) | ({"l"} if limited else set())))
    if fields or letters != info.get("modes", ""):
        await store.update_channel(cf, modes=letters, **fields)
    if cleared:
        await store.clear_channel_fields(cf, *cleared)
    if applied:
        text, params, last = "", [], ""
        for sign, letter, param in applied:
            if sign != last:
                text += sign
                last = sign
            text += letter
            if param:
                params.append(param)
        await server.to_channels([cf], client.event("MODE", [display, text, *params]))
