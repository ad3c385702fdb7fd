"""Content-addressed file storage for ``log_file``: stream, hash, rename. Blocking; the
flusher runs it in a worker thread so the training thread never copies a byte."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
from pathlib import Path
from urllib.parse import urljoin
from urllib.request import pathname2url

from .._core._records import Artifact

__all__ = ("guess_media_type", "store_file")

_CHUNK = 1 << 20


# Files a training writes that the system's MIME tables get wrong or miss: ``.pt`` is a
# SNES dev "page table" there, ``.h5`` and ``.ckpt`` are unknown.
_ML_MEDIA_TYPES = {
    ".pt": "application/octet-stream",
    ".pth": "application/octet-stream",
    ".ckpt": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".safetensors": "application/octet-stream",
    ".onnx": "application/octet-stream",
    ".pkl": "application/octet-stream",
    ".pickle": "application/octet-stream",
    ".joblib": "application/octet-stream",
    ".npy": "application/octet-stream",
    ".npz": "application/zip",
    ".h5": "application/x-hdf5",
    ".hdf5": "application/x-hdf5",
    ".keras": "application/zip",
    ".parquet": "application/vnd.apache.parquet",
    ".jsonl": "application/jsonl",
    ".ndjson": "application/jsonl",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".tfrecord": "application/octet-stream",
}


def guess_media_type(path: str) -> str | None:
    """The media type of a file: model and data formats from runstream's own table,
    others as the official SDK guesses them (``mimetypes`` on a ``file:`` URL), or ``None``."""
    known = _ML_MEDIA_TYPES.get(os.path.splitext(path)[1].lower())
    if known is not None:
        return known
    return mimetypes.guess_type(urljoin("file:", pathname2url(path)), strict=False)[0]


def store_file(source: str, artifact_dir: Path, media_type: str | None) -> Artifact:
    """Copy ``source`` into ``artifact_dir/sha256/<h[:2]>/<h>`` while hashing it.

    The copy lands under a temporary name and is renamed into place, so a reader never sees
    a partial file, and a file already stored (same content) is not written twice.
    """
    digest = hashlib.sha256()
    tmp_dir = artifact_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir)
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
        sha = digest.hexdigest()
        relative = Path("artifacts", "sha256", sha[:2], sha)
        target = artifact_dir.parent / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            os.unlink(tmp_name)
        else:
            os.replace(tmp_name, target)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return Artifact(value=relative.as_posix(), media_type=media_type, sha256=sha, size=size)
