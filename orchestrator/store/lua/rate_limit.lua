-- Counts a request against a key's rate limit (rate_limit_hit's reply).
-- KEYS: log
-- ARGV: limit, window_ms, request
-- include: rate_limit_hit
return rate_limit_hit(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
