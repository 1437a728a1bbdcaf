-- Adds one outcome's residual to a model's decayed sums in a prompt cluster.
-- KEYS: cluster
-- ARGV: model, residual, weight, now, half_life, ttl
local w, r, t = ARGV[1] .. '|w', ARGV[1] .. '|r', ARGV[1] .. '|t'
local now, half_life = tonumber(ARGV[4]), tonumber(ARGV[5])
local old = redis.call('HMGET', KEYS[1], w, r, t)
local weight, residuals = tonumber(old[1]) or 0, tonumber(old[2]) or 0
if old[3] then
  local keep = 0.5 ^ (math.max(0, now - tonumber(old[3])) / half_life)
  weight, residuals = weight * keep, residuals * keep
end
weight = weight + tonumber(ARGV[3])
residuals = residuals + tonumber(ARGV[3]) * tonumber(ARGV[2])
redis.call('HSET', KEYS[1], w, string.format('%.6f', weight), r, string.format('%.6f', residuals), t, ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return 1
