"""The run layer: ``Run`` and its lifecycle, ``load_run``, ``Experiment``, call-time
validation, graphs, analytics, and finding the run of another rank or process."""

__all__ = ()
