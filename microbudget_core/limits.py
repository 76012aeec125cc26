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
    changes = {name: maximum for name, maximum in active().items()
               if name in fields and (getattr(config, name) > maximum or getattr(config, name) == 0 and
                                      name == "examples_per_class")}
    return dataclasses.replace(config, **changes) if changes else config
