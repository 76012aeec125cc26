"""The one pattern behind the kinds, runtimes and techniques registries: every module of a package, by its ID."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Iterable

from .errors import MicrobudgetError


def modules_by_id(package: str, path: Iterable[str]) -> dict[str, ModuleType]:
    """ID -> module for every module of the package (modules named _like_this are shared code, not entries)."""
    modules = (importlib.import_module(f"{package}.{info.name}") for info in pkgutil.iter_modules(path)
               if not info.name.startswith("_"))
    return {module.ID: module for module in modules}


def entry(found: dict[str, ModuleType], key: str, what: str) -> ModuleType:
    """The module registered as `key`, or one clear error that lists the ids there are."""
    if key not in found:
        raise MicrobudgetError(f"Unknown {what} '{key}'.", f"Use one of: {', '.join(sorted(found))}.")
    return found[key]
