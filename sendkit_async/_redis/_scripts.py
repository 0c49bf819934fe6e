"""The Lua side of the shared budget: key names and three atomic scripts.

All state of one budget lives under ``<prefix>:{<hash>}:`` where the hash is
sha256 of (base URL, API key), truncated; the key itself never reaches Redis.
The braces are a Redis Cluster hash tag, so one script may touch every key.

- ``bucket`` (hash): ``tokens`` and ``ts`` of a token bucket, in server time.
- ``cooldown`` (string): server time at which the shared gate reopens.
- ``learned`` (hash): ``rate``/``burst`` learned from headers (by the processes'
  controllers: the rule is ``_controller``'s, not repeated here), the largest reset
  and the window seen (``max_reset``, ``window``: every process takes them), the last
  ``limit``/``remaining``/``reset_at``, and ``open`` = the server sends no rate-limit
  headers.
- ``probe`` (string): held by the one request that goes first while no rate is
  known, so many processes do not all burst into an unknown limit at once.
- ``aimd`` (hash): the rate learned from bare 429s, one schedule for every process: the
  slow start (``ss_rate``, ``ss_from``), published by the first process to start one,
  or the climb an epoch's leader published (``est``, ``from``, ``climb``, ``trust``,
  ``count``, ``seconds``), and the current epoch's end (``epoch``).
- ``oks`` (hash): accepted answers of every process, per 100 ms of server time.
- ``fore``/``back`` (sorted sets): interactive/background callers of any process
  waiting for a token, each scored by the server time its announcement expires (so a
  crashed process holds nobody back for long); ``turns`` (hash): ``owed``, how many
  tokens background is owed while both kinds wait (as ``_priority.Turns``).

Every script reads the clock with ``redis.call('TIME')``: machines' clocks never
matter. Only tests set that clock instead: each script that reads it (``CLOCKED``)
takes the server time to use as one optional argument after its own, which
production never passes (no extra round trip, no extra argument). Floats cross the
boundary as strings (a Lua number reply is truncated to an integer by Redis).
"""

from __future__ import annotations

import hashlib

__all__ = [
    "ACQUIRE", "CHECK", "CLOCKED", "COUNTS", "EPOCH", "LEAVE", "OBSERVE", "SCHEDULE",
    "budget_id", "budget_keys",
]  # fmt: skip


def budget_id(api_key: str, base_url: str) -> str:
    """A short stable id of (base URL, key): 24 hex digits of sha256, never the key."""
    return hashlib.sha256(f"{base_url}\n{api_key}".encode()).hexdigest()[:24]


def budget_keys(prefix: str, budget: str) -> list[str]:
    """[bucket, cooldown, learned, probe, aimd, oks, fore, back, turns] key names of one budget."""
    base = f"{prefix}:{{{budget}}}:"
    names = ("bucket", "cooldown", "learned", "probe", "aimd", "oks", "fore", "back", "turns")
    return [base + name for name in names]


_COMMON = """
-- `clock`: the ARGV after the script's own, set only by tests (a server time to use);
-- nil (never passed) in production: the server's TIME.
local function now_s(clock)
  if clock ~= nil and clock ~= '' then return tonumber(clock) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function num(v)
  if v == false or v == nil or v == '' then return nil end
  return tonumber(v)
end
local function fmt(x) return string.format('%.6f', x) end
-- The schedule learned from bare 429s (climb, slow start), appended to ACQUIRE's replies.
local function climb(key)
  return redis.call('HMGET', key, 'est', 'from', 'climb', 'trust', 'count', 'seconds',
                    'ss_rate', 'ss_from', 'limited', 'resumed')
end
-- ...and the answers every process accepted in the last two tenths of a second and
-- this one so far (KEYS[6], per 100 ms), with the seconds they span.
local function reply(kind, wait, now, rate, burst, tokens, key)
  local c = climb(key)
  local tenth = math.floor(now * 10)
  local recent = 0
  for _, v in ipairs(redis.call('HMGET', KEYS[6], tenth - 2, tenth - 1, tenth)) do
    recent = recent + (num(v) or 0)
  end
  return {kind, wait, fmt(now), rate or '', burst or '', tokens or '',
          c[1] or '', c[2] or '', c[3] or '', c[4] or '', c[5] or '', c[6] or '',
          c[7] or '', c[8] or '', c[9] or '', c[10] or '', tostring(recent),
          fmt(now - (tenth - 2) / 10)}
end
-- The user's numbers are a ceiling; learned ones may only go below them.
local function effective(learned, user_rate, user_burst)
  local l = redis.call('HMGET', learned, 'rate', 'burst')
  local rate, burst = num(l[1]), num(l[2])
  if rate then
    if user_rate and user_rate < rate then rate = user_rate end
    if user_burst and user_burst < burst then burst = user_burst end
    return rate, burst
  end
  if user_rate then return user_rate, user_burst or math.max(1, user_rate) end
  return nil, nil
end
-- Adds the accepted answers in `spec` ("bucket count bucket count ...", per 100 ms of
-- server time) to the hash at `key`; none is placed after `now` (a caller's clock offset
-- is only as good as its last reply). Buckets older than 30 s are dropped once the hash
-- holds a minute of them: each push renews its expiry, and a run of hours must not
-- grow it (every epoch reads it whole).
local function count_accepted(key, now, spec)
  local last = math.floor(now * 10)
  local any = false
  for b, c in string.gmatch(spec or '', '(%-?%d+) (%d+)') do
    redis.call('HINCRBY', key, tostring(math.min(tonumber(b), last)), tonumber(c))
    any = true
  end
  if not any then return end
  redis.call('PEXPIRE', key, 30000)
  if redis.call('HLEN', key) > 600 then
    local old = {}
    for _, f in ipairs(redis.call('HKEYS', key)) do
      local b = tonumber(f)
      if not b or b < last - 300 then old[#old + 1] = f end
    end
    for i = 1, #old, 500 do
      redis.call('HDEL', key, unpack(old, i, math.min(i + 499, #old)))
    end
  end
end
-- Appends to `out` the accepted answers per 100 ms (bucket, count, ...) of the last
-- `history` seconds, from the hash at `key` (every process's counts).
local function accepted(key, now, history, out)
  local oldest = math.floor((now - history) * 10)
  local h = redis.call('HGETALL', key)
  for i = 1, #h, 2 do
    if tonumber(h[i]) >= oldest then out[#out + 1] = h[i]; out[#out + 1] = h[i + 1] end
  end
  return out
end
local function load_bucket(key, now, rate, burst)
  local b = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens, ts = num(b[1]), num(b[2])
  if not tokens then return burst, now end
  if now > ts then tokens = tokens + (now - ts) * rate; ts = now end
  if tokens > burst then tokens = burst end
  return tokens, ts
end
local function save_bucket(key, now, tokens, ts, rate, burst)
  redis.call('HSET', key, 'tokens', fmt(tokens), 'ts', fmt(ts))
  local full = (ts - now) + (burst - tokens) / rate
  redis.call('PEXPIRE', key, math.ceil(full * 1000) + 60000)
end
"""

ACQUIRE = (
    _COMMON
    + """
-- KEYS: bucket, cooldown, learned, probe, aimd, oks, fore, back, turns
-- ARGV: user_rate, user_burst, horizon (s), probe_ttl (ms), probe_token,
--       rate and burst learned from bare 429s ('' = none yet), and the 429 time of the
--       climb they come from ('' = none: a slow start),
--       lane ('i' interactive, 'b' background, '' none), waiter id, the share's step
--       (background is owed step tokens per interactive one while both wait),
--       [tests only: the server time to use, see now_s]
-- Reply: {kind, wait, now, rate, burst, tokens, <the schedule in aimd: 10 fields>, answers
--   accepted lately by every process, the seconds they span}; kind is
--   'token'    a token is reserved: send after `wait` seconds;
--   'open'     no rate is known and the server sends no limit headers: send now;
--   'probe'    no rate is known: you go first, alone;
--   'wait'     nothing reserved: try again after `wait` (0: follow the schedule in
--              aimd first: the caller passed no rate, or one from an older climb, and
--              one is published);
--   'cooldown' the shared gate is closed for `wait` more seconds.
local now = now_s(ARGV[12])
local cd = num(redis.call('GET', KEYS[2]))
if cd and cd > now then return reply('cooldown', fmt(cd - now), now, nil, nil, nil, KEYS[5]) end
local rate, burst = effective(KEYS[3], num(ARGV[1]), num(ARGV[2]))
if not rate and num(ARGV[6]) then
  -- No limit announced: the rate learned from 429s (by every process together), unless
  -- the caller's comes from an older climb than the published one (it slept through
  -- the epoch, say): one such stale rate at a reopening let a burst through.
  local published = num(redis.call('HGET', KEYS[5], 'limited'))
  local followed = num(ARGV[8])
  if published and (not followed or followed < published - 1e-6) then
    return reply('wait', '0', now, nil, nil, nil, KEYS[5])
  end
  rate, burst = num(ARGV[6]), num(ARGV[7])
  local user_rate = num(ARGV[1])
  if user_rate and user_rate < rate then rate = user_rate end
end
if not rate then
  local c = redis.call('HMGET', KEYS[5], 'est', 'ss_rate')
  if (num(c[1]) or 0) > 0 or (num(c[2]) or 0) > 0 then
    return reply('wait', '0', now, nil, nil, nil, KEYS[5])
  end
  if redis.call('HGET', KEYS[3], 'open') == '1' then
    return reply('open', '0', now, nil, nil, nil, KEYS[5])
  end
  if redis.call('SET', KEYS[4], ARGV[5], 'NX', 'PX', ARGV[4]) then
    return reply('probe', '0', now, nil, nil, nil, KEYS[5])
  end
  local ttl = redis.call('PTTL', KEYS[4])
  return reply('wait', fmt(math.min(math.max(ttl, 1), 50) / 1000), now, nil, nil, nil, KEYS[5])
end
local tokens, ts = load_bucket(KEYS[1], now, rate, burst)
-- Time until this caller's token exists; reserve it only if that is near (within the
-- horizon or one token interval), so a rate learned too high early on leaves little debt.
local wait = (ts - now) + math.max(0, 1 - tokens) / rate
local horizon = math.max(tonumber(ARGV[3]), 1 / rate)
local lane, waiter = ARGV[9], ARGV[10]
if lane == 'i' or lane == 'b' then
  -- Priorities. Background reserves no token ahead (it asks again when the next one
  -- exists), so an interactive caller arriving meanwhile finds no reservation before
  -- its own but those of other interactive callers.
  local mine, other = KEYS[7], KEYS[8]
  if lane == 'b' then mine, other = KEYS[8], KEYS[7]; horizon = 0 end
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', fmt(now))
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', fmt(now))
  local others = redis.call('ZCARD', other) > 0
  local owed = num(redis.call('HGET', KEYS[9], 'owed')) or 0
  local turn = true
  if others then
    if lane == 'i' then turn = owed < 1 - 1e-9 else turn = owed >= 1 - 1e-9 end
  end
  if not turn or wait > horizon then
    -- Not now: announce this caller (until a little after it asks again) and wait.
    local w = 1 / rate
    if turn then w = wait - horizon end
    redis.call('ZADD', mine, fmt(now + w + 1), waiter)
    redis.call('PEXPIRE', mine, math.ceil((w + 1) * 1000) + 1000)
    return reply('wait', fmt(w), now, fmt(rate), fmt(burst), fmt(tokens), KEYS[5])
  end
  redis.call('ZREM', mine, waiter)
  if lane == 'i' and others then owed = owed + tonumber(ARGV[11]) end
  if lane == 'b' then owed = math.max(0, owed - 1) end
  redis.call('HSET', KEYS[9], 'owed', fmt(owed))
  redis.call('PEXPIRE', KEYS[9], 60000)
elseif wait > horizon then
  return reply('wait', fmt(wait - horizon), now, fmt(rate), fmt(burst), fmt(tokens), KEYS[5])
end
tokens = tokens - 1
save_bucket(KEYS[1], now, tokens, ts, rate, burst)
return reply('token', fmt(wait), now, fmt(rate), fmt(burst), fmt(tokens), KEYS[5])
"""
)

OBSERVE = (
    _COMMON
    + """
-- KEYS: bucket, cooldown, learned, probe, aimd, oks
-- ARGV: user_rate, user_burst, limit, remaining, reset_after, window, cooldown (s),
--       no_headers ('1'), probe_token to release, learned_ttl (ms), accepted answers
--       ("bucket count ...", see count_accepted),
--       rate and burst learned from headers, a slow start to publish unless one or a
--       climb is (rate, server time)  ('' = none),
--       [tests only: the server time to use, see now_s]
-- Reply: {rate, burst, tokens, cooldown_left, limit, remaining, reset_after, max_reset,
--         window} ('' = unknown)
local now = now_s(ARGV[16])
local user_rate, user_burst = num(ARGV[1]), num(ARGV[2])
local limit, remaining = num(ARGV[3]), num(ARGV[4])
local reset_after, window, cooldown = num(ARGV[5]), num(ARGV[6]), num(ARGV[7])
local L = KEYS[3]
-- Bring the bucket up to now at the old rate before learning may change it.
local rate, burst = effective(L, user_rate, user_burst)
local tokens, ts
if rate then tokens, ts = load_bucket(KEYS[1], now, rate, burst) end
if limit then redis.call('HSET', L, 'limit', limit) end
if remaining then redis.call('HSET', L, 'remaining', remaining) end
if reset_after then
  redis.call('HSET', L, 'reset_at', fmt(now + reset_after))
  local seen = num(redis.call('HGET', L, 'max_reset'))
  if reset_after > 0 and (not seen or reset_after > seen) then
    redis.call('HSET', L, 'max_reset', fmt(reset_after))
  end
end
if window and window > 0 then redis.call('HSET', L, 'window', fmt(window)) end
local learned_rate, learned_burst = num(ARGV[12]), num(ARGV[13])
if learned_rate and learned_rate > 0 and learned_burst then
  redis.call('HSET', L, 'rate', fmt(learned_rate), 'burst', fmt(learned_burst))
end
if ARGV[8] == '1' then redis.call('HSET', L, 'open', '1') end
local ss_rate, ss_from = num(ARGV[14]), num(ARGV[15])
if ss_rate and ss_rate > 0 and ss_from then
  local c = redis.call('HMGET', KEYS[5], 'est', 'ss_rate')
  if not num(c[1]) and not num(c[2]) then
    redis.call('HSET', KEYS[5], 'ss_rate', fmt(ss_rate), 'ss_from', fmt(ss_from))
    redis.call('PEXPIRE', KEYS[5], 3600000)
  end
end
count_accepted(KEYS[6], now, ARGV[11])
if redis.call('EXISTS', L) == 1 then redis.call('PEXPIRE', L, ARGV[10]) end
rate, burst = effective(L, user_rate, user_burst)
if rate then
  if not tokens then tokens, ts = burst, now end
  if tokens > burst then tokens = burst end
  -- `remaining` (already net of requests still on the wire) only ever lowers.
  if remaining and remaining < tokens then tokens = remaining end
end
local cd = num(redis.call('GET', KEYS[2]))
if cooldown and cooldown > 0 then
  local reopen = now + cooldown
  if not cd or reopen > cd then
    cd = reopen
    redis.call('SET', KEYS[2], fmt(reopen), 'PX', math.ceil(cooldown * 1000) + 1000)
    -- No tokens pile up while closed: at most one when it reopens.
    if rate then
      if tokens > 1 then tokens = 1 end
      if reopen > ts then ts = reopen end
    end
  end
end
if rate then save_bucket(KEYS[1], now, tokens, ts, rate, burst) end
if ARGV[9] ~= '' and redis.call('GET', KEYS[4]) == ARGV[9] then redis.call('DEL', KEYS[4]) end
local l = redis.call('HMGET', L, 'limit', 'remaining', 'reset_at', 'max_reset', 'window')
local left = 0
if cd and cd > now then left = cd - now end
local reset = ''
if num(l[3]) then reset = fmt(math.max(0, num(l[3]) - now)) end
return {rate and fmt(rate) or '', burst and fmt(burst) or '', tokens and fmt(tokens) or '',
        fmt(left), l[1] or '', l[2] or '', reset, l[4] or '', l[5] or ''}
"""
)

CHECK = (
    _COMMON
    + """
-- KEYS: cooldown. ARGV: [tests only: the server time to use, see now_s]
-- Reply: seconds until the shared gate reopens (0 = open).
local now = now_s(ARGV[1])
local cd = num(redis.call('GET', KEYS[1]))
if cd and cd > now then return fmt(cd - now) end
return '0'
"""
)

EPOCH = (
    _COMMON
    + """
-- KEYS: cooldown, aimd, oks, bucket. ARGV: hold (s), cooldown (s), history (s), the
-- caller's accepted answers not yet counted, as OBSERVE's (counted first: a leader reads
-- them), [tests only: the server time to use, see now_s]
-- A bare 429: the first process to call this once the last epoch is over leads the new
-- one. Every caller closes the shared gate for its cooldown (only ever later: the 429s
-- of one moment cost one stall) with one token when it reopens, as a cooldown does.
-- Reply: {'follower', now} or {'leader', now, bucket, count, bucket, count, ...}
-- with the accepted answers of every process over the last `history` seconds.
local now = now_s(ARGV[5])
local cool = num(ARGV[2])
if cool and cool > 0 then
  local reopen = now + cool
  local cd = num(redis.call('GET', KEYS[1]))
  if not cd or reopen > cd then
    redis.call('SET', KEYS[1], fmt(reopen), 'PX', math.ceil(cool * 1000) + 1000)
    if redis.call('EXISTS', KEYS[4]) == 1 then
      redis.call('HSET', KEYS[4], 'tokens', '1', 'ts', fmt(reopen))
    end
  end
end
count_accepted(KEYS[3], now, ARGV[4])
local epoch = num(redis.call('HGET', KEYS[2], 'epoch'))
if epoch and now < epoch then return {'follower', fmt(now)} end
redis.call('HSET', KEYS[2], 'epoch', fmt(now + tonumber(ARGV[1])))
redis.call('PEXPIRE', KEYS[2], 3600000)
local out = {'leader', fmt(now)}
return accepted(KEYS[3], now, tonumber(ARGV[3]), out)
"""
)

COUNTS = (
    _COMMON
    + """
-- KEYS: oks. ARGV: history (s), [tests only: the server time to use, see now_s]
-- Reply: {now, bucket, count, bucket, count, ...}: the accepted answers of every process
-- over the last `history` seconds (a leader that let the other processes' counts in
-- flight land reads them again).
local now = now_s(ARGV[2])
local out = {fmt(now)}
return accepted(KEYS[1], now, tonumber(ARGV[1]), out)
"""
)

LEAVE = """
-- KEYS: fore, back. ARGV: ids of waiters that left without a token (cancelled, failed).
for i = 1, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
return 1
"""

SCHEDULE = (
    _COMMON
    + """
-- KEYS: aimd. ARGV: est, from (server time), climb, trust, count, seconds, limited,
-- resumed (server times), epoch end; or ('', rate, from, epoch end): a new slow start
-- (nothing could be learned). The leader publishes the schedule every process follows.
if ARGV[1] == '' then
  redis.call('HDEL', KEYS[1], 'est', 'from', 'climb', 'trust', 'count', 'seconds',
             'limited', 'resumed')
  redis.call('HSET', KEYS[1], 'ss_rate', ARGV[2], 'ss_from', ARGV[3], 'epoch', ARGV[4])
else
  redis.call('HDEL', KEYS[1], 'ss_rate', 'ss_from')
  redis.call('HSET', KEYS[1], 'est', ARGV[1], 'from', ARGV[2], 'climb', ARGV[3],
             'trust', ARGV[4], 'count', ARGV[5], 'seconds', ARGV[6], 'limited', ARGV[7],
             'resumed', ARGV[8], 'epoch', ARGV[9])
end
redis.call('PEXPIRE', KEYS[1], 3600000)
return 1
"""
)

CLOCKED = frozenset({ACQUIRE, OBSERVE, CHECK, EPOCH, COUNTS})
"""The scripts that read the server clock: each takes, after its own ARGV (a fixed number
of them), an optional server time to use instead (set by tests, never in production)."""
