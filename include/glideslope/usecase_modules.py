"""Load the Python modules a use case ships in its folder (feed, transform), by file path.

Use cases are folders, not packages on ``sys.path``: adding one never needs a library change.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from glideslope.config import SpecError, UseCase


def load_module(uc: UseCase, module: str) -> ModuleType:
    path = uc.folder / f"{module.replace('.', '/')}.py"
    qualname = f"glideslope_usecases.{uc.name}.{module}"
    if qualname in sys.modules:
        return sys.modules[qualname]
    if not path.exists():
        raise SpecError(f"{uc.folder / 'usecase.yaml'}: module {module!r} not found at {path}")
    spec = importlib.util.spec_from_file_location(qualname, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[qualname] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[qualname]
        raise
    return mod
