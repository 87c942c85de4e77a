"""Benchmarks; run each module with `python -m bench.<name>`. Not part of the test suite."""
