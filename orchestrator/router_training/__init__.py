"""Training and measuring the learned router offline (`orchestrator router train|eval`): the
routing data read in place, the seeded fit that writes the shipped artifact, and APGR."""
