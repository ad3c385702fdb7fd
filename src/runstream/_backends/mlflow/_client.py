"""MLflow's REST API over httpx, in the caller's anyio event loop.

One :class:`MLflowClient` per sender: a pooled ``httpx.AsyncClient`` (HTTP/1.1 keep-alive),
JSON bodies encoded with orjson, every request signed when the endpoint says so. A failed
call raises :class:`MLflowError` with MLflow's ``error_code``; :func:`classify` says what
that means for the sender (the same categories as the SageMaker backend's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import anyio
import httpx
import orjson

from .._sink import Failure, Outcome

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from ._endpoint import Endpoint

__all__ = ("API", "Failure", "MLflowClient", "MLflowError", "Outcome", "classify")

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class MLflowError(Exception):
    """An MLflow server answered with an error (``status``, MLflow's ``error_code``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def classify(exc: BaseException) -> Outcome:
    """A failed call, as the sender acts on it."""
    if isinstance(exc, MLflowError):
        if exc.status == 429 or exc.code == "REQUEST_LIMIT_EXCEEDED":
            return Outcome(Failure.THROTTLED, exc.code or "429", exc.message)
        if exc.status >= 500 or exc.code in ("TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR"):
            return Outcome(Failure.TRANSIENT, exc.code or str(exc.status), exc.message[:500])
        if exc.status in (401, 403) or exc.code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            return Outcome(Failure.AUTH, exc.code or str(exc.status), exc.message[:500])
        if exc.code == "RESOURCE_ALREADY_EXISTS":
            return Outcome(Failure.EXISTS, exc.code, exc.message[:500])
        return Outcome(Failure.REJECTED, exc.code or str(exc.status), exc.message[:500])
    if isinstance(exc, PermissionError):  # no credentials to sign with (an OSError too)
        return Outcome(Failure.AUTH, "NoCredentials", str(exc))
    if isinstance(exc, httpx.TransportError | TimeoutError | OSError):
        return Outcome(Failure.TRANSIENT, type(exc).__name__, str(exc)[:500])
    return Outcome(Failure.TRANSIENT, type(exc).__name__, str(exc)[:500])


class MLflowClient:
    """The REST calls the MLflow backend makes."""

    def __init__(self, endpoint: Endpoint, *, transport: httpx.AsyncBaseTransport | None = None):
        self.endpoint = endpoint
        self._http = httpx.AsyncClient(
            timeout=_TIMEOUT,
            transport=transport,
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> MLflowClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        url = self.endpoint.url + path
        if params:
            url += "?" + urlencode(params, quote_via=quote)
        data = content if content is not None else b"" if body is None else orjson.dumps(body)
        headers = dict(self.endpoint.headers)
        if data or method in ("POST", "PUT"):
            headers["Content-Type"] = content_type
        if self.endpoint.signer is not None:
            headers = self.endpoint.signer.sign(method, url, headers, data)
        response = await self._http.request(method, url, content=data, headers=headers)
        if response.status_code >= 400:
            code, message = _error(response)
            raise MLflowError(response.status_code, code, message)
        if not response.content:
            return {}
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return {}

    async def post(self, call: str, body: dict[str, Any]) -> Any:
        return await self.request("POST", f"{API}/{call}", body=body)

    async def get(self, call: str, **params: Any) -> Any:
        return await self.request("GET", f"{API}/{call}", params=params)

    # -- the calls ------------------------------------------------------------------------

    async def experiment_id(self, name: str) -> str:
        """Create-or-get an experiment by name (a race with another creator is a get)."""
        try:
            found = await self.get("experiments/get-by-name", experiment_name=name)
            return str(found["experiment"]["experiment_id"])
        except MLflowError as exc:
            if exc.code != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            created = await self.post("experiments/create", {"name": name})
            return str(created["experiment_id"])
        except MLflowError as exc:
            if exc.code != "RESOURCE_ALREADY_EXISTS":
                raise
        found = await self.get("experiments/get-by-name", experiment_name=name)
        return str(found["experiment"]["experiment_id"])

    async def find_run(self, experiment_id: str, run_name: str) -> dict[str, Any] | None:
        """The oldest run of that name in the experiment, or None."""
        found = await self.post(
            "runs/search",
            {
                "experiment_ids": [experiment_id],
                "filter": f"attributes.run_name = '{_quote(run_name)}'",
                "max_results": 1,
                "order_by": ["attributes.start_time ASC"],
            },
        )
        runs = found.get("runs") or []
        return runs[0] if runs else None

    async def log_batch(
        self,
        run_id: str,
        *,
        metrics: list[dict[str, Any]] = (),  # type: ignore[assignment]
        params: list[dict[str, str]] = (),  # type: ignore[assignment]
        tags: list[dict[str, str]] = (),  # type: ignore[assignment]
    ) -> None:
        body: dict[str, Any] = {"run_id": run_id}
        if metrics:
            body["metrics"] = metrics
        if params:
            body["params"] = params
        if tags:
            body["tags"] = tags
        await self.post("runs/log-batch", body)

    async def put_artifact(
        self, artifact_path: str, path: Path, *, sha256: str, media_type: str
    ) -> None:
        """Upload a file through the server's artifact proxy (``--serve-artifacts``),
        streamed from disk: a checkpoint of gigabytes is never held in memory. The store's
        copy is content-addressed, so its SHA-256 (the signed payload hash) is known without
        reading it twice."""
        url = f"{self.endpoint.url}{ARTIFACTS}/{quote(artifact_path)}"
        size = (await anyio.Path(path).stat()).st_size
        headers = {**self.endpoint.headers, "Content-Type": media_type}
        headers["Content-Length"] = str(size)
        if self.endpoint.signer is not None:
            headers = self.endpoint.signer.sign("PUT", url, headers, b"", streamed=(size, sha256))
        response = await self._http.put(url, content=_chunks(path), headers=headers)
        if response.status_code >= 400:
            code, message = _error(response)
            raise MLflowError(response.status_code, code, message)

    async def get_artifact(self, artifact_path: str) -> bytes:
        url = f"{self.endpoint.url}{ARTIFACTS}/{quote(artifact_path)}"
        headers = dict(self.endpoint.headers)
        if self.endpoint.signer is not None:
            headers = self.endpoint.signer.sign("GET", url, headers, b"")
        response = await self._http.get(url, headers=headers)
        if response.status_code >= 400:
            code, message = _error(response)
            raise MLflowError(response.status_code, code, message)
        return response.content


async def _chunks(path: Path, size: int = 1 << 20) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as file:
        while chunk := await file.read(size):
            yield chunk


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _error(response: httpx.Response) -> tuple[str, str]:
    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return str(response.status_code), response.text[:500]
    if not isinstance(payload, dict):
        return str(response.status_code), response.text[:500]
    return str(payload.get("error_code") or response.status_code), str(payload.get("message", ""))
