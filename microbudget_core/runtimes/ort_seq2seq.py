"""ONNX Runtime for speech recognition: Optimum's ORTModelForSpeechSeq2Seq (Whisper) run on the CPU.

The model is Optimum's export: encoder_model.onnx, decoder_model_merged.onnx (the decoder's first step and its
cached steps in one graph) and the config.json and generation_config.json it rebuilds from. A saved bundle keeps
them in its `onnx/` subfolder, as ORTModelForSpeechSeq2Seq.save_pretrained writes them: the bundle writes its own
config.json, processor files and microbudget.json at the folder's root.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch

from . import ORT_SEQ2SEQ

ID = ORT_SEQ2SEQ
NAME = "ONNX Runtime"
SELF_CONTAINED = True  # the ONNX files hold the graphs and their weights
SUBFOLDER = "onnx"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Optimum's and transformers' export and load chatter (tracer warnings, tied-weight notices)."""
    loggers = [logging.getLogger("optimum"), logging.getLogger("transformers")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class OnnxSpeechModel:
    """An ORTModelForSpeechSeq2Seq over a temporary folder of exported files that this object owns."""

    def __init__(self, storage: tempfile.TemporaryDirectory, threads: int | None = None):
        from optimum.onnxruntime import ORTModelForSpeechSeq2Seq  # a slow import, which most pages never need

        # Nothing writes to the folder once made, so copies share it; it is deleted with its last holder.
        self.storage = storage
        # ONNX Runtime ignores torch.set_num_threads; measure() sets the count through set_threads().
        self.threads = threads or torch.get_num_threads()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        with quiet():
            self.ort = ORTModelForSpeechSeq2Seq.from_pretrained(self.folder, provider="CPUExecutionProvider",
                                                                session_options=options)

    @classmethod
    def from_folder(cls, source: Path, threads: int | None = None) -> OnnxSpeechModel:
        """A model over its own copy of the files in `source` (a bundle's folder may change or go)."""
        storage = new_storage()
        shutil.copytree(source, storage.name, dirs_exist_ok=True)
        return cls(storage, threads)

    @property
    def folder(self) -> Path:
        return Path(self.storage.name)

    def onnx_files(self) -> list[Path]:
        """The graphs and any external weight files: everything but the JSON configs."""
        return sorted(path for path in self.folder.iterdir() if path.suffix != ".json")

    def generate(self, input_features: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Token ids, as transformers' generate() gives them for the same kwargs."""
        return self.ort.generate(input_features, **kwargs)

    def __deepcopy__(self, memo: dict) -> OnnxSpeechModel:
        return OnnxSpeechModel(self.storage, self.threads)

    def __getstate__(self) -> dict[str, Any]:
        files = {path.name: path.read_bytes() for path in self.folder.iterdir()}  # a flat folder, as Optimum saves it
        return {"files": files, "threads": self.threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        storage = new_storage()
        for name, data in state["files"].items():
            (Path(storage.name) / name).write_bytes(data)
        self.__init__(storage, state.get("threads"))


def new_storage() -> tempfile.TemporaryDirectory:
    """An empty temporary folder for a model's files."""
    return tempfile.TemporaryDirectory(prefix="microbudget-onnx-speech-")


def run(model: OnnxSpeechModel, features: dict[str, torch.Tensor]) -> np.ndarray:
    """The decoder's logits for {"input_features", "decoder_input_ids"} (one forward pass, no generation)."""
    output = model.ort(**{name: torch.as_tensor(value) for name, value in features.items()})
    return torch.as_tensor(output.logits).float().numpy()


def save(model: OnnxSpeechModel, folder: Path) -> None:
    target = folder / SUBFOLDER
    shutil.rmtree(target, ignore_errors=True)  # a stale graph left there would be picked up on load
    shutil.copytree(model.folder, target)


def load(folder: Path, model: Any = None) -> OnnxSpeechModel:
    return OnnxSpeechModel.from_folder(folder / SUBFOLDER)


def parameter_count(model: OnnxSpeechModel) -> int:
    """Elements of every graph's initializers (int8 or float), as stored.

    The merged decoder's two branches share the top graph's weights, so those count once.
    """
    return sum(_elements(onnx.load(path, load_external_data=False).graph)
               for path in model.onnx_files() if path.suffix == ".onnx")


def _elements(graph: onnx.GraphProto) -> int:
    """Initializer elements of a graph and of its subgraphs (the merged decoder's If branches)."""
    total = sum(int(np.prod(init.dims)) for init in graph.initializer)
    for attribute in (attribute for node in graph.node for attribute in node.attribute):
        total += sum(_elements(sub) for sub in attribute.graphs)
        if attribute.type == onnx.AttributeProto.GRAPH:
            total += _elements(attribute.g)
    return total


def digest(model: OnnxSpeechModel, skip: Any = None) -> str:
    """A sha256 of the ONNX files (graphs and weights; the JSON configs hold no weights)."""
    found = hashlib.sha256()
    for path in model.onnx_files():
        found.update(path.name.encode() + path.read_bytes())
    return found.hexdigest()


def set_threads(model: OnnxSpeechModel, threads: int) -> None:
    """New sessions when the count changes (a session's thread pool is fixed when it is made)."""
    if model.threads != threads:
        model.__init__(model.storage, threads)
