"""ONNX Runtime: the model is an ONNX graph (one model.onnx) run by an InferenceSession on the CPU."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch

from . import ORT

ID = ORT
NAME = "ONNX Runtime"
SELF_CONTAINED = True  # model.onnx holds the graph and its weights
FILE = "model.onnx"


class OnnxClassifier:
    """An ONNX Runtime session over the graph's bytes (kept so the model can be saved, copied and measured)."""

    def __init__(self, onnx_bytes: bytes, threads: int | None = None):
        self.onnx_bytes = onnx_bytes
        # ONNX Runtime ignores torch.set_num_threads; measure() sets the count through set_threads().
        self.threads = threads or torch.get_num_threads()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, **features: torch.Tensor) -> torch.Tensor:
        feeds = {name: features[name].numpy() for name in self.input_names}
        return torch.from_numpy(self.session.run(None, feeds)[0])

    def __deepcopy__(self, memo: dict) -> "OnnxClassifier":
        return OnnxClassifier(self.onnx_bytes, self.threads)

    def __getstate__(self) -> dict[str, Any]:
        return {"onnx_bytes": self.onnx_bytes, "threads": self.threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["onnx_bytes"], state.get("threads"))


def run(model: OnnxClassifier, features: dict[str, torch.Tensor]) -> np.ndarray:
    return model(**features).float().numpy()


def save(model: OnnxClassifier, folder: Path) -> None:
    (folder / FILE).write_bytes(model.onnx_bytes)


def load(folder: Path, model: Any = None) -> OnnxClassifier:
    return OnnxClassifier((folder / FILE).read_bytes())


def parameter_count(model: OnnxClassifier) -> int:
    """Elements of the graph's weight tensors (int8 or float)."""
    graph = onnx.load_model_from_string(model.onnx_bytes).graph
    return sum(int(np.prod(init.dims)) for init in graph.initializer)


def digest(model: OnnxClassifier, skip: Any = None) -> str:
    return hashlib.sha256(model.onnx_bytes).hexdigest()


def set_threads(model: OnnxClassifier, threads: int) -> None:
    """A new session when the count changes (a session's thread pool is fixed when it is made)."""
    if model.threads != threads:
        model.__init__(model.onnx_bytes, threads)
