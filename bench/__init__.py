"""Benchmarks: `python -m bench` (or `make bench`) prints one table per section and writes bench-results/bench.json.

Each section is a module here with `run() -> Section`. Speed is compared as ratios within one run, never asserted in tests.
"""
