"""Export to ONNX and run with ONNX Runtime (graph optimizations on), still fp32."""

from __future__ import annotations

from dataclasses import dataclass

from ..data import Dataset
from ..models import ModelBundle
from ..models.onnx_model import export_onnx, onnx_bundle
from ..progress import Progress, no_progress

ID = "onnx"
DESCRIPTION = "Export to ONNX, run in ONNX Runtime with all graph optimizations (fp32): the runtime's share of the gain"


@dataclass(frozen=True)
class Config:
    """No knobs: Optimum's exporter for transformers models, torch.onnx.export for the project's CNNs."""


def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    progress(0.0, "Exporting to ONNX")
    result = onnx_bundle(bundle, export_onnx(bundle))
    progress(1.0, "Exported")
    return result
