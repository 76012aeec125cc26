"""Take a run away: its saved model, the forms the ecosystem's loaders read (Optimum / transformers, faster-whisper,
Ollama), and a model card that leads with them, as a folder or a zip."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType

import transformers

from . import kinds, runtimes
from .models.bundle import ModelBundle
from .models.pruned import PRUNED_SHAPES
from .runs import Run, saved_artifact
from .saved import load_saved
from .support.errors import MicrobudgetError

CARD_NAME = "README.md"  # the name the Hugging Face Hub shows as a model card


def export_run(run: Run, folder: Path) -> Path:
    """Copy the run's artifact into `folder` (new or empty), add the standard forms, and write its model card."""
    artifact = saved_artifact(run)
    if folder.exists() and any(folder.iterdir()):
        raise MicrobudgetError(f"'{folder}' is not empty.", "Export into a new or empty folder.")
    shutil.copytree(artifact, folder, dirs_exist_ok=True)
    forms = standard_forms(load_saved(artifact), folder, f"{run.model}-{run.label}")
    (folder / CARD_NAME).write_text(model_card(run, folder.name, forms))
    return folder


def standard_forms(bundle: ModelBundle, folder: Path, name: str) -> str:
    """Write what loaders other than microbudget's read into the exported `folder` (the saved `bundle`'s copy);
    the card's sections on them (`name`: the model's, for Ollama).

    A runtime with its own way to run its file (llama.cpp: an Ollama Modelfile) writes it; else the kind writes its
    forms (an ONNX graph for Optimum, CTranslate2 folders for faster-whisper); a PyTorch model of a transformers
    class also loads as it is. A form that cannot be made is said, not shipped.
    """
    if hasattr(bundle.runtime, "take_away"):
        return bundle.runtime.take_away(folder, name)
    kind = kinds.get(bundle.task)
    try:
        sections = [kind.take_away(bundle, folder)] if hasattr(kind, "take_away") else []
    except MicrobudgetError as error:  # e.g. an architecture ONNX does not export: the card says so
        sections = [f"## No ONNX form\n\n{error}\n"]
    return "\n".join([*sections, _transformers_section(bundle, kind, folder.name)])


def _transformers_section(bundle: ModelBundle, kind: ModuleType, name: str) -> str:
    """How transformers loads the PyTorch weights as they are, or why it cannot."""
    if bundle.runtime.ID != runtimes.PYTORCH:
        return ""
    why_not = standard_class_missing(bundle)
    if why_not:
        return (f"## The PyTorch weights\n\n`model.safetensors` loads only through microbudget (below): {why_not}. "
                "The form above is the one to take elsewhere.\n")
    return f"""## Load it with transformers

```python
from transformers import pipeline
pipe = pipeline("{kind.PIPELINE}", model="{name}")
```
"""


def standard_class_missing(bundle: ModelBundle) -> str:
    """Why transformers' Auto classes cannot load the saved PyTorch weights as they are ('' when they can)."""
    if bundle.meta.get("structure"):
        return f"PyTorch's {', '.join(bundle.meta['structure'])} modules are not a transformers class"
    if bundle.meta.get(PRUNED_SHAPES):
        return "its layers were pruned to sizes a transformers config cannot state (heads or channels per layer)"
    if not hasattr(transformers, type(bundle.model).__name__):
        return (f"{type(bundle.model).__name__} is microbudget's own network or head (e.g. the mean of every layer's "
                "tokens), which transformers does not ship")
    return ""


def export_zip(run: Run) -> bytes:
    """The same export as one zip file, for a download button."""
    with tempfile.TemporaryDirectory() as temporary:
        folder = export_run(run, Path(temporary) / run.run_id)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                archive.write(path, Path(run.run_id) / path.relative_to(folder))
        return buffer.getvalue()


def model_card(run: Run, name: str | None = None, loaders: str = "") -> str:
    """What was done, on which data, what it measured and where, and how to load it: the standard loaders first."""
    name = name or run.run_id
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

## Measured on the held-out eval split ({run.result.measured_on}, {run.result.threads} threads)

| | original | this model |
|---|---|---|
{table}

Notes from the techniques:
{notes}

{loaders}
## Load it with microbudget

```python
from pathlib import Path
from microbudget_core.saved import load_saved
model = load_saved(Path("{name}"))  # this folder
{kinds.get(run.task).card_usage}
```
"""
