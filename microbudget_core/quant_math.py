"""Round-to-nearest (RTN) weight quantization as plain tensor math: scales, codes, groups, bit packing.

Codes are unsigned integers in [0, 2**bits - 1] with q = clamp(round(x / S) + z, 0, 2**bits - 1) and
x ~ (q - z) * S. torch.round breaks ties to even. Used by the weight-only technique and the explainer page.
"""

from __future__ import annotations

import math

import torch

MIN_BITS, MAX_BITS = 2, 8
_FP16_MAX = torch.finfo(torch.float16).max


def _check_bits(bits: int) -> None:
    """Raise ValueError unless bits is an int in 2..8 (codes must fit one uint8)."""
    if not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"bits must be an integer in {MIN_BITS}..{MAX_BITS}, got {bits!r}")


def _range(x: torch.Tensor, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row low/high the codes must cover: [-max|x|, max|x|] or [min, max] widened to include 0."""
    if symmetric:
        high = x.abs().amax(dim=-1, keepdim=True)
        return -high, high
    # Widening to include 0 makes 0 exactly representable: padding and pruned weights stay 0.
    return x.amin(dim=-1, keepdim=True).clamp(max=0), x.amax(dim=-1, keepdim=True).clamp(min=0)


def _encode(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """Codes clamp(round(x / S) + z) as uint8."""
    return (torch.round(x / scale) + zero).clamp(0, 2**bits - 1).to(torch.uint8)


def scale_zero_point(x: torch.Tensor, bits: int, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row (last dim) scale S and integer zero-point z, both float32 of shape [..., 1].

    Asymmetric: S = (max - min) / (2**bits - 1), z = round(-min / S). Symmetric: S = max|x| / (2**(bits-1) - 1),
    z = 2**(bits-1). All-zero rows get S = 1.
    """
    _check_bits(bits)
    x = x.float()
    low, high = _range(x, symmetric)
    if symmetric:
        scale = high / (2 ** (bits - 1) - 1)
        zero = torch.full_like(scale, 2 ** (bits - 1))
    else:
        qmax = 2**bits - 1
        span = high - low
        scale = span / qmax
        # -min * qmax / span equals -min / S but stays exact at ties like 127.5, where S itself is off by an ulp;
        # 0 - low rather than -low so a row without negatives gets z = 0, not -0.
        zero = torch.round((0 - low) * qmax / torch.where(span > 0, span, 1.0))
    return torch.where(scale > 0, scale, 1.0), zero


def quantize(x: torch.Tensor, bits: int, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row RTN: (uint8 codes shaped like x, S [..., 1], z [..., 1])."""
    scale, zero = scale_zero_point(x, bits, symmetric)
    return _encode(x.float(), scale, zero, bits), scale, zero


def dequantize(codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """(codes - z) * S in float32."""
    return (codes.float() - zero) * scale


def group_layout(in_features: int, group_size: int) -> tuple[int, int]:
    """(group width, group count); group_size <= 0 means one group spanning the whole row.

    A row is zero-padded to width * count inputs before packing.
    """
    width = group_size if group_size > 0 else in_features
    return width, math.ceil(in_features / width)


def _fp16_ceil(scale: torch.Tensor) -> torch.Tensor:
    """Round positive scales up to the nearest float16, so stored S >= exact S and codes still span the range."""
    half = scale.clamp(max=_FP16_MAX).half()
    bumped = torch.nextafter(half, torch.full_like(half, math.inf))
    # Fixes underflow too: a scale below float16's smallest subnormal rounds to 0 and is bumped to it.
    return torch.where(half.float() < scale.clamp(max=_FP16_MAX), bumped, half)


def quantize_groups(weight: torch.Tensor, bits: int, group_size: int,
                    symmetric: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantize a 2-D [out, in] weight with one S/z per (row, group of group_size inputs).

    Returns codes [out, padded_in] uint8 (last group zero-padded), scales [out, n_groups] float16, and
    zeros [out, n_groups] uint8.
    """
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D [out, in], got shape {tuple(weight.shape)}")
    _check_bits(bits)
    out_features, in_features = weight.shape
    width, n_groups = group_layout(in_features, group_size)
    # Zero padding never widens a group's range: both modes already cover 0.
    padded = torch.nn.functional.pad(weight.float(), (0, n_groups * width - in_features))
    groups = padded.view(out_features, n_groups, width)
    stored_scale = _fp16_ceil(scale_zero_point(groups, bits, symmetric)[0])
    scale = stored_scale.float()
    # The zero point is recomputed against the stored scale so codes match what dequantize_groups sees.
    if symmetric:
        zero = torch.full_like(scale, 2 ** (bits - 1))
    else:
        zero = torch.round(-_range(groups, symmetric)[0] / scale).clamp(0, 2**bits - 1)
    codes = _encode(groups, scale, zero, bits).view(out_features, n_groups * width)
    return codes, stored_scale.squeeze(-1), zero.squeeze(-1).to(torch.uint8)


def dequantize_groups(codes: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, group_size: int,
                      in_features: int) -> torch.Tensor:
    """Inverse of quantize_groups: float32 [out, in_features] from the stored codes, scales and zeros."""
    width, n_groups = group_layout(in_features, group_size)
    groups = codes.reshape(codes.shape[0], n_groups, width)
    restored = dequantize(groups, scales.float().unsqueeze(-1), zeros.float().unsqueeze(-1))
    return restored.reshape(codes.shape[0], n_groups * width)[:, :in_features]


def pack_bits(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack codes (< 2**bits) densely into a flat uint8 bit stream, most significant bit first."""
    _check_bits(bits)
    flat = codes.flatten().to(torch.uint8)
    if flat.numel() and int(flat.max()) >= 2**bits:
        raise ValueError(f"codes must be below 2**{bits}, found {int(flat.max())}")
    # Spread each code into its bits, then regroup the stream into bytes: works for any width, 3 included.
    stream = ((flat.unsqueeze(-1) >> _shifts(bits)) & 1).flatten()
    stream = torch.nn.functional.pad(stream, (0, -stream.numel() % 8))
    return _join_bits(stream.view(-1, 8))


def unpack_bits(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """Inverse of pack_bits: the first count codes as a flat uint8 tensor."""
    _check_bits(bits)
    if packed.numel() * 8 < count * bits:
        raise ValueError(f"{packed.numel()} bytes cannot hold {count} codes of {bits} bits")
    stream = ((packed.flatten().to(torch.uint8).unsqueeze(-1) >> _shifts(8)) & 1).flatten()
    return _join_bits(stream[: count * bits].view(count, bits))


def _shifts(width: int) -> torch.Tensor:
    """Right shifts that read a width-bit value most significant bit first."""
    return torch.arange(width - 1, -1, -1, dtype=torch.uint8)


def _join_bits(rows: torch.Tensor) -> torch.Tensor:
    """Each row of 0/1 bits (most significant first) as one uint8 value."""
    return (rows << _shifts(rows.shape[-1])).sum(dim=-1, dtype=torch.uint8)


def packed_bytes(out_features: int, in_features: int, bits: int, group_size: int) -> int:
    """Bytes a packed [out, in] layer takes as stored: packed padded codes + fp16 scales + uint8 zeros."""
    _check_bits(bits)
    width, n_groups = group_layout(in_features, group_size)
    code_bytes = math.ceil(out_features * n_groups * width * bits / 8)
    return code_bytes + out_features * n_groups * (2 + 1)


def reconstruction_error(original: torch.Tensor, restored: torch.Tensor) -> dict[str, float]:
    """MSE, max |error|, relative L2 error ||o - r|| / ||o||, and SQNR in dB (inf when the error is zero)."""
    o, r = original.double(), restored.double()
    err = o - r
    signal, noise = float((o**2).sum()), float((err**2).sum())
    return {
        "mse": float((err**2).mean()),
        "max_abs": float(err.abs().max()),
        "relative": math.sqrt(noise / signal) if signal > 0 else (0.0 if noise == 0 else math.inf),
        "sqnr_db": _ratio_db(signal, noise),
    }


def _ratio_db(signal: float, noise: float) -> float:
    """10 * log10(signal / noise) without dividing by or taking the log of zero."""
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)
