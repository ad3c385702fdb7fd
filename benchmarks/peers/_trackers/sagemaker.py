"""The official ``sagemaker.experiments`` (SDK v2), every call sent to the moto server.

``log_metric`` appends to the SDK's sink, and every 10th call sends one BatchPutMetrics
on the caller's thread: the cost measured here is the SDK's own behaviour against a
loopback server (real AWS adds the network round trip to that call).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import Adapter, module

__all__ = ("SageMaker",)


class SageMaker(Adapter):
    style = "kw"
    distributions = ("sagemaker", "boto3", "botocore", "numpy")

    def _session(self) -> Any:
        boto3 = module("boto3")
        session = module("sagemaker.session")
        boto = boto3.Session(region_name="us-east-1")
        endpoint = self.context.endpoint
        return session.Session(
            boto_session=boto,
            sagemaker_client=boto.client("sagemaker", endpoint_url=endpoint),
            sagemaker_metrics_client=boto.client("sagemaker-metrics", endpoint_url=endpoint),
            default_bucket="runstream-bench",
        )

    def open(self) -> Callable[..., object]:
        experiments = module("sagemaker.experiments")
        self.run = experiments.Run(
            experiment_name=self.context.experiment,
            run_name=self.context.run,
            sagemaker_session=self._session(),
        )
        self.run.__enter__()
        return self.run.log_metric  # type: ignore[no-any-return]

    def close(self) -> None:
        self.run.__exit__(None, None, None)

    def read_back(self) -> dict[str, int]:
        """The trial component's metric summaries: ``Count`` per metric, as the SDK loads it."""
        # Not load_run(): it creates first and treats "already exists" as load, and moto
        # overwrites on create, dropping the metrics (shared/research/aws-test-rig.md).
        run_class = module("sagemaker.experiments.run").Run
        trial_components = module("sagemaker.experiments.trial_component")
        component = trial_components._TrialComponent.load(
            trial_component_name=run_class._generate_trial_component_name(
                self.context.run, self.context.experiment
            ),
            sagemaker_session=self._session(),
        )
        names = set(self.context.names)
        count = sum(int(m.count) for m in component.metrics or [] if m.metric_name in names)
        return {"sagemaker": count}

    def notes(self) -> list[str]:
        return ["every 10th log_metric sends BatchPutMetrics to moto on the caller's thread"]
