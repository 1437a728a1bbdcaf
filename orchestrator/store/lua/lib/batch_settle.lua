-- A batch's counters after one or more of its items ended: finished when all have.
local function batch_settle(batch, now)
  local c = redis.call('HMGET', batch, 'total', STATUS.completed, STATUS.failed, STATUS.cancelled)
  local done = (tonumber(c[2]) or 0) + (tonumber(c[3]) or 0) + (tonumber(c[4]) or 0)
  if done >= (tonumber(c[1]) or 0) then redis.call('HSETNX', batch, 'finished_at', now) end
end
