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
-- ARGV[1] key prefix; ARGV[2] settings {grace, dedupTtl, maxDeferMinutes, keyTtl, minuteTtl};
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
local WINDOW = { d = DAY, h = HOUR }
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

-- Window states touched by this batch, written back once at the end.
local states = {}

local function stateOf(base, windows)
  local state = states[base]
  if state then
    return state
  end
  state = { base = base, z = base .. ':z', h = base .. ':h', windows = windows, totals = {} }
  local raw = redis.call('HGETALL', state.h)
  for k = 1, #raw, 2 do
    state.totals[raw[k]] = tonumber(raw[k + 1])
  end
  if state.totals.wm == nil then
    state.totals.wm = -1e15
    for _, w in ipairs(windows) do
      state.totals[w .. 'n'], state.totals[w .. 'e'], state.totals[w .. 'i'] = 0, 0, 0
    end
  end
  states[base] = state
  return state
end

-- The event time the state counts `t` at, moving the watermark (and the running totals) forward.
local function placeAt(state, t)
  local s = state.totals
  if t < s.wm - GRACE then
    return s.wm - GRACE
  end
  if t > s.wm then
    local longest = 0
    for _, w in ipairs(state.windows) do
      local width = WINDOW[w]
      if width > longest then
        longest = width
      end
      local n, e, i = sumRange(state.z, '(' .. num(s.wm - width - GRACE), num(t - width - GRACE))
      s[w .. 'n'], s[w .. 'e'], s[w .. 'i'] = s[w .. 'n'] - n, s[w .. 'e'] - e, s[w .. 'i'] - i
    end
    redis.call('ZREMRANGEBYSCORE', state.z, '-inf', num(t - longest - GRACE))
    s.wm = t
  end
  return t
end

-- Recipients, external and internal recipients from t - width (exclusive) to the watermark. For a
-- late event that is a little more than the window (never more than the grace period): a limit
-- cannot be slipped past by events arriving out of order, since whichever of them comes last
-- sees all the others.
local function windowSum(state, w, t)
  local s = state.totals
  local width = WINDOW[w]
  local on, oe, oi = sumRange(state.z, '(' .. num(s.wm - width - GRACE), num(t - width))
  return s[w .. 'n'] - on, s[w .. 'e'] - oe, s[w .. 'i'] - oi
end

local function add(state, t, ev)
  redis.call('ZADD', state.z, num(t), ev.n .. ',' .. ev.e .. ',' .. ev.i .. '|' .. ev.id)
  local s = state.totals
  for _, w in ipairs(state.windows) do
    s[w .. 'n'], s[w .. 'e'], s[w .. 'i'] = s[w .. 'n'] + ev.n, s[w .. 'e'] + ev.e, s[w .. 'i'] + ev.i
  end
end

local function nextUtcMidnight(t)
  return math.floor(t / DAY + 1) * DAY
end

-- Messages per submitter per calendar minute; a full minute defers the message into the first
-- later minute with room. `mrh` remembers a run of full minutes so a burst does not rescan it.
local function reserveMinute(subject, t, perMinute)
  local minute = math.floor(t / MINUTE)
  local key = prefix .. 'mr:' .. subject .. ':'
  local count = tonumber(redis.call('GET', key .. minute) or '0')
  if count < perMinute then
    redis.call('SET', key .. minute, count + 1, 'EX', settings.minuteTtl)
    return minute, count + 1
  end
  local hintKey = prefix .. 'mrh:' .. subject
  local from = minute
  local candidate = minute + 1
  local hint = redis.call('GET', hintKey)
  if hint then
    local a, b = string.match(hint, '^(%-?%d+),(%-?%d+)$')
    a, b = tonumber(a), tonumber(b)
    if a <= minute and minute < b then
      from, candidate = a, b
    end
  end
  local last = minute + settings.maxDeferMinutes
  while candidate < last do
    count = tonumber(redis.call('GET', key .. candidate) or '0')
    if count < perMinute then
      break
    end
    candidate = candidate + 1
  end
  count = tonumber(redis.call('INCR', key .. candidate))
  redis.call('EXPIRE', key .. candidate, settings.minuteTtl)
  redis.call('SET', hintKey, from .. ',' .. candidate, 'EX', settings.minuteTtl)
  return candidate, count
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
    local raw = redis.call('HGET', RESTRICTED, subject)
    if raw then
      local r = cjson.decode(raw)
      if r['until'] == nil or r['until'] > t then
        return { d = 'BLOCK', l = 'restricted', c = r.c, th = r.th, rl = r.l, a = r.a, ru = r['until'], u = usage }
      end
      redis.call('HDEL', RESTRICTED, subject) -- its day is over (in event time)
    end
  end
  if ev.n > L.recipientsPerMessage then
    return { d = 'REJECT', l = 'recipientsPerMessage', c = ev.n, th = L.recipientsPerMessage, u = usage }
  end

  local tenant, tenantAt
  if ev.tc == 1 and ev.e > 0 then
    tenant = stateOf(prefix .. 't:' .. ev.tk, { 'd' })
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
    sender = stateOf(prefix .. 's:' .. subject, { 'd', 'h' })
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
          redis.call('HSET', RESTRICTED, subject, cjson.encode(restriction))
          return { d = 'BLOCK', l = limit, c = count, th = threshold, a = action, ru = untilAt, new = 1, u = usage }
        end
        if verdict.d == 'ALLOW' then
          verdict = { d = 'ALERT', l = limit, c = count, th = threshold, a = action, u = usage }
        end
      end
      use(limit, count, threshold)
    end
    local minute, inMinute = reserveMinute(subject, senderAt, L.messageRatePerMinute)
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

local results = {}
for index, ev in ipairs(events) do
  local seenKey = prefix .. 'seen:' .. ev.tk .. '/' .. ev.id
  local stored = redis.call('GET', seenKey)
  if stored then
    results[index] = { 1, stored }
  else
    local encoded = cjson.encode(decide(ev, limitSets[ev.p]))
    redis.call('SET', seenKey, encoded, 'EX', settings.dedupTtl)
    results[index] = { 0, encoded }
  end
end

for _, state in pairs(states) do
  local flat = { 'HSET', state.h }
  for field, value in pairs(state.totals) do
    flat[#flat + 1] = field
    flat[#flat + 1] = num(value)
  end
  redis.call(unpack(flat))
  redis.call('EXPIRE', state.h, settings.keyTtl)
  redis.call('EXPIRE', state.z, settings.keyTtl)
end
return results
