"""RTN quantization math: hand-computed scales and codes, error bounds, groups, bit packing, sizes."""

from __future__ import annotations

import math

import pytest
import torch

from microbudget_core.quant_math import (dequantize, dequantize_groups, pack_bits, packed_bytes, quantize,
                                         quantize_groups, reconstruction_error, scale_zero_point, unpack_bits)

EPS = 1e-6  # float32 slack on the S/2 bound


def test_asymmetric_8bit_by_hand():
    x = torch.tensor([-1.0, 0.0, 0.5, 1.0])
    scale, zero = scale_zero_point(x, 8, symmetric=False)
    assert scale.shape == zero.shape == (1,)
    assert scale.dtype == zero.dtype == torch.float32
    assert scale.item() == pytest.approx(2 / 255)
    assert zero.item() == 128  # round(1 / S) = round(127.5), a tie broken to even
    codes, _, _ = quantize(x, 8, symmetric=False)
    # -1/S = -127.5 rounds to -127 -> 1; 0 -> z; 0.5/S = 63.75 -> 64 -> 192; 1/S = 127.5 -> clamped to 255.
    assert codes.tolist() == [1, 128, 192, 255]
    assert codes.dtype == torch.uint8
    restored = dequantize(codes, scale, zero)
    assert restored[1].item() == 0.0  # zero is exactly representable
    assert (restored - x).abs().max().item() <= scale.item() / 2 + EPS


def test_symmetric_8bit_by_hand():
    x = torch.tensor([-1.0, 0.0, 0.5, 1.0])
    scale, zero = scale_zero_point(x, 8, symmetric=True)
    assert scale.item() == pytest.approx(1 / 127)
    assert zero.item() == 128
    codes, _, _ = quantize(x, 8, symmetric=True)
    assert codes.tolist() == [1, 128, 128 + round(0.5 * 127), 255]
    assert (dequantize(codes, scale, zero) - x).abs().max().item() <= scale.item() / 2 + EPS


def test_two_bit_asymmetric_is_exact_on_its_grid():
    x = torch.tensor([0.0, 1.0, 2.0, 3.0])
    codes, scale, zero = quantize(x, 2, symmetric=False)
    assert scale.item() == 1.0 and zero.item() == 0.0
    assert codes.tolist() == [0, 1, 2, 3]
    assert torch.equal(dequantize(codes, scale, zero), x)


def test_per_row_shapes_and_all_zero_row():
    x = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 3.0]])
    for symmetric in (False, True):
        codes, scale, zero = quantize(x, 4, symmetric)
        assert scale.shape == zero.shape == (2, 1)
        assert scale[0].item() == 1.0  # guarded, not 0
        restored = dequantize(codes, scale, zero)
        assert torch.isfinite(restored).all()
        assert torch.equal(restored[0], x[0])


@pytest.mark.parametrize("symmetric", [False, True])
def test_round_trip_within_half_step_and_error_grows_as_bits_shrink(symmetric):
    weight = torch.randn(32, 64, generator=torch.Generator().manual_seed(0))
    errors = []
    for bits in (8, 4, 3, 2):
        codes, scale, zero = quantize(weight, bits, symmetric)
        restored = dequantize(codes, scale, zero)
        assert ((restored - weight).abs() <= scale / 2 + EPS).all()
        errors.append(reconstruction_error(weight, restored)["mse"])
    assert errors == sorted(errors) and errors[0] < errors[-1]


@pytest.mark.parametrize("bits", [8, 4, 3, 2])
@pytest.mark.parametrize("symmetric", [False, True])
def test_groups_round_trip_with_padding(bits, symmetric):
    weight = torch.randn(8, 50, generator=torch.Generator().manual_seed(bits))
    codes, scales, zeros = quantize_groups(weight, bits, 16, symmetric)
    assert codes.shape == (8, 64) and codes.dtype == torch.uint8
    assert scales.shape == zeros.shape == (8, 4)
    assert scales.dtype == torch.float16 and zeros.dtype == torch.uint8
    restored = dequantize_groups(codes, scales, zeros, 16, 50)
    assert restored.shape == weight.shape and restored.dtype == torch.float32
    # Per-element bound against the stored (float16) scale of each element's group.
    bound = scales.float().repeat_interleave(16, dim=1)[:, :50] / 2
    assert ((restored - weight).abs() <= bound + EPS).all()


def test_per_channel_is_one_group_per_row():
    weight = torch.randn(4, 30, generator=torch.Generator().manual_seed(1))
    codes, scales, zeros = quantize_groups(weight, 4, -1, symmetric=False)
    assert codes.shape == (4, 30) and scales.shape == zeros.shape == (4, 1)
    restored = dequantize_groups(codes, scales, zeros, -1, 30)
    assert reconstruction_error(weight, restored)["relative"] < 0.15


def test_groups_beat_rows_with_an_outlier_segment():
    weight = torch.randn(16, 64, generator=torch.Generator().manual_seed(2)) * 0.02
    weight[3, :16] *= 100  # one row has a loud segment that inflates its per-row scale
    per_row = dequantize_groups(*quantize_groups(weight, 4, -1, False), -1, 64)
    per_group = dequantize_groups(*quantize_groups(weight, 4, 16, False), 16, 64)
    row_err = reconstruction_error(weight[3], per_row[3])["relative"]
    group_err = reconstruction_error(weight[3], per_group[3])["relative"]
    assert group_err < row_err
    assert reconstruction_error(weight, per_group)["mse"] < reconstruction_error(weight, per_row)["mse"]


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("count", [1, 7, 333])
def test_pack_unpack_round_trip(bits, count):
    codes = torch.randint(0, 2**bits, (count,), generator=torch.Generator().manual_seed(count), dtype=torch.uint8)
    packed = pack_bits(codes, bits)
    assert packed.dtype == torch.uint8 and packed.dim() == 1
    assert packed.numel() == math.ceil(count * bits / 8)
    assert torch.equal(unpack_bits(packed, bits, count), codes)


def test_pack_layouts_by_hand():
    assert pack_bits(torch.tensor([1, 2], dtype=torch.uint8), 4).tolist() == [0x12]
    assert pack_bits(torch.tensor([0, 1, 2, 3], dtype=torch.uint8), 2).tolist() == [0b00011011]
    assert pack_bits(torch.arange(8, dtype=torch.uint8), 3).numel() == 3  # 8 codes x 3 bits = 3 bytes
    assert torch.equal(pack_bits(torch.tensor([7, 200], dtype=torch.uint8), 8), torch.tensor([7, 200],
                                                                                          dtype=torch.uint8))


def test_pack_rejects_codes_too_wide():
    with pytest.raises(ValueError, match=r"codes must be below 2\*\*2, found 4"):
        pack_bits(torch.tensor([4], dtype=torch.uint8), 2)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_packed_bytes_matches_real_storage(bits):
    weight = torch.randn(64, 100, generator=torch.Generator().manual_seed(3))
    codes, scales, zeros = quantize_groups(weight, bits, 32, symmetric=False)
    real = pack_bits(codes, bits).numel() + scales.numel() * scales.element_size() + zeros.numel()
    assert packed_bytes(64, 100, bits, 32) == real
    assert packed_bytes(64, 100, 4, -1) == 64 * 100 // 2 + 64 * 3


def test_reconstruction_error_metrics():
    original = torch.tensor([3.0, 4.0])
    exact = reconstruction_error(original, original)
    assert exact["mse"] == 0 and exact["max_abs"] == 0 and exact["relative"] == 0
    assert exact["sqnr_db"] == math.inf
    off = reconstruction_error(original, torch.tensor([3.0, 3.5]))
    assert off["mse"] == pytest.approx(0.125)
    assert off["max_abs"] == pytest.approx(0.5)
    assert off["relative"] == pytest.approx(0.5 / 5)
    assert off["sqnr_db"] == pytest.approx(10 * math.log10(25 / 0.25))
    silent = reconstruction_error(torch.zeros(3), torch.ones(3))
    assert silent["relative"] == math.inf and silent["sqnr_db"] == -math.inf


@pytest.mark.parametrize("bits", [0, 1, 9, 16])
def test_invalid_bits_raise(bits):
    x = torch.ones(2, 4)
    message = rf"bits must be an integer in 2\.\.8, got {bits}"
    with pytest.raises(ValueError, match=message):
        scale_zero_point(x, bits, False)
    with pytest.raises(ValueError, match=message):
        quantize(x, bits, True)
    with pytest.raises(ValueError, match=message):
        quantize_groups(x, bits, 2, False)
    with pytest.raises(ValueError, match=message):
        pack_bits(torch.zeros(4, dtype=torch.uint8), bits)
    with pytest.raises(ValueError, match=message):
        packed_bytes(2, 4, bits, 2)
