-- The provider does not have the submission's batch: its items wait in their model's pending
-- set again, marked `state` (pending), and the submission ends, in one step. 0, and nothing
-- written, when the submission is no longer this pass's.
-- KEYS: submission, items, submissions_open, pending, record...
-- ARGV: submission_id, owner, now, state, *request_ids
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then return 0 end
for i = 5, #ARGV do
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[i])
  redis.call('HSET', KEYS[i], 'economy', ARGV[4], 'economy_since', ARGV[3])
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
