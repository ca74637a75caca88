//! The Lua scripts: every multi-key update is one script, so Redis applies it atomically.
//!
//! Layout, under a prefix `P` (default `fusebox:`):
//! * `P{name}` — one hash per breaker: the record's fields, the fleet's outcome totals
//!   (`sum_s`, `sum_f`, `sum_slow`: every delta applied, from every instance), plus one field
//!   `i:{instance}` per instance holding
//!   `seq|successes|failures|slow|open|claimed|claimed_gen|last_seen|incarnation`;
//! * `P{name}:leases` — a sorted set: each instance, scored by the end of its lease (ms on
//!   Redis's clock); live instances are a `ZCOUNT`, and instances expired long enough to be
//!   forgotten are swept from its low end a few at a time;
//! * `P{name}:open` — a sorted set of the instances whose own breaker is open, scored by
//!   their lease's end as well, so live open votes are a `ZCOUNT` too;
//! * `P{name}:claims` — the set of instances holding trial slots in the current half-open
//!   episode (emptied by every new generation, so it is never larger than the slots granted
//!   in one episode);
//! * `P{name}:lease:{instance}` — the instance's lease as a key with a TTL, still written for
//!   readers of earlier releases (these scripts read the sorted set);
//!
//! where `name` is the breaker's name with `%`, `{` and `}` written as `%25`, `%7B` and
//! `%7D`: the name then ends at the first `}`, so no name, and no name and instance id
//! together, can spell another breaker's key.
//! * `Pbreakers` — on one server, the set of breaker names;
//! * `Pbreakers:seen` — on a cluster, the names instead, scored by when a write last proved
//!   the breaker's hash exists;
//! * channel `Pevents` — `"{generation} {name}"` on every change.
//!
//! The braces put a breaker's keys in one cluster slot: the hash tag is the escaped name,
//! whatever follows it (`:leases`, `:lease:{instance}`, ...). Every breaker script takes
//! `KEYS[1]` = the breaker's hash, `KEYS[2..4]` = its leases, open votes and claims, and on
//! one server only `KEYS[5]` = the set of names, which the scripts keep in the same atomic
//! step. On a cluster that set would sit in another slot, so it is absent and the store
//! writes `Pbreakers:seen` in a call of its own. `ARGV[1]` = the breaker's name, `ARGV[2]` =
//! the lease key prefix, `ARGV[3]` = the channel, `ARGV[4]` = idle TTL (ms). The lease key
//! the sync script derives from `ARGV[2]` is in the declared keys' slot.
//!
//! Key names on one server are those of earlier releases, so instances of both can share a
//! server during a rolling upgrade.
//!
//! Syncs, transitions and claims never read the whole hash nor visit every instance: their
//! cost does not grow with the fleet. Only the operator's read (`VIEW`) and `FORCE` list
//! every instance.

/// Shared functions, prepended to every script.
const PRELUDE: &str = r#"
local key, leases_key, voters_key, claims_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
-- nil on a cluster: the store lists names there itself.
local names_key = KEYS[5]
local name, lease_prefix, channel = ARGV[1], ARGV[2], ARGV[3]
local idle_ttl = tonumber(ARGV[4])
local FORGET_MS = 600000
-- Forgotten instances swept per sync: more than one sync can add, so the sweep keeps up.
local SWEEP = 16

local function fmt(x) return string.format('%d', x) end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local NUMERIC = {'generation', 'open_until', 'trips', 'trial_successes', 'trial_failures',
  'forced_until', 'transitions', 'opens', 'changed', 'sum_s', 'sum_f', 'sum_slow'}
local RECORD = {'generation', 'state', 'open_until', 'trips', 'trial_successes',
  'trial_failures', 'forced', 'forced_until', 'transitions', 'opens', 'changed', 'mode',
  'reason', 'sum_s', 'sum_f', 'sum_slow'}

local function settle(r, now)
  r.state = r.state or 'closed'
  r.forced, r.mode, r.reason = r.forced or '', r.mode or '', r.reason or ''
  for _, f in ipairs(NUMERIC) do r[f] = tonumber(r[f]) or 0 end
  if r.forced ~= '' and r.forced_until > 0 and r.forced_until <= now then
    r.forced, r.forced_until = '', 0
    redis.call('HSET', key, 'forced', '', 'forced_until', 0)
  end
  return r
end

-- The record's fields only, never the instances beside them.
local function load_record(now)
  local values = redis.call('HMGET', key, unpack(RECORD))
  local r = {}
  for n, f in ipairs(RECORD) do
    if values[n] then r[f] = values[n] end
  end
  return settle(r, now)
end

-- The record and every instance (operator reads).
local function load(now)
  local flat = redis.call('HGETALL', key)
  local r = {}
  local inst = {}
  for i = 1, #flat, 2 do
    local k, v = flat[i], flat[i + 1]
    if string.sub(k, 1, 2) == 'i:' then inst[string.sub(k, 3)] = v else r[k] = v end
  end
  return settle(r, now), inst
end

local function decode(v)
  local raw = {}
  for x in string.gmatch(v or '', '[^|]+') do raw[#raw + 1] = x end
  local function n(k) return tonumber(raw[k]) or 0 end
  -- The incarnation stays text: a 64-bit value does not fit a Lua number exactly.
  return {seq = n(1), s = n(2), f = n(3), slow = n(4), open = n(5), claimed = n(6),
    cgen = n(7), last = n(8), inc = raw[9] or '0'}
end

local function encode(i)
  return table.concat({fmt(i.seq), fmt(i.s), fmt(i.f), fmt(i.slow), fmt(i.open),
    fmt(i.claimed), fmt(i.cgen), fmt(i.last), i.inc}, '|')
end

local function keep(k)
  redis.call('PEXPIRE', k, idle_ttl)
end

local function save(r)
  redis.call('HSET', key, 'generation', fmt(r.generation), 'state', r.state,
    'open_until', fmt(r.open_until), 'trips', fmt(r.trips),
    'trial_successes', fmt(r.trial_successes), 'trial_failures', fmt(r.trial_failures),
    'forced', r.forced, 'forced_until', fmt(r.forced_until),
    'transitions', fmt(r.transitions), 'opens', fmt(r.opens), 'changed', fmt(r.changed),
    'mode', r.mode, 'reason', r.reason,
    'sum_s', fmt(r.sum_s), 'sum_f', fmt(r.sum_f), 'sum_slow', fmt(r.sum_slow))
  keep(key)
  keep(leases_key)
  keep(voters_key)
  keep(claims_key)
  if names_key then
    redis.call('SADD', names_key, name)
    keep(names_key)
  end
end

local function announce(r)
  redis.call('PUBLISH', channel, fmt(r.generation) .. ' ' .. name)
end

local function change(r, target, cooldown, reason, now)
  r.generation = r.generation + 1
  r.state = target
  r.transitions = r.transitions + 1
  r.changed = now
  r.reason = reason
  r.trial_successes, r.trial_failures = 0, 0
  if target == 'open' then
    r.open_until = now + cooldown
    r.trips = r.trips + 1
    r.opens = r.opens + 1
  elseif target == 'closed' then
    r.trips, r.open_until = 0, 0
  end
  -- Claims belong to one episode: a new generation ends them all.
  redis.call('DEL', claims_key)
end

local function lease_until(id)
  return tonumber(redis.call('ZSCORE', leases_key, id)) or 0
end

-- Slots held by live instances in the current episode: only claimants are visited.
local function held_claims(r, now)
  local held = 0
  if r.state ~= 'half_open' then return 0 end
  for _, id in ipairs(redis.call('SMEMBERS', claims_key)) do
    local i = decode(redis.call('HGET', key, 'i:' .. id))
    if i.cgen == r.generation and lease_until(id) > now then held = held + i.claimed end
  end
  return held
end

local function forget(id)
  redis.call('HDEL', key, 'i:' .. id)
  redis.call('ZREM', leases_key, id)
  redis.call('ZREM', voters_key, id)
  redis.call('SREM', claims_key, id)
end

-- Forgets at most SWEEP instances whose lease ended FORGET_MS ago or more.
local function sweep(now)
  local gone = redis.call('ZRANGEBYSCORE', leases_key, '-inf', fmt(now - FORGET_MS), 'LIMIT', 0,
    SWEEP)
  for _, id in ipairs(gone) do forget(id) end
end

local function head(r, now, extra)
  return {fmt(now), fmt(r.generation), r.state, fmt(r.open_until), fmt(r.trips),
    fmt(r.trial_successes), fmt(r.trial_failures), r.forced, fmt(r.forced_until),
    fmt(r.transitions), fmt(r.opens), fmt(r.changed), r.mode, r.reason, fmt(extra)}
end

local function row(out, r, id, i, until_ms, now)
  local live, left, claimed = 0, 0, 0
  if until_ms > now then live, left = 1, until_ms - now end
  if live == 1 and r.state == 'half_open' and i.cgen == r.generation then claimed = i.claimed end
  for _, x in ipairs({id, fmt(live), fmt(left), fmt(i.open), fmt(i.s), fmt(i.f), fmt(i.slow),
    fmt(i.seq), fmt(claimed)}) do out[#out + 1] = x end
end

-- The hot path's answer: the record, the fleet's totals, and the caller's own instance when
-- given, whatever the number of instances.
local function summary(r, now, extra, id, i, until_ms)
  local out = head(r, now, extra)
  local since = '(' .. fmt(now)
  for _, x in ipairs({'1', fmt(redis.call('ZCOUNT', leases_key, since, '+inf')),
    fmt(redis.call('ZCOUNT', voters_key, since, '+inf')), fmt(held_claims(r, now)),
    fmt(r.sum_s), fmt(r.sum_f), fmt(r.sum_slow)}) do out[#out + 1] = x end
  if id then
    out[#out + 1] = '1'
    row(out, r, id, i, until_ms, now)
  else
    out[#out + 1] = '0'
  end
  return out
end

-- The operator's answer: every instance still remembered.
local function view(r, inst, now, extra)
  local out = head(r, now, extra)
  for _, x in ipairs({'0', '0', '0', '0', '0', '0', '0'}) do out[#out + 1] = x end
  local ids = {}
  for id, _ in pairs(inst) do ids[#ids + 1] = id end
  table.sort(ids)
  local rows = {}
  for _, id in ipairs(ids) do
    local i = decode(inst[id])
    local until_ms = lease_until(id)
    if until_ms + FORGET_MS <= now and now - i.last > FORGET_MS then
      forget(id)
    else
      row(rows, r, id, i, until_ms, now)
    end
  end
  out[#out + 1] = fmt(#rows / 9)
  for _, x in ipairs(rows) do out[#out + 1] = x end
  return out
end
"#;

/// Flush: ARGV[5..] = instance, lease ttl, seq, successes, failures, slow, trial generation,
/// trial successes, trial failures, released slots, local open (0/1), mode, incarnation.
const SYNC: &str = r#"
local id, ttl, seq = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local now = now_ms()
local r = load_record(now)
local i = decode(redis.call('HGET', key, 'i:' .. id))
local until_ms = now + ttl
redis.call('ZADD', leases_key, fmt(until_ms), id)
redis.call('SET', lease_prefix .. id, '1', 'PX', ttl)
i.open, i.last = tonumber(ARGV[15]), now
if i.open == 1 then
  redis.call('ZADD', voters_key, fmt(until_ms), id)
else
  redis.call('ZREM', voters_key, id)
end
if ARGV[17] ~= i.inc then
  -- A restart under this id: its sequence starts again, and the slots its previous run
  -- claimed went with that run.
  i.inc, i.seq, i.claimed = ARGV[17], 0, 0
end
if seq > i.seq then
  local s, f, slow = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
  i.seq = seq
  i.s, i.f, i.slow = i.s + s, i.f + f, i.slow + slow
  r.sum_s, r.sum_f, r.sum_slow = r.sum_s + s, r.sum_f + f, r.sum_slow + slow
  if r.state == 'half_open' and tonumber(ARGV[11]) == r.generation then
    r.trial_successes = r.trial_successes + tonumber(ARGV[12])
    r.trial_failures = r.trial_failures + tonumber(ARGV[13])
    if i.cgen == r.generation then i.claimed = math.max(0, i.claimed - tonumber(ARGV[14])) end
  end
end
if i.claimed == 0 then redis.call('SREM', claims_key, id) end
r.mode = ARGV[16]
redis.call('HSET', key, 'i:' .. id, encode(i))
save(r)
sweep(now)
return summary(r, now, 0, id, i, until_ms)
"#;

/// Compare-and-set: ARGV[5..] = expected generation, target state, cooldown ms, reason.
const TRANSITION: &str = r#"
local now = now_ms()
local r = load_record(now)
local won = 0
if r.generation == tonumber(ARGV[5]) then
  change(r, ARGV[6], tonumber(ARGV[7]), ARGV[8], now)
  save(r)
  announce(r)
  won = 1
end
return summary(r, now, won)
"#;

/// Trial claim: ARGV[5..] = instance, wanted slots, permitted slots.
const CLAIM: &str = r#"
local id, want, permitted = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local now = now_ms()
local r = load_record(now)
if r.state == 'open' and now >= r.open_until and r.forced == '' then
  change(r, 'half_open', 0, 'cooldown elapsed', now)
  save(r)
  announce(r)
end
local granted = 0
if r.state == 'half_open' and r.forced == '' then
  granted = math.min(want, math.max(0, permitted - held_claims(r, now)))
  local i = decode(redis.call('HGET', key, 'i:' .. id))
  if i.cgen ~= r.generation then i.cgen, i.claimed = r.generation, 0 end
  i.claimed = i.claimed + granted
  redis.call('HSET', key, 'i:' .. id, encode(i))
  if i.claimed > 0 then
    redis.call('SADD', claims_key, id)
    keep(claims_key)
  end
end
return summary(r, now, granted)
"#;

/// Forced state: ARGV[5..] = forced ('open', 'closed', or '' to reset), duration ms (0: none).
const FORCE: &str = r#"
local forced, for_ms = ARGV[5], tonumber(ARGV[6])
if for_ms == nil or for_ms < 0 or for_ms > 315360000000 then
  return redis.error_reply('fusebox: a forced duration must be within 10 years')
end
local now = now_ms()
local r, inst = load(now)
if forced ~= '' then
  r.forced = forced
  r.forced_until = 0
  if for_ms > 0 then r.forced_until = now + for_ms end
  r.generation = r.generation + 1
  r.changed = now
  r.reason = 'forced ' .. forced
  redis.call('DEL', claims_key)
else
  r.forced, r.forced_until = '', 0
  change(r, 'closed', 0, 'reset', now)
end
save(r)
announce(r)
return view(r, inst, now, 0)
"#;

/// Read: nil when the breaker is unknown.
const VIEW: &str = r#"
if redis.call('EXISTS', key) == 0 then return false end
local now = now_ms()
local r, inst = load(now)
return view(r, inst, now, 0)
"#;

/// Names of breakers whose hash still exists; forgets expired ones. KEYS[1] = the set.
pub(crate) const BREAKERS: &str = r#"
local prefix = ARGV[1]
local out = {}
local function enc(n)
  return (string.gsub(n, '[%%{}]', function(c) return string.format('%%%02X', string.byte(c)) end))
end
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', prefix .. '{' .. enc(n) .. '}') == 1 then out[#out + 1] = n
  else redis.call('SREM', KEYS[1], n) end
end
table.sort(out)
return out
"#;

/// On a cluster, notes that breaker ARGV[1]'s hash exists now. KEYS[1] = the sorted set of
/// names, ARGV[2] = idle TTL (ms).
const SEEN_ADD: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#;

/// On a cluster, the names noted within the idle TTL (ARGV[1], ms), sorted; forgets the
/// older ones, whose hashes have expired. KEYS[1] = the sorted set of names.
const SEEN_LIST: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - tonumber(ARGV[1])))
local out = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(out)
return out
"#;

pub(crate) struct Scripts {
    pub(crate) sync: redis::Script,
    pub(crate) transition: redis::Script,
    pub(crate) claim: redis::Script,
    pub(crate) force: redis::Script,
    pub(crate) view: redis::Script,
    pub(crate) breakers: redis::Script,
    pub(crate) seen_add: redis::Script,
    pub(crate) seen_list: redis::Script,
}

impl Scripts {
    pub(crate) fn new() -> Scripts {
        let with_prelude = |body: &str| redis::Script::new(&format!("{PRELUDE}\n{body}"));
        Scripts {
            sync: with_prelude(SYNC),
            transition: with_prelude(TRANSITION),
            claim: with_prelude(CLAIM),
            force: with_prelude(FORCE),
            view: with_prelude(VIEW),
            breakers: redis::Script::new(BREAKERS),
            seen_add: redis::Script::new(SEEN_ADD),
            seen_list: redis::Script::new(SEEN_LIST),
        }
    }
}
