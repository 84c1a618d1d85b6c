"""Benchmark scenarios behind ``fedgossip bench``; each returns plain data, the CLI saves and draws it."""
