-- Ends every item of a batch still queued as cancelled; how many.
-- KEYS: batch, record...
-- ARGV: now, cancelled_result
-- include: batch_settle
local n = 0
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'status') == STATUS.queued then
    redis.call('HSET', KEYS[i], 'status', STATUS.cancelled, 'result', ARGV[2], 'finished_at', ARGV[1])
    n = n + 1
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[1], STATUS.cancelled, n)
  batch_settle(KEYS[1], ARGV[1])
end
return n
