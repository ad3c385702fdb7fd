"""Benchmarks: scripts that print their numbers and the machine (not part of the package)."""
