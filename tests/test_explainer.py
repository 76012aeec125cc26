"""The quantization explainer: hand-computed scales, zero-points and grids, error trends, layers, the figure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from microbudget_core import explainer, plots
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.explainer import explain, explain_layer, layers

# Row 0 spans [-1, 2], row 1 spans [-0.5, 1]; flattened: -1, 0, 2, 0.5, 1, -0.5.
W = torch.tensor([[-1.0, 0.0, 2.0], [0.5, 1.0, -0.5]])


def test_per_tensor_asymmetric_8bit_by_hand():
    e = explain(W, 8, symmetric=False, per_channel=False)
    # S = (2 - -1) / 255 = 1/85, z = round(1 / S) = 85.
    assert e.scales.tolist() == [pytest.approx(1 / 85)] and e.zero_points.tolist() == [85]
    assert (e.channel, e.scale, e.zero_point) == (0, pytest.approx(1 / 85), 85)
    # 0.5 / S = 42.5 and -0.5 / S = -42.5 round to even (42, -42); the other weights land on levels exactly.
    assert e.restored.tolist() == pytest.approx([-1, 0, 2, 42 / 85, 1, -42 / 85], abs=1e-6)
    assert len(e.grid) == 256 and e.grid[0] == pytest.approx(-1) and e.grid[-1] == pytest.approx(2)
    assert np.diff(e.grid) == pytest.approx(np.full(255, 1 / 85), rel=1e-4)  # float32 differences


def test_per_tensor_symmetric_2bit_by_hand():
    e = explain(W, 2, symmetric=True, per_channel=False)
    # S = max|x| / (2**1 - 1) = 2, z = 2: levels (q - 2) * 2 for q = 0..3.
    assert (e.scale, e.zero_point) == (2.0, 2)
    assert e.grid.tolist() == [-4, -2, 0, 2]
    # Everything within S/2 = 1 of 0 collapses to 0 (-1/2 and 1/2 are ties, rounded to even 0); only 2 survives.
    assert e.restored.tolist() == [0, 0, 2, 0, 0, 0]
    # signal = 1 + 4 + 0.25 + 1 + 0.25 = 6.5, noise = 1 + 0.25 + 1 + 0.25 = 2.5
    assert e.error["relative"] == pytest.approx(math.sqrt(2.5 / 6.5))
    assert e.error["max_abs"] == 1.0


def test_per_channel_asymmetric_2bit_fits_each_row_exactly():
    per_tensor = explain(W, 2, symmetric=False, per_channel=False)
    per_channel = explain(W, 2, symmetric=False, per_channel=True)
    # Row 0: S = 3/3 = 1, z = round(1 * 3 / 3) = 1. Row 1: S = 1.5/3 = 0.5, z = round(0.5 * 3 / 1.5) = 1.
    assert per_channel.scales.tolist() == [1.0, 0.5] and per_channel.zero_points.tolist() == [1, 1]
    assert per_channel.channel == 0  # the widest row
    assert per_channel.grid.tolist() == [-1, 0, 1, 2]
    assert per_channel.restored.tolist() == W.flatten().tolist()  # row 1 sits on its own grid -0.5, 0, 0.5, 1
    assert per_channel.error["sqnr_db"] == math.inf
    # One shared S = 1 rounds row 1's 0.5 and -0.5 to 0.
    assert per_tensor.restored.tolist() == [-1, 0, 2, 0, 1, 0]
    assert per_tensor.error["mse"] == pytest.approx(0.5 / 6)


def test_per_channel_symmetric_8bit_by_hand():
    e = explain(W, 8, symmetric=True, per_channel=True)
    assert e.scales.tolist() == pytest.approx([2 / 127, 1 / 127]) and e.zero_points.tolist() == [128, 128]
    # -1 / (2/127) = -63.5 rounds to even -64: the code below -1, (64 - 128) * 2/127 = -128/127.
    assert e.restored[0] == pytest.approx(-128 / 127)
    assert e.restored[3] == pytest.approx(64 / 127)  # 0.5 / (1/127) = 63.5 -> 64 on row 1's finer grid
    assert e.grid[[0, 128, 255]].tolist() == pytest.approx([-256 / 127, 0, 2])


def test_bytes_as_stored():
    symmetric = explain(W, 8, symmetric=True, per_channel=False)
    assert (symmetric.stored_bytes, symmetric.fp32_bytes) == (6 + 4, 24)  # 6 one-byte codes + one fp32 S
    asymmetric = explain(W, 2, symmetric=False, per_channel=True)
    assert asymmetric.stored_bytes == 2 + 2 * 8  # 12 bits of codes in 2 bytes + fp32 S and z per row


def test_per_channel_beats_per_tensor_when_rows_differ_in_range():
    torch.manual_seed(0)
    weight = torch.randn(16, 64) * torch.logspace(-3, 0, 16).unsqueeze(1)  # row ranges over three decades
    for bits in (4, 8):
        per_tensor = explain(weight, bits, symmetric=True, per_channel=False).error
        per_channel = explain(weight, bits, symmetric=True, per_channel=True).error
        assert per_channel["mse"] < per_tensor["mse"]
        assert per_channel["sqnr_db"] > per_tensor["sqnr_db"] + 3


def test_two_bits_lose_far_more_than_eight():
    torch.manual_seed(0)
    weight = torch.randn(64, 64)
    two, eight = (explain(weight, bits, symmetric=False, per_channel=False).error for bits in (2, 8))
    assert two["relative"] > 20 * eight["relative"]
    assert two["sqnr_db"] < eight["sqnr_db"] - 30


def test_large_weight_is_sampled_for_the_histogram_but_measured_whole(monkeypatch):
    monkeypatch.setattr(explainer, "MAX_SAMPLE", 100)
    torch.manual_seed(0)
    weight = torch.randn(50, 40)
    e = explain(weight, 4, symmetric=True, per_channel=False)
    assert len(e.original) == len(e.restored) == 100
    assert np.isin(e.original, weight.numpy()).all()
    assert np.abs(e.original - e.restored).max() <= e.scale / 2 + 1e-6  # the same positions after the round trip
    again = explain(weight, 4, symmetric=True, per_channel=False)
    assert np.array_equal(e.original, again.original)  # a steady sample, so the histogram does not flicker
    # The error is over all 2000 weights: per-tensor with one S, so it equals quant_math's on the whole tensor.
    from microbudget_core.quant_math import dequantize, quantize, reconstruction_error
    whole = weight.reshape(1, -1)
    assert e.error == reconstruction_error(whole, dequantize(*quantize(whole, 4, True)))


def test_explain_never_changes_or_exposes_the_weight():
    weight = torch.nn.Linear(3, 2).weight
    before = weight.detach().clone()
    e = explain(weight, 2, symmetric=False, per_channel=True)
    e.original[:] = 0
    assert torch.equal(weight.detach(), before)


def test_bits_outside_two_to_eight_are_refused():
    with pytest.raises(ValueError, match="bits"):
        explain(W, 1, symmetric=True, per_channel=False)


def test_layers_lists_linear_and_conv_weights_in_order():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.ReLU(),
                                torch.nn.Linear(8, 4), torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2))
    assert layers(model) == {"0": (8, 3, 3, 3), "3": (4, 8), "5": (2, 4)}
    e = explain_layer(model, "0", 8, symmetric=True, per_channel=True)
    assert len(e.scales) == 8  # one per output channel of the conv
    assert len(e.original) == 8 * 3 * 3 * 3


def test_pretrained_model_loads_a_bare_encoder_and_explains_a_bad_id(tiny_text_model, tmp_path):
    network = explainer.pretrained_model(str(tiny_text_model))  # no classification head of its own
    assert "bert.encoder.layer.0.attention.self.query" in layers(network)
    with pytest.raises(MicrobudgetError, match="not a usable"):
        explainer.pretrained_model(str(tmp_path))


def _bars_and_grid(figure):
    bars = [trace for trace in figure.data if trace.type == "bar"]
    grid = [trace for trace in figure.data if trace.type == "scatter"]
    assert len(bars) == 2 and len(grid) == 1
    return bars, [x for x in grid[0].x if x is not None][::3]


def test_figure_histograms_before_and_after_with_the_grid():
    torch.manual_seed(0)
    e = explain(torch.randn(64, 64), 2, symmetric=False, per_channel=False)
    figure = plots.explainer_figure(e)
    (before, after), levels = _bars_and_grid(figure)
    assert sum(before.y) == sum(after.y) == 64 * 64
    assert levels == pytest.approx(e.grid.tolist())  # all 4 levels drawn
    # Bins are aligned to the grid: on a coarse grid each level sits at the centre of a bin.
    centres = np.asarray(after.x)
    assert all(np.isclose(centres, level, atol=1e-9 + 1e-6 * e.scale).any() for level in e.grid[1:])
    assert np.count_nonzero(before.y) > 30  # the original keeps its shape
    assert "2-bit asymmetric, per-tensor" in figure.layout.title.text
    assert f"SQNR {e.error['sqnr_db']:.1f} dB" in figure.layout.title.text


def test_figure_bins_hold_whole_levels_of_a_fine_grid():
    torch.manual_seed(0)
    e = explain(torch.randn(64, 64), 8, symmetric=False, per_channel=False)
    after = plots.explainer_figure(e).data[1]
    left = np.asarray(after.x) - np.asarray(after.width) / 2
    inside = (left > e.grid[0]) & (left + after.width < e.grid[-1])
    levels_per_bin = {int(((e.grid >= a) & (e.grid < a + w)).sum()) for a, w in zip(left[inside], after.width)}
    assert len(levels_per_bin) == 1  # the same number of levels in every bin: no comb pattern
    assert sum(after.y) == 64 * 64


def test_figure_thins_out_an_8bit_grid():
    torch.manual_seed(0)
    e = explain(torch.randn(64, 64), 8, symmetric=True, per_channel=True)
    figure = plots.explainer_figure(e)
    (before, after), levels = _bars_and_grid(figure)
    assert len(levels) <= plots.MAX_GRID_LINES and levels == pytest.approx(e.grid[::4].tolist())
    assert f"channel {e.channel}" in figure.data[2].name and "1 in 4" in figure.data[2].name
    assert len(before.x) <= 2 * plots.EXPLAINER_BINS and sum(after.y) == 64 * 64
