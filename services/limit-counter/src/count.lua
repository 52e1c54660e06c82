-- limit-counter's atomic step: one call per batch of events, run inside Redis so that every
-- replica sees one consistent set of counters. For each event, in order:
--   a message id seen before returns the verdict stored then (a replay counts nothing);
--   a restricted submitter is blocked; too many recipients in one message rejects it;
--   sliding-window sums are compared with the thresholds the caller resolved from policy;
--   a message that is sent is added to the windows; the verdict is stored under its id.
-- Windows run on event time. Each (submitter | tenant) has a sorted set of its messages
-- (member "recipients,external,internal|messageId", score = event time) and a hash of running
-- totals per window, kept for members newer than watermark - window - grace; an event later than
-- the grace period is counted as if it happened at watermark - grace. Sums then cost only the
-- members inside the grace band, not the whole window.
--
-- ARGV[1] key prefix; ARGV[2] settings {grace, dedupTtl, maxDeferMinutes, keyTtl};
-- ARGV[3] limit sets (JSON list); ARGV[4] events (JSON list):
--   {id, tk (tenant), sub (submitter, '' for none), t, n, e, i, tc (1: counts toward the tenant), p (limit set, 1-based)}
-- Returns per event {duplicate (0|1), verdict JSON}: see src/store.ts for the fields.

local prefix = ARGV[1]
local settings = cjson.decode(ARGV[2])
local limitSets = cjson.decode(ARGV[3])
local events = cjson.decode(ARGV[4])

local GRACE = settings.grace
local DAY = 86400000
local HOUR = 3600000
local MINUTE = 60000
local NONE = 1e18 -- "no member": a score above every event time
local RESTRICTED = prefix .. 'restricted'

local function num(x)
  return string.format('%.0f', x)
end

-- Sum of the amounts of the members of sorted set `z` with scores in [min, max] (Redis range syntax).
local function sumRange(z, min, max)
  local n, e, i = 0, 0, 0
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', z, min, max)) do
    local a, b, c = string.match(member, '^(%d+),(%d+),(%d+)|')
    n = n + tonumber(a)
    e = e + tonumber(b)
    i = i + tonumber(c)
  end
  return n, e, i
end

-- The lowest score above `after`, or NONE.
local function lowestAbove(z, after)
  local first = redis.call('ZRANGEBYSCORE', z, '(' .. num(after), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  return tonumber(first[2]) or NONE
end

-- Window states touched by this batch, read once and written back once at the end, each as one
-- JSON string (<base>:s) beside its sorted set (<base>:z). Fields: wm (watermark), d* (day
-- totals: every member of the set), h* (hour totals, senders only), lo / loh (lowest score in the
-- day / hour totals, so that empty ranges cost no call), m<minute> (messages sent in or deferred
-- to that minute, senders only), mha/mhb (a run of full minutes), pm (minutes pruned up to),
-- ttl (event time the set's expiry was last pushed back).
local states = {}
-- What the batch reads is fetched up front, a thousand keys a call: per-call overhead in a
-- script is several times the cost of the command itself.
local preloaded = {}
local restrictedOf = {}

local function fetchAll(command, key, names, into)
  for from = 1, #names, 1000 do
    local chunk = { unpack(names, from, math.min(from + 999, #names)) }
    local values = key and redis.call(command, key, unpack(chunk)) or redis.call(command, unpack(chunk))
    for k, name in ipairs(chunk) do
      into[name] = values[k]
    end
  end
end

local function stateOf(base, hourly)
  local state = states[base]
  if state then
    return state
  end
  state = { z = base .. ':z', key = base .. ':s', hourly = hourly, fresh = false }
  local raw = preloaded[state.key]
  if raw == nil then
    raw = redis.call('GET', state.key)
  end
  if raw then
    state.s = cjson.decode(raw)
  else
    state.fresh = true
    state.s = { wm = -NONE, dn = 0, de = 0, di = 0, lo = NONE, ttl = -NONE, pm = -NONE }
    if hourly then
      state.s.hn, state.s.he, state.s.hi, state.s.loh = 0, 0, 0, NONE
    end
  end
  states[base] = state
  return state
end

-- The event time the state counts `t` at, moving the watermark (and the running totals) forward.
local function placeAt(state, t)
  local s = state.s
  if t < s.wm - GRACE then
    return s.wm - GRACE
  end
  if t > s.wm then
    if state.hourly and s.loh <= t - HOUR - GRACE then
      local n, e, i = sumRange(state.z, '(' .. num(s.wm - HOUR - GRACE), num(t - HOUR - GRACE))
      s.hn, s.he, s.hi = s.hn - n, s.he - e, s.hi - i
      s.loh = lowestAbove(state.z, t - HOUR - GRACE)
    end
    if s.lo <= t - DAY - GRACE then
      local n, e, i = sumRange(state.z, '-inf', num(t - DAY - GRACE))
      s.dn, s.de, s.di = s.dn - n, s.de - e, s.di - i
      redis.call('ZREMRANGEBYSCORE', state.z, '-inf', num(t - DAY - GRACE))
      s.lo = lowestAbove(state.z, t - DAY - GRACE)
    end
    s.wm = t
  end
  return t
end

-- Recipients, external and internal recipients from t - width (exclusive) to the watermark. For a
-- late event that is a little more than the window (never more than the grace period): a limit
-- cannot be slipped past by events arriving out of order, since whichever of them comes last
-- sees all the others.
local function windowSum(state, w, t)
  local s = state.s
  local width = (w == 'h') and HOUR or DAY
  local lowest = (w == 'h') and s.loh or s.lo
  local n, e, i = s[w .. 'n'], s[w .. 'e'], s[w .. 'i']
  if lowest <= t - width then
    local on, oe, oi = sumRange(state.z, '(' .. num(s.wm - width - GRACE), num(t - width))
    n, e, i = n - on, e - oe, i - oi
  end
  return n, e, i
end

local function add(state, t, ev)
  redis.call('ZADD', state.z, num(t), ev.n .. ',' .. ev.e .. ',' .. ev.i .. '|' .. ev.id)
  local s = state.s
  s.dn, s.de, s.di = s.dn + ev.n, s.de + ev.e, s.di + ev.i
  s.lo = math.min(s.lo, t)
  if state.hourly then
    s.hn, s.he, s.hi = s.hn + ev.n, s.he + ev.e, s.hi + ev.i
    s.loh = math.min(s.loh, t)
  end
end

local function nextUtcMidnight(t)
  return math.floor(t / DAY + 1) * DAY
end

-- Messages per submitter per calendar minute; a full minute defers the message into the first
-- later minute with room. mha/mhb remember a run of full minutes so a burst does not rescan it.
local function reserveMinute(state, t, perMinute)
  local s = state.s
  local minute = math.floor(t / MINUTE)
  local count = s['m' .. minute] or 0
  if count < perMinute then
    s['m' .. minute] = count + 1
    return minute, count + 1
  end
  local from, candidate = minute, minute + 1
  if s.mha and s.mha <= minute and minute < s.mhb then
    from, candidate = s.mha, s.mhb
  end
  local last = minute + settings.maxDeferMinutes
  while candidate < last and (s['m' .. candidate] or 0) >= perMinute do
    candidate = candidate + 1
  end
  s['m' .. candidate] = (s['m' .. candidate] or 0) + 1
  s.mha, s.mhb = from, candidate
  return candidate, s['m' .. candidate]
end

local function decide(ev, L)
  local t = ev.t
  local subject = ev.tk .. '/' .. ev.sub
  local usage = {}
  local function use(limit, count, threshold)
    if count >= threshold * L.warnAt then
      usage[#usage + 1] = { limit, count, threshold }
    end
  end

  if ev.sub ~= '' then
    local raw = restrictedOf[subject]
    if raw then
      local r = cjson.decode(raw)
      if r['until'] == nil or r['until'] > t then
        return { d = 'BLOCK', l = 'restricted', c = r.c, th = r.th, rl = r.l, a = r.a, ru = r['until'], u = usage }
      end
      redis.call('HDEL', RESTRICTED, subject) -- its day is over (in event time)
      restrictedOf[subject] = false
    end
  end
  if ev.n > L.recipientsPerMessage then
    return { d = 'REJECT', l = 'recipientsPerMessage', c = ev.n, th = L.recipientsPerMessage, u = usage }
  end

  local tenant, tenantAt
  if ev.tc == 1 and ev.e > 0 then
    tenant = stateOf(prefix .. 't:' .. ev.tk, false)
    tenantAt = placeAt(tenant, t)
    local _, external = windowSum(tenant, 'd', tenantAt)
    local count = external + ev.e
    if count > L.tenantExternal then
      return { d = 'REJECT', l = 'tenantExternalRecipients', c = count, th = L.tenantExternal, u = usage }
    end
    use('tenantExternalRecipients', count, L.tenantExternal)
  end

  local verdict = { d = 'ALLOW', u = usage }
  local sender, senderAt
  if ev.sub ~= '' then
    sender = stateOf(prefix .. 's:' .. subject, true)
    senderAt = placeAt(sender, t)
    local dayN = windowSum(sender, 'd', senderAt)
    local _, hourE, hourI = windowSum(sender, 'h', senderAt)
    local checks = {
      { 'recipientRate', dayN + ev.n, L.recipientRate, L.recipientRateAction },
      { 'externalPerHour', hourE + ev.e, L.externalPerHour, L.policyAction },
      { 'internalPerHour', hourI + ev.i, L.internalPerHour, L.policyAction },
      { 'recipientsPerDay', dayN + ev.n, L.perDay, L.policyAction },
    }
    for _, check in ipairs(checks) do
      local limit, count, threshold, action = check[1], check[2], check[3], check[4]
      if count > threshold then
        if action ~= 'Alert' then
          local untilAt = nil
          if action == 'BlockUserForToday' then
            untilAt = nextUtcMidnight(t)
          end
          local restriction = { a = action, l = limit, c = count, th = threshold, at = t }
          restriction['until'] = untilAt
          restrictedOf[subject] = cjson.encode(restriction)
          redis.call('HSET', RESTRICTED, subject, restrictedOf[subject])
          return { d = 'BLOCK', l = limit, c = count, th = threshold, a = action, ru = untilAt, new = 1, u = usage }
        end
        if verdict.d == 'ALLOW' then
          verdict = { d = 'ALERT', l = limit, c = count, th = threshold, a = action, u = usage }
        end
      end
      use(limit, count, threshold)
    end
    local minute, inMinute = reserveMinute(sender, senderAt, L.messageRatePerMinute)
    use('messageRate', inMinute, L.messageRatePerMinute)
    if minute * MINUTE > senderAt then
      verdict = { d = 'THROTTLE', l = 'messageRate', c = inMinute, th = L.messageRatePerMinute, du = minute * MINUTE, a = verdict.a, u = usage }
    end
    add(sender, senderAt, ev)
  end
  if tenant then
    add(tenant, tenantAt, ev)
  end
  if verdict.d == 'ALLOW' and #usage > 0 then
    local top = usage[1]
    for _, entry in ipairs(usage) do
      if entry[2] / entry[3] > top[2] / top[3] then
        top = entry
      end
    end
    verdict = { d = 'WARN', l = top[1], c = top[2], th = top[3], u = usage }
  end
  return verdict
end

-- Message ids already counted live in one hash per hour of event time (field tenant/id),
-- expiring dedupTtl after its last write; a replay finds its event in the same bucket.
local function seenBucket(ev)
  return prefix .. 'seen:' .. math.floor(ev.t / HOUR)
end

local seenFields, stateKeys, subjects = {}, {}, {}
local wanted = {}
for _, ev in ipairs(events) do
  local bucket = seenBucket(ev)
  if not seenFields[bucket] then
    seenFields[bucket] = {}
  end
  table.insert(seenFields[bucket], ev.tk .. '/' .. ev.id)
  local bases = {}
  if ev.sub ~= '' then
    bases[1] = prefix .. 's:' .. ev.tk .. '/' .. ev.sub .. ':s'
    if not wanted[ev.tk .. '/' .. ev.sub] then
      wanted[ev.tk .. '/' .. ev.sub] = true
      subjects[#subjects + 1] = ev.tk .. '/' .. ev.sub
    end
  end
  if ev.tc == 1 and ev.e > 0 then
    bases[#bases + 1] = prefix .. 't:' .. ev.tk .. ':s'
  end
  for _, key in ipairs(bases) do
    if not wanted[key] then
      wanted[key] = true
      stateKeys[#stateKeys + 1] = key
    end
  end
end
local stored = {}
for bucket, fields in pairs(seenFields) do
  local values = {}
  fetchAll('HMGET', bucket, fields, values)
  stored[bucket] = values
end
fetchAll('MGET', nil, stateKeys, preloaded)
fetchAll('HMGET', RESTRICTED, subjects, restrictedOf)

local results = {}
local written = {}
for index, ev in ipairs(events) do
  local bucket = seenBucket(ev)
  local field = ev.tk .. '/' .. ev.id
  local before = stored[bucket][field]
  if before then
    results[index] = { 1, before }
  else
    local encoded = cjson.encode(decide(ev, limitSets[ev.p]))
    stored[bucket][field] = encoded -- the same id twice in one batch: the second is a replay
    if not written[bucket] then
      written[bucket] = {}
    end
    table.insert(written[bucket], field)
    table.insert(written[bucket], encoded)
    results[index] = { 0, encoded }
  end
end
for bucket, pairsList in pairs(written) do
  for from = 1, #pairsList, 2000 do
    redis.call('HSET', bucket, unpack(pairsList, from, math.min(from + 1999, #pairsList)))
  end
  redis.call('EXPIRE', bucket, settings.dedupTtl)
end

for _, state in pairs(states) do
  local s = state.s
  -- Minutes behind the grace period can no longer be counted into or deferred to: drop them
  -- every ten minutes of event time.
  local oldest = math.floor((s.wm - GRACE) / MINUTE) - 1
  if oldest > s.pm + 10 then
    for field in pairs(s) do
      local minute = tonumber(string.match(field, '^m(%-?%d+)$'))
      if minute and minute < oldest then
        s[field] = nil
      end
    end
    s.pm = oldest
  end
  -- Expiry is wall-clock; the set's is pushed back once per hour of event time.
  if state.fresh or s.wm - s.ttl > HOUR then
    s.ttl = s.wm
    redis.call('EXPIRE', state.z, settings.keyTtl)
  end
  redis.call('SET', state.key, cjson.encode(s), 'EX', settings.keyTtl)
end
return results
