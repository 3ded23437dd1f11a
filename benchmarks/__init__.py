"""Benchmarks: heavy measurements that write their numbers into BENCHMARKS.md (not timed tests)."""
