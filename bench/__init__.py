"""Benchmark scripts: each prints figures next to a reference measured in the same run.

Run one with ``.venv/bin/python -m bench.<module>`` from the repository root, or all of
them with ``make bench`` (``bench.run_all``), which also updates BENCHMARKS.md.
"""
