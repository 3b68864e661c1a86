"""Benchmarks (a regular package: a site-packages `benchmarks` must not shadow it)."""
