-- Each circuit's state, "probe" for an open one whose cool-down has passed.
-- KEYS: circuit...
-- ARGV: now
local now = tonumber(ARGV[1])
local states = {}
for i, key in ipairs(KEYS) do
  local state, until_ = unpack(redis.call('HMGET', key, 'state', 'until'))
  state = state or 'closed'
  if state == 'open' and now >= tonumber(until_ or '0') then state = 'probe' end
  states[i] = state
end
return states
