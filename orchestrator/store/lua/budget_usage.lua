-- A user's month: {spent_micro, reserved_micro}.
-- KEYS: totals, held, until
-- ARGV: now
-- include: live_budget
return {spent, reserved}
