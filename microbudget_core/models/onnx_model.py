"""ONNX models: export a bundle's torch model to an ONNX graph, optimize it and quantize it.

Transformers models export through Optimum (it knows each architecture's inputs); the project's
own vision models through torch.onnx.export. Either way the result is one `model.onnx`, run by
ONNX Runtime (runtimes.ort) on the CPU with the same thread count as every other row.
"""

from __future__ import annotations

import functools
import io
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import kinds, runtimes
from ..support.cpu import cpu_flags, is_arm
from ..support.errors import MicrobudgetError
from ..runtimes.ort import OnnxClassifier
from .bundle import ModelBundle
from .pooling import uses_layer_mean
from .vision import is_project_network


def one_clear_error(action: str) -> Callable:
    """Turn whatever an exporter or quantizer raises into one MicrobudgetError saying what failed."""
    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except MicrobudgetError:
                raise
            except Exception as error:  # these libraries raise many types; the user needs one message
                raise MicrobudgetError(f"ONNX could not {action} this model ({type(error).__name__}: {error}).",
                                       "The architecture may be unsupported there; the other techniques "
                                       "still apply.") from error
        return wrapper
    return decorate


@one_clear_error("export")
def export_onnx(bundle: ModelBundle) -> bytes:
    """The bundle's torch model as ONNX bytes."""
    if isinstance(bundle.model, OnnxClassifier):
        return bundle.model.onnx_bytes
    refuse_changed(bundle)
    if is_project_network(bundle.meta) or uses_layer_mean(getattr(bundle.model, "config", None)):
        return _export_torch(bundle)
    return _export_optimum(bundle)


def refuse_changed(bundle: ModelBundle) -> None:
    """One message for a model that PyTorch-side techniques changed (int8, packed or half modules): none exports."""
    changed = bundle.meta.get("structure")
    if changed:
        raise MicrobudgetError(f"A model already changed in PyTorch ({', '.join(changed)}) cannot be exported to ONNX.",
                               "Put the ONNX step first; ONNX Runtime quantizes the exported graph itself.")


def onnx_bundle(bundle: ModelBundle, onnx_bytes: bytes, note: str | None = None) -> ModelBundle:
    """A bundle like `bundle` whose model is the given ONNX graph (it reloads from model.onnx: no replay)."""
    return bundle.derived(OnnxClassifier(onnx_bytes), note=note, runtime=runtimes.ORT)


def _export_torch(bundle: ModelBundle) -> bytes:
    """torch.onnx.export, for the project's own models: Optimum exports only the classes transformers ships."""
    kind = kinds.get(bundle.task)
    inputs = bundle.preprocess(kind.example_inputs())
    axes = kind.dynamic_axes(list(inputs))  # batch (and, for text, sequence length) stay free in the graph
    buffer = io.BytesIO()
    # dynamo=False: the TorchScript exporter needs no onnxscript, which is not installed here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the attention mask's constants: as intended
        torch.onnx.export(_LogitsOnly(bundle.model.eval(), list(inputs)), tuple(inputs.values()), buffer, dynamo=False,
                          input_names=list(inputs), output_names=["logits"], opset_version=17,
                          dynamic_axes={**axes, "logits": {0: "batch"}})
    return buffer.getvalue()


class _LogitsOnly(torch.nn.Module):
    """The model taking its named inputs in order and giving plain logits, as the exporter wants."""

    def __init__(self, model: torch.nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        output = self.model(**dict(zip(self.names, inputs)))
        return getattr(output, "logits", output)


def _export_optimum(bundle: ModelBundle) -> bytes:
    import optimum.onnxruntime  # a slow import, which most pages never need

    auto = getattr(optimum.onnxruntime, kinds.get(bundle.task).OPTIMUM_CLASS)
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "torch", Path(folder) / "onnx"
        bundle.save(source)
        auto.from_pretrained(source, export=True).save_pretrained(target)
        return (target / "model.onnx").read_bytes()


@one_clear_error("optimize")
def optimize_onnx(bundle: ModelBundle, onnx_bytes: bytes, level: str) -> bytes:
    """Optimum's ORTOptimizer at `level` (O1 basic .. O3 with GELU approximation) for a transformers graph.

    O2 and up fuse attention, LayerNorm and GELU into ONNX Runtime's contrib kernels, which the
    runtime's own session optimizations do not do for a plain exported graph.
    """
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "model.onnx").write_bytes(onnx_bytes)
        bundle.model.config.save_pretrained(folder)  # the optimizer reads the model type from it
        optimizer = ORTOptimizer.from_pretrained(folder, file_names=["model.onnx"])
        optimizer.optimize(save_dir=Path(folder) / "optimized",
                           optimization_config=getattr(AutoOptimizationConfig, level)())
        return (Path(folder) / "optimized" / "model_optimized.onnx").read_bytes()


def cpu_preset() -> str:
    """Optimum's quantization preset for this CPU: arm64, avx512_vnni, avx512 or avx2."""
    if is_arm():
        return "arm64"
    if "avx512_vnni" in cpu_flags():
        return "avx512_vnni"
    return "avx512" if "avx512f" in cpu_flags() else "avx2"


@one_clear_error("quantize (dynamic int8)")
def quantize_dynamic_int8(onnx_bytes: bytes, preset: str, per_channel: bool) -> bytes:
    """ONNX Runtime dynamic int8 through Optimum's ORTQuantizer and its per-CPU preset."""
    import logging

    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    make_config = getattr(AutoQuantizationConfig, preset)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "model.onnx").write_bytes(onnx_bytes)
        quantizer = ORTQuantizer.from_pretrained(folder, file_name="model.onnx")
        logging.getLogger("optimum").setLevel(logging.ERROR)  # "could not load the config": none is needed
        quantizer.quantize(save_dir=Path(folder) / "int8",
                           quantization_config=make_config(is_static=False, per_channel=per_channel))
        return (Path(folder) / "int8" / "model_quantized.onnx").read_bytes()


@one_clear_error("quantize (static int8)")
def quantize_static_int8(onnx_bytes: bytes, batches: list[dict[str, np.ndarray]], method: str,
                         per_channel: bool, reduce_range: bool) -> bytes:
    """ONNX Runtime static int8 (QDQ): activation ranges calibrated on `batches` with `method`.

    Plain onnxruntime.quantization rather than Optimum's ORTQuantizer.fit: Optimum wraps the same
    quantize_static but wants a datasets.Dataset per architecture; feeding the calibration split's
    preprocessed batches serves transformers models and the project's CNN with one path.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.remaining = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.remaining, None)

    with tempfile.TemporaryDirectory() as folder:
        source, prepared, target = (Path(folder) / name for name in ("model.onnx", "prep.onnx", "int8.onnx"))
        source.write_bytes(onnx_bytes)
        # ONNX shape inference and graph fusions first, as ORT advises; its symbolic shape pass
        # fails on transformers' dynamic sequence axis, and the ONNX pass suffices here.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, reduce_range=reduce_range, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8,
                        calibrate_method=methods[method])
        return target.read_bytes()
