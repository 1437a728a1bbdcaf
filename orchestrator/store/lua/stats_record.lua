-- Records one attempt: the moving averages, the hour's and the lifetime counters.
-- KEYS: averages, hour, totals
-- ARGV: alpha, success, latency, ttft, now, error, input_tokens, output_tokens, cost_micro, fallback, latency_bucket, retention, ttft_bucket
local alpha, ok, latency = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function ewma(field, value)
  local old = redis.call('HGET', KEYS[1], field)
  if old then value = alpha * value + (1 - alpha) * tonumber(old) end
  redis.call('HSET', KEYS[1], field, tostring(value))
end
ewma('success', ok)
if ok == 1 then ewma('latency', latency) end
if ARGV[4] ~= '' then ewma('ttft', tonumber(ARGV[4])) end
redis.call('HINCRBY', KEYS[1], 'samples', 1)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[5])
if ok == 0 then redis.call('HSET', KEYS[1], 'last_error', ARGV[6], 'last_error_at', ARGV[5]) end
for k = 2, #KEYS do
  local key = KEYS[k]
  redis.call('HINCRBY', key, 'requests', 1)
  if ok == 1 then
    redis.call('HINCRBY', key, 'ok', 1)
    redis.call('HINCRBYFLOAT', key, 'latency_sum', latency)
    redis.call('HINCRBY', key, ARGV[11], 1)
    if ARGV[4] ~= '' then
      redis.call('HINCRBYFLOAT', key, 'ttft_sum', ARGV[4])
      redis.call('HINCRBY', key, 'ttft_count', 1)
      if ARGV[13] then redis.call('HINCRBY', key, ARGV[13], 1) end
    end
  else
    redis.call('HINCRBY', key, 'err:' .. ARGV[6], 1)
  end
  redis.call('HINCRBY', key, 'input_tokens', ARGV[7])
  redis.call('HINCRBY', key, 'output_tokens', ARGV[8])
  redis.call('HINCRBY', key, 'cost_micro', ARGV[9])
  redis.call('HINCRBY', key, 'fallbacks', ARGV[10])
end
redis.call('EXPIRE', KEYS[2], ARGV[12])
return 1
