-- Records a request's one rating, bumps the user's learned score and the model's rated
-- quality, and keeps it among the user's latest ratings; 0 when the request was already rated.
-- KEYS: feedback, learned, quality, ratings
-- ARGV: now, half_life, learned_field, delta, quality_field, quality, ttl, learned_ttl, entry, kept, *record
-- include: bump
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local record = {}
for i = 11, #ARGV do record[#record + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(record))
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('LPUSH', KEYS[4], ARGV[9])
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[10]) - 1)
redis.call('EXPIRE', KEYS[4], ARGV[8])
bump(KEYS[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[1]), tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[2], ARGV[8])
redis.call('HINCRBYFLOAT', KEYS[3], ARGV[5] .. '|sum', ARGV[6])
redis.call('HINCRBY', KEYS[3], ARGV[5] .. '|n', 1)
return 1
