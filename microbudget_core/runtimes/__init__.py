"""Runtimes: what executes a bundle's model (PyTorch, ONNX Runtime, llama.cpp), one module each.

A bundle names its runtime in meta["runtime"] (PyTorch when absent); `saved.load_saved` reads it back.
Adding a runtime is adding a module here that holds:

- `ID`, and `SELF_CONTAINED`: True when the saved file is the whole model (an ONNX graph), False when
  the architecture is rebuilt first and the weights fill it (PyTorch);
- `run(model, features) -> np.ndarray`: preprocessed features in, the model's output (logits) out;
- `save(model, folder)` and `load(folder, model=None) -> model` (the rebuilt architecture when not
  self-contained);
- `parameter_count(model)`, `digest(model)` (a sha256 of the weights) and `set_threads(model, n)`;
- for a runtime that reads a clip's audio itself (faster-whisper), `transcribe(model, audio) -> (text, tokens)`;
- for a runtime of language models, `greedy(model, ids)`: an endless iterator of the next greedy token, and
  `prompted(model, labels)`: the model answering a classification task by each label's log-likelihood.

`measure()` only calls these, so a new runtime needs no change there.
"""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType
from typing import Any

from ..support.registry import entry, modules_by_id

PYTORCH = "pytorch"  # the runtime of a bundle whose meta names none
ORT = "onnxruntime"
LLAMACPP = "llama.cpp"
ORT_SEQ2SEQ = "onnxruntime-seq2seq"  # an encoder and a decoder graph (speech recognition)
CT2 = "ctranslate2"  # a Whisper run by faster-whisper


@lru_cache(maxsize=1)
def registry() -> dict[str, ModuleType]:
    """Runtime id -> module, for every module in this package."""
    return modules_by_id(__name__, __path__)


def get(runtime_id: str) -> ModuleType:
    return entry(registry(), runtime_id, "runtime")


def of(meta: dict[str, Any]) -> ModuleType:
    """The runtime a bundle's (or a saved artifact's) meta names."""
    return get(meta.get("runtime", PYTORCH))
