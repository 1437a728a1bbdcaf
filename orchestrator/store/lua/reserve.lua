-- Holds a request's worst case when spent + held + it fits the month's limit: 1, else 0.
-- KEYS: totals, held, until
-- ARGV: now, limit_micro, request_id, amount_micro, expires_at, ttl
-- include: live_budget
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return 1 end
if spent + reserved + tonumber(ARGV[4]) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[6]) end
return 1
