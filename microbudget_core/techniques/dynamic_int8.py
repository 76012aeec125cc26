"""PyTorch dynamic int8: Linear weights stored as int8, activations quantized on the fly.

Two implementations exist: torch.ao.quantization.quantize_dynamic (deprecated, fbgemm/qnnpack
int8 kernels) and torchao's quantize_ (its successor). Which is faster depends on the CPU and
the torch build, so `auto` times both on a few real examples and keeps the faster.
"""

from __future__ import annotations

import copy
import logging
import statistics
import warnings
from dataclasses import dataclass, field

import torch

from ..data import Dataset
from ..support.errors import MicrobudgetError
from ..measure import MeasureConfig, latencies_ms
from ..models import ModelBundle
from ..models.bundle import CAUSAL_LM, IMAGE, SPEECH, TEXT
from ..support.progress import Progress, no_progress
from ..runtimes import PYTORCH
from . import applies_to

ID = "dynamic-int8"
DESCRIPTION = "PyTorch dynamic int8 on Linear layers (weights int8, activations quantized per call)"
INT8_FOR = (TEXT,)  # the int8 path to pick for text models whose result runs in PyTorch
RESULT_RUNTIME = PYTORCH
BACKENDS = ("torch.ao", "torchao")
TIMED = 7  # calibration examples each backend is timed on (batch 1, after a warm-up call)


@dataclass(frozen=True)
class Config:
    backend: str = field(default="auto", metadata={"choices": ("auto", *BACKENDS)})
    # Also store the token tables in 8 bits, one scale per row (torch.ao's weight-only embedding quantization): a
    # large share of a model with a big vocabulary (Whisper's 51,865 x 384 table is half of tiny.en: 2.31x smaller
    # with it, 1.23x without, the same WER). On by default, so the CLI, the Quantization and Speech pages agree.
    embeddings: bool = True


@applies_to(ID, (TEXT, IMAGE, CAUSAL_LM, SPEECH), (PYTORCH,))
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    if not any(isinstance(module, torch.nn.Linear) for module in bundle.model.modules()):
        raise MicrobudgetError(f"Model '{bundle.name}' has no Linear layers, so dynamic int8 changes nothing.",
                               "Pick a transformer model, or a quantization technique for convolutions.")
    progress(0.0, "Quantizing Linear layers to int8")
    if config.backend == "auto":
        if dataset is None or len(dataset.calibration) == 0:
            raise MicrobudgetError("backend=auto times both backends on real examples, and no dataset was given.",
                                   "Run it with a dataset, or pick backend=torch.ao or torchao.")
        examples, timing = dataset.calibration.inputs[:TIMED], MeasureConfig(warmup=1, latency_runs=TIMED)
        candidates = {backend: _quantize(bundle.model, backend, config.embeddings) for backend in BACKENDS}
        timings = {backend: statistics.median(latencies_ms(bundle.derived(model), examples, timing))
                   for backend, model in candidates.items()}
        backend = min(timings, key=timings.get)
        model = candidates[backend]
        how = (f"{backend} kept: {timings['torch.ao']:.1f} ms per example with torch.ao.quantization, "
               f"{timings['torchao']:.1f} ms with torchao's quantize_ (median over {len(examples)} "
               "calibration examples, timed here).")
        report = {f"backend_ms_{name.replace('.', '_')}": ms for name, ms in timings.items()}
    else:
        backend, model = config.backend, _quantize(bundle.model, config.backend, config.embeddings)
        how, report = f"{backend} chosen by hand.", {}
    progress(1.0, "Quantized")
    share = _linear_share(bundle.model)
    rest = "convolutions, norms" if config.embeddings else "embeddings, convolutions, norms"
    note = (f"{share:.0%} of the weights are in Linear layers and became int8"
            f"{', the embedding tables 8-bit per row' if config.embeddings else ''}; the rest ({rest}) stay fp32. "
            f"Backend: {how}")
    if share < 0.2:
        note += " So dynamic int8 barely changes this model: convolutional models need static int8."
    return bundle.derived(model, note=note, structure=ID, dynamic_int8_backend=backend,
                          dynamic_int8_embeddings=config.embeddings, report={"dynamic_int8_backend": backend, **report})


def restructure(model: torch.nn.Module, meta: dict) -> torch.nn.Module:
    """The quantized structure for a saved artifact (artifacts from before the knob used torch.ao)."""
    return _quantize(model, meta.get("dynamic_int8_backend", "torch.ao"), meta.get("dynamic_int8_embeddings", False))


def _quantize(model: torch.nn.Module, backend: str, embeddings: bool = False) -> torch.nn.Module:
    """A quantized copy of `model`: every nn.Linear gets int8 weights and dynamic int8 activations (and, with
    `embeddings`, every nn.Embedding 8-bit rows)."""
    quantized = _quantize_linear(model, backend)
    if not embeddings:
        return quantized
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice, as below
        from torch.ao.quantization import float_qparams_weight_only_qconfig

        # Token tables, not positional ones: those are small, and some models (Whisper's encoder) read their .weight
        # directly, which a quantized table does not have.
        tables = {name: float_qparams_weight_only_qconfig for name, module in quantized.named_modules()
                  if type(module) is torch.nn.Embedding and "position" not in name}
        return torch.ao.quantization.quantize_dynamic(quantized, tables, inplace=True)  # `quantized` is a copy


def _quantize_linear(model: torch.nn.Module, backend: str) -> torch.nn.Module:
    """A copy of `model` whose nn.Linear layers have int8 weights and dynamic int8 activations."""
    with warnings.catch_warnings():
        # torch.ao.quantization warns it is deprecated in favour of torchao; both are offered here.
        warnings.simplefilter("ignore")
        if backend == "torch.ao":
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8,
                                                          inplace=False)
        # torchao logs that its CUDA-only extensions do not load on a CPU install: expected here.
        logging.getLogger("torchao").setLevel(logging.ERROR)
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        quantized = copy.deepcopy(model)  # quantize_ works in place; the cached original stays as it is
        quantize_(quantized, Int8DynamicActivationInt8WeightConfig())
        return quantized


def _linear_share(model: torch.nn.Module) -> float:
    tables = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}  # a tied LM head is one
    linear = sum(m.weight.numel() for m in model.modules()
                 if isinstance(m, torch.nn.Linear) and id(m.weight) not in tables)
    return linear / sum(p.numel() for p in model.parameters())
