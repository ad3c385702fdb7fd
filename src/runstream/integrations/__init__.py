"""Training-framework integrations, one module each, each behind an optional extra.

- :mod:`runstream.integrations.keras`: a Keras 3 callback (``pip install runstream[keras]``)
- :mod:`runstream.integrations.lightning`: a PyTorch Lightning logger
  (``pip install runstream[lightning]``)
- :mod:`runstream.integrations.transformers`: a Hugging Face ``TrainerCallback``
  (``pip install runstream[transformers]``)

Each logs hyperparameters once (from the first worker only), and metrics per step and per
epoch with their step. With several workers (torchrun, Lightning DDP, SageMaker hosts) every
process logs into the same run under its own worker name, so ``Run.series(name, worker=...)``
tells them apart and ``Run.series(name)`` merges them.
"""

__all__ = ()
