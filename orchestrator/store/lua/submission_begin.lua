-- Records a submission before its provider is called: its items leave their model's pending
-- set for the submission's list, marked `state` (submitting), in one step.
-- KEYS: pending, submission, items, submissions_open, record...
-- ARGV: submission_id, owner, provider, model, now, state, *request_ids
redis.call('HSET', KEYS[2], 'provider', ARGV[3], 'model', ARGV[4], 'owner', ARGV[2], 'at', ARGV[5])
for i = 7, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('RPUSH', KEYS[3], ARGV[i])
  redis.call('HSET', KEYS[i - 2], 'economy', ARGV[6], 'economy_since', ARGV[5])
end
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
