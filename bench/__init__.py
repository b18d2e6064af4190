"""Benchmarks: ``python bench/throughput.py`` (see the README's Performance section)."""
