"""Export to ONNX and run with ONNX Runtime (graph optimizations on), still fp32."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import kinds
from ..data import Dataset
from ..models import ModelBundle
from ..models.bundle import IMAGE, SPEECH, TEXT
from ..models.onnx_model import export_onnx, onnx_bundle, optimize_onnx
from ..support.progress import Progress, no_progress
from ..runtimes import ORT, ORT_SEQ2SEQ, PYTORCH
from . import applies_to

ID = "onnx"
DESCRIPTION = "Export to ONNX, run in ONNX Runtime with all graph optimizations (fp32): the runtime's share of the gain"
LEVELS = ("none", "O1", "O2", "O3")


@dataclass(frozen=True)
class Config:
    # Optimum's ORTOptimizer level for transformers graphs, saved into the artifact (see optimize_onnx).
    # Every ONNX row also gets ONNX Runtime's own session optimizations when it loads.
    optimization: str = field(default="O2", metadata={"choices": LEVELS})


@applies_to(ID, (TEXT, IMAGE, SPEECH), (PYTORCH, ORT, ORT_SEQ2SEQ))
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    progress(0.0, "Exporting to ONNX")
    kind = kinds.get(bundle.task)
    if hasattr(kind, "to_onnx"):  # several graphs (an encoder and a decoder): the kind's own export
        result = kind.to_onnx(bundle)
        progress(1.0, "Exported")
        return result.derived(result.model, note="Exported by Optimum as an encoder and a merged decoder graph; "
                              "ONNX Runtime's session optimizations (ORTOptimizer's fusions are not applied here).")
    onnx_bytes = export_onnx(bundle)
    transformers_graph = hasattr(bundle.model, "config")
    if config.optimization != "none" and transformers_graph:
        progress(0.5, f"Optimizing the graph (ORTOptimizer {config.optimization})")
        onnx_bytes = optimize_onnx(bundle, onnx_bytes, config.optimization)
        note = f"Graph optimized with Optimum's ORTOptimizer at {config.optimization} (fused attention, LayerNorm, GELU)."
    else:
        note = ("ORTOptimizer's fusions target transformers graphs; this graph gets ONNX Runtime's session "
                "optimizations (constant folding, Conv+BN and activation fusion) when it loads."
                if config.optimization != "none" else "No ORTOptimizer pass; ONNX Runtime's session optimizations only.")
    result = onnx_bundle(bundle, onnx_bytes, note)
    progress(1.0, "Exported")
    return result
