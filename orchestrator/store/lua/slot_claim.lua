-- Uses a booked slot once: 1 when it is still counted and was not claimed.
-- KEYS: at, meta
-- ARGV: booking
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if redis.call('HSETNX', KEYS[2], 'c:' .. ARGV[1], 1) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[2], math.max(redis.call('PTTL', KEYS[1]), 1000))
return 1
