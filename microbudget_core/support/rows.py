"""Table rows: a lab returns row dataclasses; each field says under which label a table or chart shows it."""

from __future__ import annotations

import dataclasses
from typing import Any


def column(label: str) -> Any:
    """A row field shown under `label` (a table's column, a chart's panel)."""
    return dataclasses.field(metadata={"label": label})


def labelled(row: Any) -> dict[str, Any]:
    """The row as {display label: value}, in field order (fields without a label keep their name)."""
    return {field.metadata.get("label", field.name): getattr(row, field.name) for field in dataclasses.fields(row)}
