-- Ends a request once: its status and result, its terminal event (not for a batch item), its
-- conversation's new messages, its budget settled, its batch's counters. 0 when it had ended.
-- KEYS: record, events, [conversation when messages > 0], [totals, held, until when charge is 1], [batch when item is 1]
-- ARGV: status, event, result, ttl, now, maxlen, messages, charge, request_id, cost_micro, budget_ttl, item, stored, *turn
-- (stored: what the record keeps when it is not the result itself, as an embedding's result less its vectors; '' otherwise)
-- include: batch_settle
local status = redis.call('HGET', KEYS[1], 'status')
if is_terminal(status) then return 0 end
local item = ARGV[12] == '1'
local stored = ARGV[13] ~= '' and ARGV[13] or ARGV[3]
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'result', stored, 'finished_at', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if not item then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', ARGV[2], 'data', ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
local next_key = 3
local messages = tonumber(ARGV[7])
if messages > 0 then
  for i = 14, 13 + messages do redis.call('RPUSH', KEYS[3], ARGV[i]) end
  redis.call('EXPIRE', KEYS[3], ARGV[4])
  next_key = 4
end
if ARGV[8] == '1' then
  local totals, held, until_ = KEYS[next_key], KEYS[next_key + 1], KEYS[next_key + 2]
  redis.call('HDEL', held, ARGV[9])
  redis.call('ZREM', until_, ARGV[9])
  redis.call('HINCRBY', totals, 'spent_micro', ARGV[10])
  redis.call('EXPIRE', totals, ARGV[11])
end
local batch = KEYS[#KEYS]
if item and redis.call('EXISTS', batch) == 1 then
  if status == STATUS.running then redis.call('HINCRBY', batch, STATUS.running, -1) end
  redis.call('HINCRBY', batch, ARGV[1], 1)
  if ARGV[8] == '1' then
    redis.call('HINCRBY', batch, 'cost_micro', ARGV[10])
    redis.call('HSET', KEYS[1], 'cost_micro', ARGV[10])  -- what was billed, to the micro-dollar
  end
  batch_settle(batch, ARGV[5])
  redis.call('EXPIRE', batch, ARGV[4])
end
return 1
