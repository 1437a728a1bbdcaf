"""Everything kept in Redis: one module per concern, each the only writer of its keys."""
