-- Drops a month's expired reservations and reads what is spent and held (KEYS: totals, held,
-- until; ARGV[1]: now): leaves `spent` and `reserved` in micro-dollars.
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
for _, id in ipairs(expired) do redis.call('HDEL', KEYS[2], id) end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1]) end
local reserved = 0
for _, amount in ipairs(redis.call('HVALS', KEYS[2])) do reserved = reserved + tonumber(amount) end
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent_micro') or '0')
