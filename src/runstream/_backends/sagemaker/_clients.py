"""aioboto3 sessions and clients, and what an AWS error means for the sender.

Region, credentials and profile come from where every AWS tool reads them (``AWS_PROFILE``,
``AWS_REGION``/``AWS_DEFAULT_REGION``, ``~/.aws/config`` and ``credentials``, instance and
container roles); botocore itself honours ``AWS_ENDPOINT_URL`` and the per-service
``AWS_ENDPOINT_URL_<SERVICE>`` variables, so runstream passes no endpoint of its own.

botocore's own retries are off for the sagemaker APIs: the sender retries itself, so that
a throttled call slows the token bucket and only the failed items are sent again.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from ..._core._environment import ENVIRON_LOCK
from .._sink import Failure, Outcome

__all__ = ("Clients", "Failure", "Outcome", "classify", "open_clients", "session_for")

_USER_AGENT = "runstream"
_CALL_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra=_USER_AGENT,
)
# Multipart parts are not retried by aioboto3's transfer, so let botocore retry each one.
_S3_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=5,
    read_timeout=120,
    user_agent_extra=_USER_AGENT,
)

_AUTH_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidToken",
        "MissingAuthenticationToken",
        "AuthFailure",
        "AccessDenied",
        "AccessDeniedException",
    }
)
_THROTTLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "RequestThrottledException",
    }
)


def classify(exc: BaseException) -> Outcome:
    """Sort an exception from botocore/aiohttp into a :class:`Failure`."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        message = str(error.get("Message") or "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _THROTTLE_CODES or status == 429:
            return Outcome(Failure.THROTTLED, code or "429", message)
        if code in _AUTH_CODES:
            return Outcome(Failure.AUTH, code, message)
        if code == "ValidationException" and "already exists" in message:
            return Outcome(Failure.EXISTS, code, message)
        if status >= 500 or not status:
            return Outcome(Failure.TRANSIENT, code or str(status), message)
        return Outcome(Failure.REJECTED, code or str(status), message)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | ProfileNotFound):
        return Outcome(Failure.AUTH, type(exc).__name__, str(exc))
    if isinstance(exc, NoRegionError):
        return Outcome(Failure.AUTH, "NoRegionError", str(exc))
    if isinstance(exc, BotoCoreError | OSError | TimeoutError):
        return Outcome(Failure.TRANSIENT, type(exc).__name__, str(exc))
    # aiohttp's own errors (a dropped connection mid-response) and anything unforeseen:
    # assume the network, never the data, so nothing is dropped.
    return Outcome(Failure.TRANSIENT, type(exc).__name__, str(exc))


_sessions: dict[tuple[str | None, ...], aioboto3.Session] = {}
# botocore sessions are not thread-safe while they create clients, and creating one reads
# all of os.environ (proxies), which another thread's run may be changing as it enters or
# leaves: so creation holds the lock runstream changes the environment under. It takes
# milliseconds once the service models are loaded (sharing the session saves ~0.3 s).
_session_lock = ENVIRON_LOCK


def session_for(sagemaker_session: object | None = None) -> aioboto3.Session:
    """The process's aioboto3 session for the usual AWS settings.

    An official ``sagemaker.Session`` passed to ``Run`` contributes its region and profile.
    Sessions are shared per (settings), so service models load once per process.
    """
    boto = getattr(sagemaker_session, "boto_session", None)
    # botocore reads AWS_DEFAULT_REGION only; AWS_REGION (what the AWS CLI v2, the SDKs of
    # other languages and SageMaker containers set) comes first, as it does there.
    region = getattr(boto, "region_name", None) or os.environ.get("AWS_REGION") or None
    profile = getattr(boto, "profile_name", None)
    if profile == "default" and not os.environ.get("AWS_PROFILE"):
        profile = None
    key = (region, profile, *(os.environ.get(v) for v in _SESSION_VARIABLES))
    with _session_lock:
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = aioboto3.Session(region_name=region, profile_name=profile)
        return session


# A changed variable (a test, a refreshed key) must not get a stale cached session.
_SESSION_VARIABLES = (
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@dataclass(slots=True)
class Clients:
    """The three clients the sender needs, on one session, in one event loop."""

    session: aioboto3.Session
    sagemaker: Any
    metrics: Any
    s3: Any
    sts: Any

    @property
    def region(self) -> str:
        return str(self.sagemaker.meta.region_name)


@asynccontextmanager
async def open_clients(session: aioboto3.Session) -> AsyncIterator[Clients]:
    """Open the clients (no network I/O yet); they close with the block."""
    async with AsyncExitStack() as stack:

        async def client(name: str, config: Config = _CALL_CONFIG) -> Any:
            with _session_lock:
                context = session.client(name, config=config)
                return await stack.enter_async_context(context)

        yield Clients(
            session=session,
            sagemaker=await client("sagemaker"),
            metrics=await client("sagemaker-metrics"),
            s3=await client("s3", _S3_CONFIG),
            sts=await client("sts"),
        )
