-- Records an alert once per episode; 0 when the episode had fired.
-- KEYS: episode, list...
-- ARGV: alert, ttl, max_length
if ARGV[2] == '0' then
  if not redis.call('SET', KEYS[1], '1', 'NX') then return 0 end
elseif not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  return 0
end
for i = 2, #KEYS do
  redis.call('LPUSH', KEYS[i], ARGV[1])
  redis.call('LTRIM', KEYS[i], 0, tonumber(ARGV[3]) - 1)
end
return 1
