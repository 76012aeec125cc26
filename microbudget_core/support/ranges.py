"""What values a Config's settings may take, declared once in the field's metadata and checked before slow work.

A field declares `choices` (a tuple), `min` / `max` (inclusive) or `above` (exclusive), e.g.
`epochs: int = field(default=2, metadata={"min": 1})`. `check` refuses a config outside them with one message;
the app's widgets read the same metadata for their bounds.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import MicrobudgetError


def rule(field: dataclasses.Field) -> str:
    """The field's range in words ("at least 1", "from 0 to 1", "one of a, b"); empty where it declares none."""
    meta = field.metadata
    if "choices" in meta:
        return f"one of {', '.join(map(str, meta['choices']))}"
    if "min" in meta and "max" in meta:
        return f"from {meta['min']:g} to {meta['max']:g}"
    words = {"above": "above", "min": "at least", "max": "at most"}
    return " and ".join(f"{word} {meta[key]:g}" for key, word in words.items() if key in meta)


def within(field: dataclasses.Field, value: Any) -> bool:
    """Whether `value` is one the field allows (any finite number where it declares no range)."""
    meta = field.metadata
    if "choices" in meta:
        return value in meta["choices"]
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return (("min" not in meta or value >= meta["min"]) and ("above" not in meta or value > meta["above"])
            and ("max" not in meta or value <= meta["max"]))


def check(config: Any, owner: str) -> None:
    """Refuse `config` (a dataclass) with one message if a setting is outside its declared range."""
    for field in dataclasses.fields(config):
        check_value(field, getattr(config, field.name), owner)


def check_value(field: dataclasses.Field, value: Any, owner: str) -> None:
    """Refuse one setting's value with one message if it is outside the field's declared range."""
    if not within(field, value):
        raise MicrobudgetError(f"Setting {owner}.{field.name}={value!r} is out of range: it must be "
                               f"{rule(field) or 'a finite number'}.", f"Fix {owner}'s {field.name} and run again.")
