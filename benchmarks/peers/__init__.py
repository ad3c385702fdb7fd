"""runstream beside its peers: one harness, one workload, one process per tracker.

``python -m benchmarks.peers`` (or ``nox -s bench_peers``) builds one cached virtual
environment per tracker, runs each tracker in its own process on the same deterministic
workload, counts what a fresh process can read back, and prints one table (also written as
JSON and Markdown). Modules:

- ``_workload``: the steps, metric names and values every tracker logs
- ``_timing``: the timed loops (per call, and a simulated training step) and percentiles
- ``_trackers``: one adapter per tracker, and the registry of environments they need
- ``_child``: what runs inside a tracker's environment, one measurement per process
- ``_envs``: the cached virtual environments; ``_moto``: the shared moto server
- ``_scaling``: runstream alone, as the run and the metrics per step grow
- ``_report``: the machine, and the table as text, Markdown and JSON
- ``_harness``: the orchestration and the command line
"""
