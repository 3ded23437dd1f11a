"""Benchmarks: heavy measurements that write their numbers into docs/benchmarks.md (not timed tests)."""
