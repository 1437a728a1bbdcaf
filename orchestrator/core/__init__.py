"""The pure core: types, task analysis, routing, strategies, retry policy and catalog. No I/O."""
