"""fp16 weights: every floating weight stored as torch.float16 (half the bytes of fp32)."""

import torch

from ._half import technique

ID = "fp16"
DESCRIPTION, Config, apply, restructure = technique(ID, torch.float16)
