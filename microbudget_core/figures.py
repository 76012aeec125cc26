"""A row's figures, typed: what measure() measured of one model, plus its training and its technique's own report.

Each kind's `Figures` class joins `Measured` (what every row has) with its `Metrics` (accuracy, perplexity, WER...).
A run stores them as one flat JSON object (the CLI's contract, unchanged); `runs` types them back by the run's kind.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(kw_only=True)
class Measured:
    """What measure() writes for every row, whatever the kind; a field defaulting to None is absent where unmeasured."""

    size_bytes: int  # the saved artifact, every file
    params: int
    latency_ms_p50: float  # batch 1, per example (a clip's whole transcript; a generated token)
    latency_ms_p95: float
    latency_ms_p25: float
    latency_ms_p75: float
    speed_check: dict[str, Any]  # the timing window's check (yardstick.Check): unstable, reasons, ...
    threads: int
    peak_rss_mb: float | None  # None: measured without the memory probe
    load_seconds: float | None
    eval_examples: int
    measured_on: str
    throughput_per_s: float | None = None  # examples (clips) a second: classifiers at the throughput batch, speech
    tokens_per_s: float | None = None  # language models: generated tokens a second
    rtf: float | None = None  # speech: processing seconds per second of audio
    # where the row's model was trained (the contract's training fields)
    train_seconds: float | None = None
    train_examples: int | None = None
    history: list[dict[str, Any]] | None = None
    trained_on: str | None = None
    report: dict[str, Any] = field(default_factory=dict)  # the technique's own figures, e.g. per-layer error

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object a run stores: the report's keys beside the rest, unmeasured optional fields left out."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        flat = {name: value for name, value in dataclasses.asdict(self).items()
                if name != "report" and not (value is None and defaults[name] is None)}
        return {**flat, **self.report}

