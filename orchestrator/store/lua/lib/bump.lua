-- bump(learned, field, delta, now, half_life): the decayed score in a learned hash, moved by delta.
local function bump(learned, f, delta, now, half_life)
  local old = redis.call('HGET', learned, f)
  local score = 0
  if old then
    local colon = string.find(old, ':', 1, true)
    local value, at = tonumber(string.sub(old, 1, colon - 1)), tonumber(string.sub(old, colon + 1))
    score = value * (0.5 ^ (math.max(0, now - at) / half_life))
  end
  score = score + delta
  redis.call('HSET', learned, f, string.format('%.6f', score) .. ':' .. string.format('%.3f', now))
end
