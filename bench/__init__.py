"""Benchmarks: ``scripts/bench [name ...]`` runs ``bench/bench_<name>.py`` and prints tables."""
