-- Finds a key's user by the key's hash, stamps the key's last use and, with a rate limit,
-- counts the request in the same step: {user id, key id, the user's hash flat, the limit's reply}.
-- KEYS: lookup
-- ARGV: key_hash, now, key_prefix, user_prefix, *rate_limit
-- (rate_limit: the log prefix, limit, window in ms and request id; empty without a limit)
-- include: rate_limit_hit
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return false end
local space = string.find(entry, ' ', 1, true)
local user_id, key_id = string.sub(entry, 1, space - 1), string.sub(entry, space + 1)
redis.call('HSET', ARGV[3] .. key_id, 'last_used_at', ARGV[2])
local user = redis.call('HGETALL', ARGV[4] .. user_id)
if #user == 0 or not ARGV[5] then return {user_id, key_id, user} end
return {user_id, key_id, user, rate_limit_hit(ARGV[5] .. key_id, tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8])}
