-- spam-classifier's submitter profiles: one call per batch, run inside Redis so that replicas
-- share one consistent profile per submitter. For each event, in order:
--   a message id seen before returns the evidence stored then (a replay changes nothing);
--   otherwise the evidence is read from the profile as it stood before this message: how many
--   messages the submitter sent before, how many of this message's words and external
--   recipients it never used before, its messages in this event-time hour against its usual
--   hourly count, and its usual content score; then the message is added to the profile.
-- A profile is a JSON state (<base>:s) and one bit string (<base>:f) holding two Bloom filters,
-- each in two generations, side by side: the words the submitter wrote (a sample of each
-- message's words) and the external recipients it wrote to. One read fetches every bit a
-- batch needs (one GET per submitter) and one call per submitter writes what the batch taught. A generation that has taken in its share of new
-- items is cleared and becomes the current one, so the filters stay accurate and bounded (a few
-- KB per submitter). Only mail whose content was judged clean teaches the filters; every
-- message counts toward the rates.
--
-- ARGV[1] key prefix; ARGV[2] settings {dedupTtl, keyTtl, vocabRotate, recipientRotate,
-- hourlyAlpha, scoreAlpha, wordBits, recipientBits}; ARGV[3] events (JSON list): {id, key, t,
-- v (word bit offsets within a word filter, K_WORDS per word), r (recipient bit offsets within a
-- recipient filter, K_RECIPIENTS each), learn (0|1), s (content score)}
-- Returns per event {duplicate (0|1), evidence JSON}: {n, nw, tw, nr, tr, hc, hm, ms, mn}.

local prefix = ARGV[1]
local settings = cjson.decode(ARGV[2])
local events = cjson.decode(ARGV[3])

local HOUR = 3600000
local K_WORDS = 2
local K_RECIPIENTS = 3

local WORD_BITS = settings.wordBits
local RECIPIENT_BITS = settings.recipientBits
-- Where each filter generation starts in the bit string.
local function wordBase(generation) return (generation % 2) * WORD_BITS end
local function recipientBase(generation) return 2 * WORD_BITS + (generation % 2) * RECIPIENT_BITS end

local states = {}

local function stateOf(base)
  local state = states[base]
  if state then return state end
  local raw = redis.call('GET', base .. ':s')
  state = raw and cjson.decode(raw) or { n = 0, hs = -1, hc = 0, hm = 0, ms = 0, mn = 0, vw = 0, vg = 0, vn = 0, rg = 0, rn = 0 }
  states[base] = state
  return state
end

-- A submitter's bit string, read once per batch; bits set by this batch are kept beside it (and
-- written once at the end), so later messages of the batch see what earlier ones taught.
local filters = {}

local function filterOf(key)
  local filter = filters[key]
  if filter then return filter end
  filter = { bits = redis.call('GET', key) or '', added = {}, pending = {} }
  filters[key] = filter
  return filter
end

-- Redis's bit order: offset 0 is the most significant bit of the first byte.
local function isSet(filter, offset)
  if filter.added[offset] then return true end
  local byte = string.byte(filter.bits, math.floor(offset / 8) + 1)
  return byte ~= nil and bit.band(bit.rshift(byte, 7 - offset % 8), 1) == 1
end

local function setBit(filter, offset)
  if filter.added[offset] or isSet(filter, offset) then return end
  filter.added[offset] = true
  filter.pending[#filter.pending + 1] = offset
end

local function flush(key, filter)
  if #filter.pending == 0 then return end
  local args = {}
  for _, offset in ipairs(filter.pending) do
    args[#args + 1] = 'SET'; args[#args + 1] = 'u1'; args[#args + 1] = offset; args[#args + 1] = 1
  end
  redis.call('BITFIELD', key, unpack(args))
  filter.pending = {}
end

-- Whether all k offsets of an item, from `first`, are set in the generation starting at `base`.
local function holds(filter, offsets, first, k, base)
  for j = first, first + k - 1 do
    if not isSet(filter, base + offsets[j]) then return false end
  end
  return true
end

-- How many items (k offsets each) are in neither the current generation nor, once there was
-- one, the previous generation.
local function unknown(filter, offsets, k, current, previous, hasPrevious)
  local new = 0
  for first = 1, #offsets, k do
    if not holds(filter, offsets, first, k, current)
      and not (hasPrevious and holds(filter, offsets, first, k, previous)) then
      new = new + 1
    end
  end
  return new
end

-- A generation that is full: written out, cleared, read again.
local function clearRange(key, filter, fromBit, bits)
  flush(key, filter)
  redis.call('SETRANGE', key, fromBit / 8, string.rep('\0', bits / 8))
  filter.bits = redis.call('GET', key) or ''
  filter.added = {}
end

local results = {}
for i, event in ipairs(events) do
  local seenKey = prefix .. 'seen:' .. event.id
  local stored = redis.call('GET', seenKey)
  if stored then
    results[i] = { 1, stored }
  else
    local base = prefix .. 'p:' .. event.key
    local filter = base .. ':f'
    local state = stateOf(base)
    local words = #event.v / K_WORDS
    local recipients = #event.r / K_RECIPIENTS
    local bits = filterOf(filter)
    local newWords = unknown(bits, event.v, K_WORDS, wordBase(state.vg), wordBase(state.vg + 1), state.vg > 0)
    local newRecipients =
      unknown(bits, event.r, K_RECIPIENTS, recipientBase(state.rg), recipientBase(state.rg + 1), state.rg > 0)

    -- Rates by event-time hour: a late event counts in the hour under way.
    local hour = math.floor(event.t / HOUR)
    if hour > state.hs then
      if state.hs >= 0 then
        -- The usual count of an hour in which the submitter sends, hours without mail left out.
        state.hm = state.hm == 0 and state.hc or (1 - settings.hourlyAlpha) * state.hm + settings.hourlyAlpha * state.hc
      end
      state.hs = hour
      state.hc = 0
    end
    state.hc = state.hc + 1

    local evidence = cjson.encode({
      n = state.n,
      nw = newWords,
      tw = words,
      nr = newRecipients,
      tr = recipients,
      hc = state.hc,
      hm = state.hm,
      ms = state.ms,
      mn = state.mn,
    })
    state.ms = state.n == 0 and event.s or (1 - settings.scoreAlpha) * state.ms + settings.scoreAlpha * event.s
    -- The usual share of new words, over messages long enough to have one (vw counts them).
    if words >= 10 then
      local share = newWords / words
      state.mn = (state.vw or 0) == 0 and share or (1 - settings.scoreAlpha) * (state.mn or 0) + settings.scoreAlpha * share
      state.vw = (state.vw or 0) + 1
    end
    state.n = state.n + 1
    if event.learn == 1 then
      for _, offset in ipairs(event.v) do setBit(bits, wordBase(state.vg) + offset) end
      for _, offset in ipairs(event.r) do setBit(bits, recipientBase(state.rg) + offset) end
      state.vn = state.vn + newWords
      state.rn = state.rn + newRecipients
      -- A full generation: the older one is cleared and takes the new items from now on.
      if state.vn >= settings.vocabRotate then
        state.vg = state.vg + 1
        state.vn = 0
        clearRange(filter, bits, wordBase(state.vg), WORD_BITS)
      end
      if state.rn >= settings.recipientRotate then
        state.rg = state.rg + 1
        state.rn = 0
        clearRange(filter, bits, recipientBase(state.rg), RECIPIENT_BITS)
      end
    end
    redis.call('SET', seenKey, evidence, 'EX', settings.dedupTtl)
    results[i] = { 0, evidence }
  end
end

for key, filter in pairs(filters) do flush(key, filter) end
for base, state in pairs(states) do
  redis.call('SET', base .. ':s', cjson.encode(state), 'EX', settings.keyTtl)
  redis.call('EXPIRE', base .. ':f', settings.keyTtl)
end
return results
