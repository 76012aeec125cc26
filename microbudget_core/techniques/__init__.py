"""Techniques: one module each, holding ID, DESCRIPTION, a frozen `Config` and `apply()`.

Adding a technique is adding a module here; the registry finds it by itself.
`apply(bundle, config, dataset, progress) -> ModelBundle` never modifies its input bundle, and is
decorated with `@applies_to(ID, kinds, runtimes)`: the kinds of model (kinds/) and the runtimes (runtimes/)
it works on, the one rule that refuses any other bundle with one message (see `why_not`). A Config field
declares its range in its metadata (see support/ranges.py): `make_config` and `apply` refuse a value outside it.
A technique that changes module structure also has `restructure(model, meta) -> model`, so
`saved.load_saved` can rebuild its saved artifacts (it records its ID in meta["structure"]).
An int8 technique that is the one to pick for some kinds in its runtime names them in `INT8_FOR`
(the quantization sweep and the distillation lab ask `int8_path`). A technique that trains sets `TRAINS = True`:
under `accelerate launch` every process runs it (training its share), and only the main one what follows.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from functools import lru_cache
from types import ModuleType
from typing import Any, Callable

from .. import kinds, runtimes
from ..support import ranges
from ..support.errors import MicrobudgetError
from ..models.bundle import ModelBundle
from ..support.registry import entry, modules_by_id

Apply = Callable[..., ModelBundle]


def trains(technique: ModuleType) -> bool:
    """Whether the technique trains (its processes all take part; see devices.py)."""
    return getattr(technique, "TRAINS", False)


def applies_to(technique_id: str, kind_ids: tuple[str, ...], runtime_ids: tuple[str, ...],
               instead: str = "") -> Callable[[Apply], Apply]:
    """Declare the kinds of model and the runtimes a technique's `apply` works on; any other bundle is refused.

    `instead` is the fix the message suggests (what to use for other models).
    """
    def declare(apply: Apply) -> Apply:
        @functools.wraps(apply)
        def checked(bundle: ModelBundle, config: Any, *args: Any, **kwargs: Any) -> ModelBundle:
            reason = why_not(checked, bundle)
            if reason:
                raise MicrobudgetError(reason, instead or "Pick another technique, or put this one earlier.")
            ranges.check(config, technique_id)  # make_config checked it already; a Config built in code, here
            return apply(bundle, config, *args, **kwargs)

        checked.technique_id, checked.kinds, checked.runtimes = technique_id, kind_ids, runtime_ids  # type: ignore
        return checked
    return declare


def why_not(apply: Any, bundle: ModelBundle) -> str | None:
    """Why a technique's `apply` does not take this bundle (its kind of model or its runtime); None if it does."""
    if bundle.task not in apply.kinds:
        wanted = " or ".join(f"{kinds.get(kind_id).DESCRIPTION}s" for kind_id in apply.kinds)
        return (f"{apply.technique_id} does not apply to '{bundle.name}', a {kinds.get(bundle.task).DESCRIPTION}: "
                f"it works on {wanted}.")
    if bundle.runtime.ID not in apply.runtimes:
        wanted = " or ".join(runtimes.get(runtime).NAME for runtime in apply.runtimes)
        return (f"{apply.technique_id} does not apply to '{bundle.name}', which runs in {bundle.runtime.NAME}: "
                f"it works on models in {wanted}.")
    return None


def int8_path(task: str, runtime: str) -> ModuleType | None:
    """The int8 technique to pick for this kind of model whose result runs in `runtime` (None if there is none)."""
    return next((t for t in registry().values() if task in getattr(t, "INT8_FOR", ()) and t.RESULT_RUNTIME == runtime),
                None)


@lru_cache(maxsize=1)
def registry() -> dict[str, ModuleType]:
    """Technique id -> module, for every module in this package."""
    return modules_by_id(__name__, __path__)


def get(technique_id: str) -> ModuleType:
    return entry(registry(), technique_id, "technique")


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
        ranges.check_value(fields[key], values[key], technique.ID)  # refused here, before any slow work
    return technique.Config(**values)  # a rule between settings (Config.__post_init__) too


def _parse(kind: Any, text: Any, name: str) -> Any:
    """A setting's value (a string from the CLI, or a widget's value) as its declared type."""
    try:
        if kind is bool and isinstance(text, str):
            if text.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(text)
            return text.lower() in {"true", "1", "yes"}
        return kind(text)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf), from a widget's float
        raise MicrobudgetError(f"Setting {name}={text!r} is not a valid {getattr(kind, '__name__', kind)}.",
                               "Fix the value and run again.") from None
