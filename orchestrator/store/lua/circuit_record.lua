-- Counts one call's outcome for a model's and its provider's circuits; lists the circuits
-- it opened from closed (1 the model's, 2 the provider's). An opened circuit lets its first
-- probe through after first_probe_seconds; each failed probe doubles the wait, up to
-- open_seconds; a success closes it and starts the doubling over.
-- KEYS: probe, circuit...
-- ARGV: now, success, force_open_seconds, window, min_calls, failure_rate, open_seconds, first_probe_seconds
local now = tonumber(ARGV[1])
local success = ARGV[2] == '1'
local force = tonumber(ARGV[3])
local window, min_calls = tonumber(ARGV[4]), tonumber(ARGV[5])
local rate, open_seconds = tonumber(ARGV[6]), tonumber(ARGV[7])
local first_probe = math.min(tonumber(ARGV[8]), open_seconds)
redis.call('DEL', KEYS[1])
local opened = {}
for i = 2, #KEYS do
  local key = KEYS[i]
  local state = redis.call('HGET', key, 'state') or 'closed'
  if force > 0 then
    if state == 'closed' then opened[#opened + 1] = i - 1 end
    redis.call('HSET', key, 'state', 'open', 'opened_at', now, 'until', now + force, 'calls', 0, 'failures', 0)
  elseif state ~= 'closed' then
    if success then
      redis.call('HSET', key, 'state', 'closed', 'calls', 0, 'failures', 0, 'window_start', now, 'reopens', 0)
    elseif state == 'half_open' then
      local reopens = redis.call('HINCRBY', key, 'reopens', 1)
      local wait = math.min(open_seconds, first_probe * 2 ^ reopens)
      redis.call('HSET', key, 'state', 'open', 'opened_at', now, 'until', now + wait)
    end
  else
    local start = tonumber(redis.call('HGET', key, 'window_start') or '0')
    if now - start > window then
      redis.call('HSET', key, 'window_start', now, 'calls', 0, 'failures', 0)
    end
    local calls = redis.call('HINCRBY', key, 'calls', 1)
    local failures = tonumber(redis.call('HGET', key, 'failures') or '0')
    if not success then failures = redis.call('HINCRBY', key, 'failures', 1) end
    if calls >= min_calls and failures / calls >= rate then
      redis.call('HSET', key, 'state', 'open', 'opened_at', now, 'until', now + first_probe, 'reopens', 0)
      opened[#opened + 1] = i - 1
    end
  end
  redis.call('EXPIRE', key, 86400)
end
return opened
