-- The provider has the submission's batch: the submission becomes that provider batch's record
-- (its items in order, open until collected), its items `state` (submitted), in one step. 0,
-- and nothing written, when the submission is no longer this pass's (another took it over).
-- KEYS: submission, items, submissions_open, upstream, upstream_items, upstreams_open, record..., batch_upstreams...
-- ARGV: submission_id, owner, upstream_id, now, ttl, state, records
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then return 0 end
local provider, model = unpack(redis.call('HMGET', KEYS[1], 'provider', 'model'))
redis.call('HSET', KEYS[4], 'provider', provider, 'model', model, 'total', redis.call('LLEN', KEYS[2]),
           'status', 'submitted', 'submitted_at', ARGV[4])
redis.call('RENAME', KEYS[2], KEYS[5])
redis.call('EXPIRE', KEYS[4], ARGV[5])
redis.call('EXPIRE', KEYS[5], ARGV[5])
redis.call('ZADD', KEYS[6], ARGV[4], ARGV[3])
local last = 6 + tonumber(ARGV[7])
for i = 7, last do
  redis.call('HSET', KEYS[i], 'economy', ARGV[6], 'economy_upstream', ARGV[3], 'economy_since', ARGV[4])
end
for i = last + 1, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[3])
  redis.call('EXPIRE', KEYS[i], ARGV[5])
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
