-- Starts a batch item with its batch's counters. Returns run, done (ended already), missing
-- (expired), cancelled (ended here: its batch was cancelled before it started) or cancel (the
-- worker ends it, settling its budget).
-- KEYS: record, batch
-- ARGV: now, cancelled_result, may_cancel
-- include: batch_settle
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if is_terminal(status) then return 'done' end
local cancelled = redis.call('HEXISTS', KEYS[2], 'cancelled_at') == 1
if status == STATUS.queued then
  if cancelled then
    redis.call('HSET', KEYS[1], 'status', STATUS.cancelled, 'result', ARGV[2], 'finished_at', ARGV[1])
    redis.call('HINCRBY', KEYS[2], STATUS.cancelled, 1)
    batch_settle(KEYS[2], ARGV[1])
    return 'cancelled'
  end
  redis.call('HSET', KEYS[1], 'status', STATUS.running, 'started_at', ARGV[1])
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('HINCRBY', KEYS[2], STATUS.running, 1)
    redis.call('HSETNX', KEYS[2], 'started_at', ARGV[1])
  end
  return 'run'
end
if cancelled and ARGV[3] == '1' then return 'cancel' end
return 'run'
