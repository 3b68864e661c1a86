"""Benchmark scripts (a regular package: opacus installs a top-level `benchmarks` package
that would otherwise shadow this folder)."""
