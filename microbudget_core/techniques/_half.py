"""Shared by fp16 and bf16: cast a copy's weights to a 16-bit float type."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ..support.cpu import cpu_flags, is_arm
from ..data import Dataset
from ..models import ModelBundle
from ..models.bundle import CAUSAL_LM, IMAGE, SPEECH, TEXT
from ..support.progress import Progress, no_progress
from ..runtimes import PYTORCH
from . import applies_to

# The flags whose kernels make 16-bit matmuls fast on a CPU; without them torch converts per op.
FAST_FLAGS = {torch.bfloat16: {"avx512_bf16", "amx_bf16"}, torch.float16: {"avx512_fp16", "amx_fp16"}}


def cast_weights(bundle: ModelBundle, dtype: torch.dtype, technique_id: str, progress: Progress) -> ModelBundle:
    """A copy of `bundle` with every floating weight in `dtype`, and a note on this CPU's kernels."""
    progress(0.0, f"Casting weights to {technique_id}")
    model = restructure_to(bundle.model, dtype)
    name = str(dtype).removeprefix("torch.")
    fast = is_arm() or bool(FAST_FLAGS[dtype] & cpu_flags())
    note = (f"Weights stored in {name}: half the bytes. " +
            ("This CPU has native 16-bit matrix instructions." if fast else
             f"This CPU has no native {name} matrix instructions ({', '.join(sorted(FAST_FLAGS[dtype]))}), "
             "so compute is converted per operation: expect it slower than fp32."))
    progress(1.0, "Cast")
    return bundle.derived(model, note=note, structure=technique_id)


def restructure_to(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """A copy of `model` in `dtype` (integer buffers such as position ids stay as they are)."""
    return copy.deepcopy(model).to(dtype)


@dataclass(frozen=True)
class Config:
    """No knobs: all floating weights and buffers are cast."""


def technique(technique_id: str, dtype: torch.dtype) -> tuple:
    """(DESCRIPTION, Config, apply, restructure) for one 16-bit type; fp16.py and bf16.py differ only here."""
    name = str(dtype).removeprefix("torch.")
    description = f"{technique_id} weights ({name}: half the bytes; slower than fp32 on CPUs without native kernels)"

    @applies_to(technique_id, (TEXT, IMAGE, CAUSAL_LM, SPEECH), (PYTORCH,),
                instead=f"Apply {technique_id} before any ONNX step.")
    def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
              progress: Progress = no_progress) -> ModelBundle:
        return cast_weights(bundle, dtype, technique_id, progress)

    def restructure(model: torch.nn.Module, meta: dict) -> torch.nn.Module:
        return restructure_to(model, dtype)

    return description, Config, apply, restructure
