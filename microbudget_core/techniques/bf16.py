"""bf16 weights: every floating weight stored as torch.bfloat16 (half the bytes of fp32)."""

import torch

from ._half import technique

ID = "bf16"
DESCRIPTION, Config, apply, restructure = technique(ID, torch.bfloat16)
