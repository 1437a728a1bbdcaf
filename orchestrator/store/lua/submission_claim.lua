-- A pass takes over a submission another pass left: 1, or 0 when a third pass took it first
-- or it was settled meanwhile.
-- KEYS: submission
-- ARGV: owner_was, owner
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[2])
return 1
