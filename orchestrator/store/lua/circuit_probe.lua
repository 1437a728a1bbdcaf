-- Claims a model's single probe and half-opens its circuits whose cool-down has passed; 0 when
-- another worker holds it.
-- KEYS: probe, circuit...
-- ARGV: now, probe_ttl
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then return 0 end
local now = tonumber(ARGV[1])
for i = 2, #KEYS do
  local state, until_ = unpack(redis.call('HMGET', KEYS[i], 'state', 'until'))
  if state == 'open' and now >= tonumber(until_ or '0') then redis.call('HSET', KEYS[i], 'state', 'half_open') end
end
return 1
