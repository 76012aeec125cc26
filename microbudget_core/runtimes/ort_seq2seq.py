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
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch

from . import ORT_SEQ2SEQ
from ._folder import FolderModel

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


class OnnxSpeechModel(FolderModel):
    """An ORTModelForSpeechSeq2Seq over a temporary folder of exported files that this object owns."""

    def open(self) -> None:
        from optimum.onnxruntime import ORTModelForSpeechSeq2Seq  # a slow import, which most pages never need

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        with quiet():
            self.ort = ORTModelForSpeechSeq2Seq.from_pretrained(self.folder, provider="CPUExecutionProvider",
                                                                session_options=options)

    def onnx_files(self) -> list[Path]:
        """The graphs and any external weight files: everything but the JSON configs."""
        return sorted(path for path in self.folder.iterdir() if path.suffix != ".json")

    def generate(self, input_features: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Token ids, as transformers' generate() gives them for the same kwargs."""
        return self.ort.generate(input_features, **kwargs)


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
    model.set_threads(threads)
