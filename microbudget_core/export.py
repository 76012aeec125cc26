"""Take a run away: its saved model (ONNX file, or safetensors + config) and a model card, as a folder or a zip."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

from . import kinds, runtimes
from .support.errors import MicrobudgetError
from .runs import Run, saved_artifact

CARD_NAME = "README.md"  # the name the Hugging Face Hub shows as a model card


def export_run(run: Run, folder: Path) -> Path:
    """Copy the run's artifact into `folder` (new or empty) and write its model card beside it."""
    artifact = saved_artifact(run)
    if folder.exists() and any(folder.iterdir()):
        raise MicrobudgetError(f"'{folder}' is not empty.", "Export into a new or empty folder.")
    shutil.copytree(artifact, folder, dirs_exist_ok=True)
    runtime = runtimes.of(json.loads((folder / "microbudget.json").read_text())["meta"])
    # A runtime with its own way to run the file (llama.cpp: an Ollama Modelfile) writes it, and says how.
    extra = runtime.take_away(folder, f"{run.model}-{run.label}") if hasattr(runtime, "take_away") else ""
    (folder / CARD_NAME).write_text(model_card(run) + (f"\n{extra}" if extra else ""))
    return folder


def export_zip(run: Run) -> bytes:
    """The same export as one zip file, for a download button."""
    with tempfile.TemporaryDirectory() as temporary:
        folder = export_run(run, Path(temporary) / run.run_id)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                archive.write(path, Path(run.run_id) / path.relative_to(folder))
        return buffer.getvalue()


def model_card(run: Run) -> str:
    """What was done, on which data, what it measured, and how to load it."""
    steps = "\n".join(f"{n}. `{s['technique']}` with `{json.dumps(s['config'])}`" for n, s in enumerate(run.steps, 1))
    rows = [("accuracy", "accuracy", 1, ".3f"), ("balanced accuracy", "balanced_accuracy", 1, ".3f"),
            ("macro F1", "macro_f1", 1, ".3f"),
            ("size (MB)", "size_bytes", 1e-6, ".1f"), ("parameters", "params", 1, ",.0f"),
            ("p50 latency, batch 1 (ms)", "latency_ms_p50", 1, ".1f"),
            ("perplexity", "perplexity", 1, ".2f"), ("generation (tokens/s)", "tokens_per_s", 1, ".1f"),
            ("word error rate", "wer", 1, ".3f"), ("character error rate", "cer", 1, ".3f"),
            ("real-time factor (s per s of audio)", "rtf", 1, ".3f")]
    if run.result.rtf is None:  # a speech model's clips are timed one by one: the p50 says it
        rows.insert(6, ("throughput, batch 32 (/s)", "throughput_per_s", 1, ",.0f"))
    both = [(name, getattr(run.baseline, key, None), getattr(run.result, key, None), scale, spec)
            for name, key, scale, spec in rows]
    table = "\n".join(f"| {name} | {before * scale:{spec}} | {after * scale:{spec}} |"
                      for name, before, after, scale, spec in both if before is not None and after is not None)
    notes = "\n".join(f"- {note}" for note in run.notes) or "- none"
    labels = f", labels: {', '.join(run.labels)}" if run.labels else ""
    return f"""# {run.model}: {run.label}

Made with microbudget from `{run.model}` on the dataset `{run.dataset}` ({run.task}{labels}).
Run `{run.run_id}`, {run.created_at}.

## What was done

{steps or "Nothing: this is the original task model."}

## Measured on the held-out eval split (2 CPU threads)

| | original | this model |
|---|---|---|
{table}

Notes from the techniques:
{notes}

## Load it

```python
from pathlib import Path
from microbudget_core.saved import load_saved
model = load_saved(Path("{run.run_id}"))  # this folder
{kinds.get(run.task).card_usage}
```
"""
