-- Counts a settled request for its user (month, day, hour), bumps the learned score of a
-- first-try answer, and says which budget thresholds and whether a spending anomaly are due.
-- Once per request (a `usage_counted` field in its record, which expires with it; a record
-- already gone is counted without one): a redelivered task counts what a killed worker did not.
-- KEYS: usage, day_spend, hourly_spend, totals, user, learned, threshold_50, threshold_80, threshold_100, anomaly, record
-- ARGV: complexity, model, cost_micro, input_tokens, output_tokens, hour, default_limit_micro, ttl, first_try, now, half_life, anomaly_factor, anomaly_min_micro, min_history_hours, window_hours, user_id, hourly_ttl, learned_ttl, anomaly_ttl
-- include: bump
if redis.call('EXISTS', KEYS[11]) == 1 and redis.call('HSETNX', KEYS[11], 'usage_counted', 1) == 0 then
  return false
end
local level, model, cost = ARGV[1], ARGV[2], tonumber(ARGV[3])
local base = level .. '|' .. model .. '|'
redis.call('HINCRBY', KEYS[1], base .. 'requests', 1)
redis.call('HINCRBY', KEYS[1], base .. 'input_tokens', ARGV[4])
redis.call('HINCRBY', KEYS[1], base .. 'output_tokens', ARGV[5])
redis.call('HINCRBY', KEYS[1], base .. 'cost_micro', cost)
redis.call('EXPIRE', KEYS[1], ARGV[8])
local who = ARGV[16] .. '|' .. model .. '|'
redis.call('HINCRBY', KEYS[2], who .. 'requests', 1)
redis.call('HINCRBY', KEYS[2], who .. 'cost_micro', cost)
redis.call('EXPIRE', KEYS[2], ARGV[8])
if ARGV[9] == '1' then
  bump(KEYS[6], level .. '|' .. model, 1, tonumber(ARGV[10]), tonumber(ARGV[11]))
  redis.call('EXPIRE', KEYS[6], ARGV[18])
end
-- hourly spend, and the anomaly check
local hour = tonumber(ARGV[6])
local window = tonumber(ARGV[15])
local this_hour = redis.call('HINCRBY', KEYS[3], 'h' .. hour, cost)
local first = tonumber(redis.call('HGET', KEYS[3], 'first') or '-1')
if first < 0 then first = hour; redis.call('HSET', KEYS[3], 'first', hour) end
redis.call('EXPIRE', KEYS[3], ARGV[17])
local anomaly, average = 0, 0
if this_hour >= tonumber(ARGV[13]) and hour - first >= tonumber(ARGV[14]) then
  local total = 0
  local flat = redis.call('HGETALL', KEYS[3])
  for i = 1, #flat, 2 do
    local name = flat[i]
    if string.sub(name, 1, 1) == 'h' then
      local h = tonumber(string.sub(name, 2))
      if h < hour - window then redis.call('HDEL', KEYS[3], name)
      elseif h < hour then total = total + tonumber(flat[i + 1]) end
    end
  end
  average = total / math.min(window, hour - first)
  if this_hour > tonumber(ARGV[12]) * average then
    if redis.call('EXISTS', KEYS[10]) == 1 then
      redis.call('EXPIRE', KEYS[10], ARGV[19])
    else
      anomaly = 1
    end
  end
end
-- budget thresholds
local spent = tonumber(redis.call('HGET', KEYS[4], 'spent_micro') or '0')
local budget = redis.call('HGET', KEYS[5], 'monthly_budget')
local limit = budget and math.floor(tonumber(budget) * 1000000 + 0.5) or tonumber(ARGV[7])
local crossed = {}
local pcts = {50, 80, 100}
for i = 1, 3 do
  if limit > 0 and spent * 100 >= pcts[i] * limit and redis.call('EXISTS', KEYS[6 + i]) == 0 then
    crossed[#crossed + 1] = pcts[i]
  end
end
return {spent, limit, this_hour, tostring(average), anomaly, crossed, redis.call('HGET', KEYS[5], 'name') or ''}
