"""The Lua scripts that make each change of the shared state one step.

The JOIN script's checks and the leave script's test for a closed channel are written from
the mode table (apps/chat/modes.py): a mode's JOIN rule is a Lua condition there, tested here
in the table's order.
"""

from __future__ import annotations

from apps.chat import modes
from apps.chat.conversations import EVENT_COMMANDS


def _join() -> str:
    """JOIN in one step: the checks and the membership change cannot interleave with another
    replica's JOIN or MODE. KEYS: the channel, its members, its invitations. ARGV: uid, name,
    now, the key given, banned ('1': matches a ban and no exception), invex ('1': matches an
    invite exception). Returns {outcome, mode}: created, joined, already, or refused and the
    letter of the mode whose rule refused it."""
    rules = "\n".join(f"  if {mode.join_rule.lua} then return {{'refused', '{mode.letter}'}} end"
                      for mode in modes.JOIN_RULES if mode.join_rule is not None)
    return f"""
local info, members, invites = KEYS[1], KEYS[2], KEYS[3]
local uid, name, now, key, banned, invex = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('HEXISTS', members, uid) == 1 then return {{'already', ''}} end
if redis.call('EXISTS', info) == 0 then
  redis.call('HSET', info, 'name', name, 'created', now, 'modes', '{modes.DEFAULT_MODES}')
  redis.call('HSET', members, uid, '{modes.STATUSES[0]}')
  return {{'created', ''}}
end
local modes = redis.call('HGET', info, 'modes') or ''
local function has(letter) return string.find(modes, letter, 1, true) ~= nil end
local function field(name) return redis.call('HGET', info, name) end
local function count() return redis.call('HLEN', members) end
if redis.call('SISMEMBER', invites, uid) == 0 then
{rules}
end
redis.call('HSET', members, uid, '')
redis.call('SREM', invites, uid)
return {{'joined', ''}}
"""


def _leave() -> str:
    """PART, KICK, QUIT: leave, and the last one out removes the channel and its lists. Its
    history (KEYS[1], and KEYS[2] its search index) stays if the channel was open and holds a
    message, and goes with it if a closing mode was set (`closes_history` in the table), so
    that whoever creates the channel again cannot read or search what its members said; a
    history of events only (JOIN, PART... for draft/event-playback: nobody said anything) goes
    too, so that joining and leaving channels leaves nothing behind. KEYS[3] is the channel,
    KEYS[4] its members; KEYS[3..] every key of the channel. Returns 0 (was not a member),
    1 (left), 2 (left, the channel is gone), 3 (and its history)."""
    letters = "".join(mode.letter for mode in modes.CLOSING)
    fields = "".join(f" or redis.call('HEXISTS', KEYS[3], '{mode.parameter.field}') == 1"
                     for mode in modes.CLOSING if mode.parameter is not None)
    events = " or ".join(f"command == '{name}'" for name in sorted(EVENT_COMMANDS))
    return f"""
if redis.call('HDEL', KEYS[4], ARGV[1]) == 0 then return 0 end
if redis.call('HLEN', KEYS[4]) > 0 then return 1 end
local modes = redis.call('HGET', KEYS[3], 'modes') or ''
local closed = string.find(modes, '[{letters}]'){fields}
redis.call('DEL', unpack(KEYS, 3))
-- Whether the history holds a message (an entry that is no event), read a page at a time
-- until one is found: at worst the whole stream, which its maxlen bounds.
local function said()
  local from = '-'
  while true do
    local page = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 100)
    for _, entry in ipairs(page) do
      local command = ''
      for i = 1, #entry[2], 2 do
        if entry[2][i] == 'command' then command = entry[2][i + 1] end
      end
      if not ({events}) then return true end
    end
    if #page < 100 then return false end
    from = '(' .. page[#page][1]
  end
end
if closed or not said() then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 3
end
return 2
"""


JOIN = _join()
LEAVE = _leave()

# A mask added to a channel list unless it is there already (0) or the list is full (-1).
ADD_MASK = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# A member's new status letters, only while it is a member: a check then a write from Python
# could put back a member that left in between (and recreate the members of a channel gone).
SET_STATUS = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# A user's user name and host (CHGHOST), only while its record exists: a user that left since
# the operator's command read it must not come back as a record of two fields.
SET_HOST = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'host', ARGV[2])
return 1
"""

#: A new user's record and its one device, in its own slot: a registration's writes as one
#: command, where a pipeline of them cost redis-py's per-command work each (docs/ircd.md,
#: "Registrations per second"). KEYS: the record, its devices. ARGV: the device, its replica,
#: then the record's fields and values.
ADD_USER = """
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
"""

#: A new user counted network-wide, and LUSERS' counts after it, in one command: it joins the
#: users, its replica has one connection fewer not registered yet, the high-water mark follows.
#: KEYS: users, most, invisible, opers, unregistered, channels (`NetworkState.counts`' keys).
#: ARGV: the uid, its replica. Returns what `NetworkState.counts_from` reads.
COUNT_NEW_USER = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[5], ARGV[2], -1)
local users = redis.call('SCARD', KEYS[1])
local most = tonumber(redis.call('GET', KEYS[2]) or '0')
if users > most then redis.call('SET', KEYS[2], users); most = users end
return {users, most, redis.call('SCARD', KEYS[3]), redis.call('SCARD', KEYS[4]),
        redis.call('HVALS', KEYS[5]), redis.call('SCARD', KEYS[6])}
"""

#: A connection from an address counted in (ARGV[2] = 1) or out (-1) on replica ARGV[1], in
#: the address's hash (KEYS[1]: replica -> connections), a field that falls to 0 removed;
#: returns the connections from the address now, on every replica.
COUNT_ADDRESS = """
local mine = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if mine <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
local total = 0
for _, count in ipairs(redis.call('HVALS', KEYS[1])) do
  if tonumber(count) > 0 then total = total + tonumber(count) end
end
return total
"""

# NAMES's fields (ARGV) of each user (KEYS): one reply for a slice of a big channel, where a
# pipeline of HMGETs cost the gateway 13.7 us a member in redis-py's per-command work and this
# costs 1.4 (docs/ircd.md, "CPU of a join wave"). A user gone reads as nils, as HMGET's would.
NAMES_USERS = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HMGET', key, unpack(ARGV)) end
return out
"""

#: Whole records of users (WHO, the network's scans) the same way: HGETALL of each of KEYS.
#: Returns, for each key, its fields and values in turn (none for a key that is gone).
USERS = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return out
"""

#: Claim a free nick, and whether it is an account's, in one step on its slot. KEYS[1]: the
#: nick. ARGV: the uid, then the key of the account of that name (`ChatKeys.account`). That key
#: is passed as an argument, not declared: EVAL asks write permission on every declared key,
#: and the gateway may only ask whether it exists (redis/README.md); it shares the nick's hash
#: tag, so a cluster has it on the declared key's node. Returns {1 if claimed (0: someone holds
#: it), 1 if an account has that name}.
CLAIM_NICK = """
local claimed = redis.call('SET', KEYS[1], ARGV[1], 'NX') and 1 or 0
return {claimed, redis.call('EXISTS', ARGV[2])}
"""

# Release a nick only if it is still ours (another connection may have taken it since).
RELEASE_NICK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: A read marker only ever moves forward (draft/read-marker). KEYS: the party's markers.
#: ARGV: the folded target, the ms read up to, a TTL in ms (0: none; a guest's markers expire
#: as its conversations do; PEXPIRE, which the gateway's ACL user may run). Returns {the marker
#: now, 1 if it moved}.
MARK_READ = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local wanted = tonumber(ARGV[2])
local moved = 0
if wanted > current then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  current, moved = wanted, 1
end
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {current, moved}
"""

# A user's devices (KEYS[1]: connection id -> replica) and the `inst` field of its record
# (KEYS[2]), kept together: `inst` lists the replicas holding a device, which every delivery
# by uid reads. The helper recomputes it after a change; the record may be gone (a user that
# left), and is then not recreated.
_DEVICES = """
local function replicas()
  local seen, list = {}, {}
  for _, replica in ipairs(redis.call('HVALS', KEYS[1])) do
    if not seen[replica] then seen[replica] = true; table.insert(list, replica) end
  end
  table.sort(list)
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('HSET', KEYS[2], 'inst', table.concat(list, ' '))
  end
end
"""

#: A device joins its user. ARGV: the connection id, its replica, the most devices a user may
#: have (0: no limit). Returns the devices now, or -1 when there are that many already.
ATTACH = _DEVICES + """
local count = redis.call('HLEN', KEYS[1])
if tonumber(ARGV[3]) > 0 and count >= tonumber(ARGV[3]) and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return -1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
replicas()
return redis.call('HLEN', KEYS[1])
"""

#: Devices leave their user: one (ARGV[1], a connection id) or, ARGV[1] empty, every device
#: held by replica ARGV[2] (a dead one). Returns {devices left, devices left on that replica}.
DETACH = _DEVICES + """
if ARGV[1] ~= '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if all[i + 1] == ARGV[2] then redis.call('HDEL', KEYS[1], all[i]) end
  end
end
replicas()
local here = 0
for _, replica in ipairs(redis.call('HVALS', KEYS[1])) do
  if replica == ARGV[2] then here = here + 1 end
end
return {redis.call('HLEN', KEYS[1]), here}
"""
