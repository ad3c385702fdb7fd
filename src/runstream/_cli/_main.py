"""The ``runstream`` command line: browse a store from a terminal or a script.

Every command takes ``--store`` (default: ``$RUNSTREAM_STORE``, else ``./.runstream``) and
``--json`` for machine-readable output with the field names of the public records;
without ``--json`` it prints aligned tables for people. The commands live in one module
per concern, each listing them in ``COMMANDS``; this module only puts them together.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from .._core._exceptions import RunstreamError
from .._core._json import dumps
from .._core._version import VERSION
from .._store import LocalStore
from . import _analysis, _browse, _sync

if TYPE_CHECKING:
    from ._common import Command

__all__ = ("build_parser", "main")

COMMANDS: dict[str, Command] = {
    command.name: command for command in (*_browse.COMMANDS, *_analysis.COMMANDS, *_sync.COMMANDS)
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runstream", description="Browse runstream experiments and runs."
    )
    parser.add_argument("--version", action="version", version=f"runstream {VERSION}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store", help="store directory (default: $RUNSTREAM_STORE, else ./.runstream)"
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_arguments(
            sub.add_parser(
                command.name, help=command.help, parents=[common], description=command.help
            )
        )
    return parser


# What the aws extra installs: a command that needs it says how to get it.
_AWS_MODULES = frozenset({"aioboto3", "aiobotocore", "botocore", "boto3", "aiohttp"})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = COMMANDS[args.command]
    try:
        try:
            if getattr(args, "backend", "local") != "local":
                # Reads SageMaker through the store's methods: no local store is opened.
                result = command.handle(args, cast("LocalStore", None))
            else:
                with LocalStore(args.store, read_only=not command.writes) as store:
                    result = command.handle(args, store)
        except RunstreamError as exc:
            print(f"runstream {args.command}: {exc}", file=sys.stderr)
            return 1
        except ModuleNotFoundError as exc:
            if (exc.name or "").partition(".")[0] not in _AWS_MODULES:
                raise
            print(
                f"runstream {args.command}: this needs the AWS SDK ({exc.name} is not "
                "installed): pip install 'runstream[aws]'",
                file=sys.stderr,
            )
            return 1
        if args.json:
            sys.stdout.buffer.write(dumps(result) + b"\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``runstream runs x | head``): stop quietly, as a shell tool
        # killed by SIGPIPE does. Python would report the failed flush at exit otherwise.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return 0
