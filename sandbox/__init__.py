"""The sandbox upstream: a local HTTP server that plays every provider without keys."""
