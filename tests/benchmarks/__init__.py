"""Benchmarks: run by `make bench`, they print figures measured against a baseline of the same run."""
