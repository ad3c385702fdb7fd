"""The compatibility suite: the official SDK's public-behaviour tests, ported.

Local tests read back through the store; SageMaker tests run ``backend="sagemaker"``
against moto's server over HTTP (the rig of ``tests/sagemaker_sync``) with
:class:`.service_gaps.ServiceGaps` answering where moto deviates from the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("aioboto3", reason="the aws extra is not installed")
pytest.importorskip("moto", reason="moto is not installed")
pytest.importorskip("flask", reason="moto's server needs flask")

from sagemaker_sync.conftest import aws, moto_rig  # noqa: F401 (the rig's fixtures)

from .service_gaps import ServiceGaps

if TYPE_CHECKING:
    from sagemaker_sync.moto_rig import Rig


@pytest.fixture
def gaps(aws: Rig) -> ServiceGaps:  # noqa: F811
    service = ServiceGaps(aws.injector.app)
    aws.injector.handlers.append(service)
    return service


@pytest.fixture
def session(aws: Rig, gaps: ServiceGaps, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    """An official ``sagemaker.Session`` on moto (the official SDK is a test dependency)."""
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    sagemaker = pytest.importorskip("sagemaker", reason="the official SDK is not installed")
    import boto3

    return sagemaker.Session(boto_session=boto3.Session(region_name="us-east-1"))
