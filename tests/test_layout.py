"""The package's shape: every module says what it exports, and says it exactly.

The layers and the absence of import cycles are contracts of ``nox -s lint``
(import-linter, ``[tool.importlinter]`` in pyproject.toml); here, each module's
``__all__``, as anyio checks its own: what it lists exists, and every public function or
class a module defines is listed (so nothing is public by accident).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import runstream

# Framework integrations import their framework (an optional extra) at the top.
_OPTIONAL = {
    "runstream.integrations.keras": "keras",
    "runstream.integrations.lightning": "lightning",
    "runstream.integrations.transformers": "transformers",
}


def _module_names() -> list[str]:
    found = pkgutil.walk_packages(runstream.__path__, prefix="runstream.")
    return ["runstream", *sorted(info.name for info in found if info.name != "runstream.__main__")]


def _import(name: str) -> ModuleType:
    if name in _OPTIONAL:
        pytest.importorskip(_OPTIONAL[name])
    return importlib.import_module(name)


@pytest.mark.parametrize("name", _module_names())
def test_every_module_lists_what_it_exports(name: str) -> None:
    module = _import(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists what it does not have: {missing}"
    if name == "runstream":
        return  # the public API re-exports its names under runstream (test_public_api)
    defined_here = {
        n
        for n, value in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == name
    }
    unlisted = sorted(defined_here - set(exported))
    assert not unlisted, f"{name} defines public names its __all__ leaves out: {unlisted}"
