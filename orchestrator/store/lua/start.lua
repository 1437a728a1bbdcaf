-- Marks a request running unless it has ended or its record is gone; its status before.
-- KEYS: record
-- ARGV: now
local status = redis.call('HGET', KEYS[1], 'status')
if status and not is_terminal(status) then
  redis.call('HSET', KEYS[1], 'status', STATUS.running, 'started_at', ARGV[1])
end
return status
