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


def guess_media_type(path: str) -> str | None:
    """The official SDK's guess (``mimetypes`` on a ``file:`` URL), or ``None``."""
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
