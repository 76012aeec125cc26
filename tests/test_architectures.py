"""Architectures: smaller variants built in the project, multiply-adds counted, the same budget for each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from conftest import HANG_GUARD_S
from microbudget_core.labs.architectures import (Architecture, Budget, choices, compare_architectures, defaults,
                                                hub_architecture, multiply_adds)
from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.measure import MeasureConfig
from microbudget_core.models import ModelSpec, count_params, load_model
from microbudget_core.saved import load_saved
from microbudget_core.models.bundle import IMAGE, ModelBundle
from microbudget_core.models.variants import keep_layers, narrow
from microbudget_core.models.vision import MobileNetV2, preprocessor_for

ROOT = Path(__file__).resolve().parent.parent
FAST = MeasureConfig(memory=False, warmup=1, latency_runs=3)


@pytest.fixture
def text(tiny_text_model, sentiment_csv):
    dataset = load_dataset(DatasetSpec(f"csv:{sentiment_csv}"))
    return load_model(ModelSpec(str(tiny_text_model)), dataset.label_names, "text-classification"), dataset


def test_keeping_every_layer_changes_nothing_and_fewer_layers_shrink_the_model(text, tmp_path):
    bundle, dataset = text
    texts = dataset.eval.inputs[:8]
    same = keep_layers(bundle, [0, 1])
    np.testing.assert_allclose(same.logits(texts), bundle.logits(texts), atol=1e-5)
    one = keep_layers(bundle, [1])
    assert one.model.config.num_hidden_layers == 1 and bundle.model.config.num_hidden_layers == 2  # a copy
    assert count_params(one.model) < count_params(bundle.model)
    # The head keeps the embeddings' slice and layer 1's slice of the original head.
    head = bundle.model.classifier.weight
    assert torch.equal(one.model.classifier.weight, torch.cat([head[:, :32], head[:, 64:96]], 1))
    reloaded = load_saved(one.save(tmp_path / "one"))
    np.testing.assert_allclose(reloaded.logits(texts), one.logits(texts), atol=1e-6)
    for bad in ([], [2], [1, 0], [0, 0]):
        with pytest.raises(MicrobudgetError, match="Cannot keep layers"):
            keep_layers(bundle, bad)


def test_a_narrower_mobilenet_has_fewer_weights_and_refuses_other_models():
    model = MobileNetV2(num_classes=3).eval()
    meta = {"family": "mobilenet-v2", "num_classes": 3, "width_mult": 1.0, "image_size": 32}
    bundle = ModelBundle(model, IMAGE, ["a", "b", "c"], preprocessor_for(32), "mobilenet", meta)
    half = narrow(bundle, 0.5, from_teacher=False)
    assert half.meta["width_mult"] == 0.5 and bundle.meta["width_mult"] == 1.0
    assert count_params(half.model) < count_params(bundle.model) / 2
    assert multiply_adds(half, 224) < multiply_adds(bundle, 224) / 2
    with pytest.raises(MicrobudgetError, match="out of range"):
        narrow(bundle, 2.0, from_teacher=False)
    with pytest.raises(MicrobudgetError, match="needs a MobileNetV2 or a BERT"):
        narrow(ModelBundle(torch.nn.Linear(4, 3), IMAGE, ["a", "b", "c"], preprocessor_for(32), "linear"), 0.5, True)


def test_multiply_adds_of_a_tiny_bert_match_the_hand_count(text):
    bundle, _ = text
    tokens, hidden, inner, layers = 64, 32, 64, 2
    linear = tokens * (4 * hidden * hidden + 2 * hidden * inner)  # Q, K, V, output; the two feed-forward layers
    attention = 2 * tokens * tokens * hidden  # Q K^T and the weighted sum of V
    head = hidden * (layers + 1) * 2  # the layer-mean head: 3 slices of 32 into 2 labels
    assert multiply_adds(bundle) == layers * (linear + attention) + head


def test_every_architecture_gets_the_same_budget_and_one_row(tiny_text_model, sentiment_csv):
    candidates = [hub_architecture(str(tiny_text_model)),
                  Architecture("tiny / 1 layer", "one layer", str(tiny_text_model), lambda b: keep_layers(b, [1]))]
    messages = []
    rows = compare_architectures(candidates, f"csv:{sentiment_csv}", Budget(examples_per_class=20, epochs=2),
                                 FAST, progress=lambda f, m, **_: messages.append(m))
    assert [r["architecture"] for r in rows] == [str(tiny_text_model), "tiny / 1 layer"]
    assert all(r["train_examples"] == 40 for r in rows)  # 20 per class each
    assert rows[1]["params"] < rows[0]["params"] and rows[1]["multiply_adds"] < rows[0]["multiply_adds"]
    assert all(r["accuracy"] == pytest.approx(np.trace(r["confusion_matrix"]) / np.sum(r["confusion_matrix"]))
               and r["latency_ms_p50"] > 0 for r in rows)  # each row's accuracy is that of its own predictions
    assert any("tiny / 1 layer" in m for m in messages)


def test_a_head_only_budget_trains_only_the_head_on_frozen_features(tiny_text_model, sentiment_csv):
    architecture = hub_architecture(str(tiny_text_model))
    rows = compare_architectures([architecture], f"csv:{sentiment_csv}", Budget(examples_per_class=20, weights="head"),
                                 FAST)
    matrix = rows[0]["confusion_matrix"]
    assert rows[0]["train_examples"] == 40 and rows[0]["accuracy"] == pytest.approx(np.trace(matrix) / np.sum(matrix))
    assert rows[0]["multiply_adds_published"] is None  # not a fully convolutional network


def test_the_image_defaults_are_the_pretrained_networks_and_the_random_ones_are_controls():
    assert [a.id for a in defaults(IMAGE)] == ["mobilenet-v2", "efficientnet-lite0", "efficientnet-lite1",
                                              "efficientnet-lite2"]
    controls = [a for a in choices(IMAGE) if not a.default]
    assert controls and all("random" in a.id and "what pretraining is worth" in a.description for a in controls)


def test_architectures_page_plots_what_it_measured(tiny_text_model, sentiment_csv):
    at = AppTest.from_file(str(ROOT / "views" / "architectures.py"), default_timeout=HANG_GUARD_S).run()
    assert not at.exception
    assert any(o.startswith("minilm-l6 / 2 layers") for o in at.multiselect(key="arch_models_text").options)
    assert len(at.dataframe[0].value) >= 5  # the quoted figures
    at.multiselect(key="arch_models_text").set_value([])
    at.text_input(key="arch_extra_text").input(str(tiny_text_model))
    at.text_input(key="arch_dataset_other_text").input(f"csv:{sentiment_csv}")
    at.number_input(key="arch_examples").set_value(8)
    at.number_input(key="arch_epochs").set_value(1)
    at.button[0].click().run()
    assert not at.exception and not at.error
    traces = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert all(len(trace["x"]) == 1 and trace["y"][0] > 0 for trace in traces)
    assert at.dataframe[0].value["params (M)"].iloc[0] > 0
