-- rate_limit_hit(log, limit, window_ms, request): counts a request in a key's sliding window;
-- returns {admitted (0/1), requests in the window, ms until the oldest leaves it}.
local function rate_limit_hit(log, limit, window, request)
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
  local count = redis.call('ZCARD', log)
  local admitted = 0
  if count < limit then
    redis.call('ZADD', log, now, now .. ':' .. request)
    redis.call('PEXPIRE', log, window)
    count = count + 1
    admitted = 1
  end
  local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  local reset = window
  if oldest[2] then reset = tonumber(oldest[2]) + window - now end
  return {admitted, count, reset}
end
