-- Raises a live reservation to at least amount_micro and moves its expiry to expires_at, when
-- what is spent, the other holds and the new amount fit the month's limit: 1, else 0 (the
-- hold stays as it was). 0 too when the reservation is gone (settled, or expired).
-- KEYS: totals, held, until
-- ARGV: now, limit_micro, request_id, amount_micro, expires_at, ttl
-- include: live_budget
local old = tonumber(redis.call('HGET', KEYS[2], ARGV[3]) or '-1')
if old < 0 then return 0 end
local amount = math.max(old, tonumber(ARGV[4]))
if spent + reserved - old + amount > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[3], amount)
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[6]) end
return 1
