"""Training limits an operator sets for a shared server (unset: no limit), applied to every technique's settings.

MICROBUDGET_MAX_EPOCHS caps `epochs`; MICROBUDGET_MAX_EXAMPLES_PER_CLASS caps `examples_per_class` (0, "all",
becomes the cap). A run over a limit is trained at the limit, and its recorded settings say so.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

LIMITS = {"epochs": "MICROBUDGET_MAX_EPOCHS", "examples_per_class": "MICROBUDGET_MAX_EXAMPLES_PER_CLASS"}


def active() -> dict[str, int]:
    """The limits in force: setting name -> its maximum."""
    return {name: int(os.environ[variable]) for name, variable in LIMITS.items() if os.environ.get(variable)}


def capped(config: Any) -> Any:
    """`config` (a dataclass) with each limited setting it has brought within its limit."""
    fields = {field.name for field in dataclasses.fields(config)}
    changes = {name: within(name, getattr(config, name)) for name in active() if name in fields}
    changes = {name: value for name, value in changes.items() if value != getattr(config, name)}
    return dataclasses.replace(config, **changes) if changes else config


def within(name: str, value: int) -> int:
    """A limited setting's value brought within its limit (examples_per_class 0, "all", is over any limit)."""
    maximum = active().get(name)
    if maximum is None:
        return value
    return maximum if value == 0 and name == "examples_per_class" else min(value, maximum)
