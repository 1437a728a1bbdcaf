-- Books the earliest slot under a model's rate limit within the horizon: {booked (0/1), ms
-- until the slot}.
-- KEYS: at, tok, meta
-- ARGV: window_ms, max_requests, max_tokens, tokens, booking, horizon_ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local max_req, max_tok, need = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
for _, member in ipairs(gone) do
  redis.call('ZREM', KEYS[2], member)
  redis.call('HDEL', KEYS[3], 'c:' .. member)
end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window) end
local at = now
local n = redis.call('ZCARD', KEYS[1])
if n > 0 then
  at = math.max(at, tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]))
  if max_req > 0 and n >= max_req then
    -- the max_req-th latest booking must have left the window
    at = math.max(at, tonumber(redis.call('ZRANGE', KEYS[1], n - max_req, n - max_req, 'WITHSCORES')[2]) + window)
  end
end
local cum = tonumber(redis.call('HGET', KEYS[3], 'cum') or '0')
if max_tok > 0 and n > 0 then
  -- the latest booking with fewer than cum + need - max_tok tokens before it must have left the window
  local last_out = redis.call('ZREVRANGEBYSCORE', KEYS[2], '(' .. (cum + need - max_tok), '-inf', 'LIMIT', 0, 1)
  if last_out[1] then
    at = math.max(at, tonumber(redis.call('ZSCORE', KEYS[1], last_out[1])) + window)
  end
end
local delay = at - now
if delay > tonumber(ARGV[6]) then return {0, delay} end
redis.call('ZADD', KEYS[1], at, ARGV[5])
redis.call('ZADD', KEYS[2], cum, ARGV[5])
redis.call('HSET', KEYS[3], 'cum', cum + need)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], delay + window + 1000) end
return {1, delay}
