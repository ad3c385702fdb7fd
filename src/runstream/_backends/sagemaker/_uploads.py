"""``log_file`` artifacts to S3, with the official key layout and default bucket rules.

Key: ``<prefix>/<trial component>/<name>``, prefix ``trial-component-artifacts`` unless
``artifact_prefix`` says otherwise; bucket: ``artifact_bucket``, else the default
``sagemaker-<region>-<account>``, created if missing and checked to belong to this account
(``ExpectedBucketOwner``, against bucket squatting). The official SDK names the object
after the file's basename; runstream uses the artifact's name, which is that basename
unless ``log_file(name=...)`` gave another (so two files of one basename do not overwrite
each other).

Files upload from the store's content-addressed copy (the user may have changed or
deleted the original since), streamed, multipart above 8 MiB, with the SHA-256 in the
object's metadata: an object already holding the same content is not uploaded again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from ._ratelimit import bucket

if TYPE_CHECKING:
    from pathlib import Path

    from ._clients import Clients

__all__ = (
    "DEFAULT_PREFIX",
    "S3Target",
    "default_bucket",
    "object_key",
    "put_document",
    "upload",
)

DEFAULT_PREFIX = "trial-component-artifacts"
_TRANSFER = TransferConfig(
    multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=4
)


@dataclass(frozen=True, slots=True)
class S3Target:
    bucket: str
    prefix: str
    owner: str | None  # the account, when the bucket is the generated default one

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def object_key(prefix: str, trial_component: str, name: str) -> str:
    return f"{prefix}/{trial_component}/{name}" if prefix else f"{trial_component}/{name}"


async def default_bucket(clients: Clients, account: str) -> str:
    """``sagemaker-<region>-<account>``, created if missing, refused if someone else's."""
    region = clients.region
    name = f"sagemaker-{region}-{account}"
    s3 = clients.s3
    await bucket("control").take()
    try:
        await s3.head_bucket(Bucket=name, ExpectedBucketOwner=account)
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
            raise  # 403: the name is taken by another account; never write there
        config = {} if region == "us-east-1" else {"LocationConstraint": region}
        try:
            if config:
                await s3.create_bucket(Bucket=name, CreateBucketConfiguration=config)
            else:
                await s3.create_bucket(Bucket=name)
        except ClientError as created:
            if created.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise
    return name


async def upload(
    clients: Clients,
    target: S3Target,
    key: str,
    path: Path,
    sha256: str,
    media_type: str | None,
    extra_args: dict[str, Any] | None = None,
) -> tuple[str | None, bool]:
    """Upload ``path`` unless the object already holds this content: (ETag, transferred).

    ``extra_args`` (``log_file``'s, boto3's ExtraArgs) go with the upload; their
    ``Metadata`` gains the ``sha256`` key, and their ``ContentType`` wins over the guess.
    """
    owner = {"ExpectedBucketOwner": target.owner} if target.owner else {}
    existing = await _head(clients, target.bucket, key, owner)
    if existing is not None and existing.get("Metadata", {}).get("sha256") == sha256:
        return existing.get("ETag"), False
    given = dict(extra_args or {})
    extra: dict[str, Any] = {**owner, **given}
    extra["Metadata"] = {**dict(given.get("Metadata") or {}), "sha256": sha256}
    if media_type and "ContentType" not in given:
        extra["ContentType"] = media_type
    await bucket("s3").take()
    await clients.s3.upload_file(str(path), target.bucket, key, ExtraArgs=extra, Config=_TRANSFER)
    uploaded = await _head(clients, target.bucket, key, owner)
    return (None if uploaded is None else uploaded.get("ETag")), True


async def put_document(clients: Clients, target: S3Target, key: str, body: bytes) -> str | None:
    """PutObject a small document (a graph's JSON, as the official SDK does); its ETag."""
    owner = {"ExpectedBucketOwner": target.owner} if target.owner else {}
    await bucket("s3").take()
    response = await clients.s3.put_object(Bucket=target.bucket, Key=key, Body=body, **owner)
    etag = response.get("ETag")
    return None if etag is None else str(etag)


async def _head(
    clients: Clients, bucket_name: str, key: str, owner: dict[str, str]
) -> dict[str, Any] | None:
    await bucket("s3").take()
    try:
        found: dict[str, Any] = await clients.s3.head_object(Bucket=bucket_name, Key=key, **owner)
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return None
        raise
    return found
