"""Performance benchmarks of the harness, measured as ratios within one run (see benchmarks/README.md)."""
