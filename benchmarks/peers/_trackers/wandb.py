"""Weights & Biases offline: ``run.log(dict, step=)``; the wandb-core helper process counts.

wandb ships no reader for an offline run's ``.wandb`` file (``wandb sync`` needs a server),
so :func:`records` reads its LevelDB-log framing and wandb's own protobuf decodes each record.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from .base import Adapter, Unavailable, module

__all__ = ("Wandb", "records")

_BLOCK = 32768
_HEADER = struct.Struct("<IHB")  # crc32c (not checked), length, type
_FILE_HEADER = struct.Struct("<4sHB")  # b":W&B", magic, version
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def records(data: bytes) -> Iterator[bytes]:
    """The records of a ``.wandb`` file (LevelDB log: 32 KiB blocks, fragments joined)."""
    ident, _, _ = _FILE_HEADER.unpack_from(data)
    if ident != b":W&B":
        raise ValueError(f"not a .wandb file (starts with {ident!r})")
    index, pending = _FILE_HEADER.size, b""
    while index + _HEADER.size <= len(data):
        left = _BLOCK - index % _BLOCK
        if left < _HEADER.size:  # the block's tail is padding
            index += left
            continue
        _, length, kind = _HEADER.unpack_from(data, index)
        start = index + _HEADER.size
        chunk = data[start : start + length]
        index = start + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""
        else:  # zeroed space after the last record
            break


class Wandb(Adapter):
    style = "dict"
    distributions = ("wandb", "numpy")

    def open(self) -> Callable[..., object]:
        wandb = module("wandb")
        settings = wandb.Settings(
            mode="offline",
            console="off",
            x_disable_stats=True,
            x_disable_machine_info=True,
            disable_git=True,
            save_code=False,
            x_save_requirements=False,
            silent=True,
        )
        self.run = wandb.init(
            project=self.context.experiment,
            name=self.context.run,
            dir=str(self.context.workdir),
            settings=settings,
        )
        return self.run.log  # type: ignore[no-any-return]

    def close(self) -> None:
        self.run.finish()

    def read_back(self) -> dict[str, int]:
        files = sorted(Path(self.context.workdir).glob("wandb/offline-run-*/run-*.wandb"))
        if len(files) != 1:
            raise Unavailable(f"expected one offline .wandb file, found {len(files)}")
        protobuf = module("wandb.proto.wandb_internal_pb2")
        names = set(self.context.names)
        count = 0
        for data in records(files[0].read_bytes()):
            record = protobuf.Record()
            record.ParseFromString(data)
            if record.WhichOneof("record_type") == "history":
                count += sum(1 for item in record.history.item if _key(item) in names)
        return {".wandb file": count}

    def notes(self) -> list[str]:
        return [
            "offline; system stats, console capture, git and code capture off; read back by "
            "decoding the .wandb file with wandb's protobuf (no reader ships)"
        ]


def _key(item: object) -> str:
    key: str = getattr(item, "key", "")
    return key or "/".join(getattr(item, "nested_key", ()))
