"""Techniques: one module each, holding ID, DESCRIPTION, a frozen `Config` and `apply()`.

Adding a technique is adding a module here; the registry finds it by itself.
`apply(bundle, config, dataset, progress) -> ModelBundle` never modifies its input bundle.
A technique that changes module structure also has `restructure(model, meta) -> model`, so
`models.load_saved` can rebuild its saved artifacts (it records its ID in meta["structure"]).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import typing
from functools import lru_cache
from types import ModuleType
from typing import Any

from ..errors import MicrobudgetError


@lru_cache(maxsize=1)
def registry() -> dict[str, ModuleType]:
    """Technique id -> module, for every module in this package."""
    modules = (importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)
               if not info.name.startswith("_"))  # _helpers are shared code, not techniques
    return {module.ID: module for module in modules}


def get(technique_id: str) -> ModuleType:
    try:
        return registry()[technique_id]
    except KeyError:
        raise MicrobudgetError(f"Unknown technique '{technique_id}'.",
                               f"Use one of: {', '.join(sorted(registry()))}.") from None


def make_config(technique: ModuleType, settings: dict[str, str] | None = None) -> Any:
    """The technique's Config with `settings` (strings from --set KEY=VALUE or the app) applied."""
    fields = {f.name: f for f in dataclasses.fields(technique.Config)}
    hints = typing.get_type_hints(technique.Config)
    values = {}
    for key, text in (settings or {}).items():
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise MicrobudgetError(f"Technique '{technique.ID}' has no setting '{key}'.",
                                   f"Its settings are: {known}.")
        values[key] = _parse(hints[key], text, f"{technique.ID}.{key}")
    return technique.Config(**values)


def _parse(kind: Any, text: Any, name: str) -> Any:
    """A setting's value (a string from the CLI, or a widget's value) as its declared type."""
    try:
        if kind is bool and isinstance(text, str):
            if text.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(text)
            return text.lower() in {"true", "1", "yes"}
        return kind(text)
    except (TypeError, ValueError):
        raise MicrobudgetError(f"Setting {name}={text!r} is not a valid {getattr(kind, '__name__', kind)}.",
                               "Fix the value and run again.") from None
