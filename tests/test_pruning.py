"""Pruning on tiny local models: structured pruning removes heads, neurons and channels (and reloads and exports with
its new shapes), recovery trains it back, unstructured pruning only zeroes weights; the lab and its page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from conftest import HANG_GUARD_S, charts_have_data
from test_distill import QUICK, dataset, teacher  # noqa: F401 (fixtures): the same tiny teacher and task
from microbudget_core import kinds, techniques, training
from microbudget_core.labs import pruning
from microbudget_core.models import TEXT, count_params
from microbudget_core.models.bundle import IMAGE, ModelBundle
from microbudget_core.models.vision import MobileNetV2, preprocessor_for
from microbudget_core.saved import load_saved
from microbudget_core.support.errors import MicrobudgetError

ROOT = Path(__file__).resolve().parent.parent


def apply(technique_id: str, bundle: ModelBundle, dataset=None, **settings) -> ModelBundle:
    technique = techniques.get(technique_id)
    config = techniques.make_config(technique, {k: str(v) for k, v in settings.items()})
    return technique.apply(bundle, config, dataset, lambda *a, **k: None)


def same_after_reload_and_export(bundle: ModelBundle, inputs: list, tmp_path) -> None:
    reloaded = load_saved(bundle.save(tmp_path / "saved"))
    np.testing.assert_allclose(reloaded.logits(inputs), bundle.logits(inputs), atol=1e-5)
    exported = apply("onnx", bundle)  # ONNX Runtime's fused attention told the pruned head count
    np.testing.assert_allclose(exported.logits(inputs), bundle.logits(inputs), atol=1e-3)


@pytest.mark.parametrize("width", [False, True])
def test_structured_pruning_removes_heads_and_neurons_and_the_result_reloads_and_exports(teacher, dataset, width,
                                                                                         tmp_path):
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    pruned = apply("prune", teacher, ratio=0.5, recover="none", width=width)
    assert all(torch.equal(before[k], v) for k, v in teacher.model.state_dict().items())  # the original untouched
    layer = pruned.model.bert.encoder.layer[0]
    assert layer.attention.self.num_attention_heads == 1 and layer.attention.self.query.out_features == 16
    assert layer.intermediate.dense.out_features == 32
    assert pruned.model.config.hidden_size == (16 if width else 32)
    assert count_params(pruned.model) < count_params(teacher.model)
    report = pruned.meta["report"]
    assert report["heads_per_layer"] == 1 and report["params_after_pruning"] == count_params(pruned.model)
    same_after_reload_and_export(pruned, dataset.eval.inputs[:16], tmp_path)


def test_channel_pruning_of_a_mobilenet_reloads_and_exports(tmp_path):
    torch.manual_seed(0)
    network = ModelBundle(MobileNetV2(num_classes=3).eval(), IMAGE, ["a", "b", "c"], preprocessor_for(32), "m",
                          {"family": "mobilenet-v2", "num_classes": 3, "width_mult": 1.0, "image_size": 32})
    pruned = apply("prune", network, ratio=0.5, recover="none")
    assert pruned.meta["report"]["conv_channels"] < 0.6 * sum(
        m.out_channels for m in network.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert pruned.model.classifier[-1].out_features == 3  # the classes stay
    images = [np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(4)]
    same_after_reload_and_export(pruned, images, tmp_path)


def test_recovery_trains_the_pruned_model_back_and_the_control_uses_labels_only(teacher, dataset):
    recovered = apply("prune", teacher, dataset, ratio=0.5, epochs=2, learning_rate=3e-3)
    report = recovered.meta["report"]
    assert report["recovery"] == "distill" and 0 <= report["val_accuracy_before_recovery"] <= 1
    assert recovered.meta["notes"][0].startswith("Pruned 50%") and recovered.meta["notes"][1].startswith("Distilled")
    assert training.accuracy_on(recovered, dataset.eval) > 0.7  # a learnable task: recovered on it
    control = apply("prune", teacher, dataset, ratio=0.5, epochs=1, recover="labels")
    assert control.meta["notes"][1].startswith("Hard-label control")


def test_unstructured_pruning_zeroes_weights_but_keeps_every_shape(teacher):
    sparse = apply("prune-unstructured", teacher, ratio=0.5)
    shapes = {k: v.shape for k, v in teacher.model.state_dict().items()}
    assert {k: v.shape for k, v in sparse.model.state_dict().items()} == shapes
    report = sparse.meta["report"]
    assert report["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert report["compressed_bytes"] < report["compressed_bytes_before"]
    assert not any(bool((v == 0).all()) for v in teacher.model.state_dict().values() if v.is_floating_point())


@pytest.mark.parametrize("settings, message", [
    ({"scope": "global"}, "Use scope=per-layer"),
    ({"ratio": 1.0}, "ratio"),
    ({"importance": "taylor"}, "importance"),
])
def test_bad_pruning_settings_are_explained(teacher, dataset, settings, message):
    with pytest.raises(MicrobudgetError, match=message):
        apply("prune", teacher, dataset, **settings)


def test_a_quantized_model_is_refused(teacher):
    quantized = apply("dynamic-int8", teacher, backend="torch.ao")
    with pytest.raises(MicrobudgetError, match="Put prune before quantization"):
        apply("prune", quantized, recover="none")


def open_page(model: str, dataset: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "views" / "pruning.py"), default_timeout=HANG_GUARD_S)
    at.session_state["model_choice"], at.session_state["model_other"] = "other…", model
    at.session_state["dataset_choice_text"], at.session_state["dataset_other"] = "other…", dataset
    return at.run()


def test_pruning_page_measures_each_ratio_beside_unstructured_and_the_int8_chain(tiny_text_model, sentiment_csv,
                                                                                 monkeypatch):
    monkeypatch.setattr(kinds.get(TEXT), "RECIPE", QUICK)
    at = open_page(str(tiny_text_model), f"csv:{sentiment_csv}")
    assert not at.exception
    at.multiselect(key="prune_ratios").set_value([0.5])
    at.checkbox(key="prune_int8").check()
    at.slider(key="prune_eval").set_value(50)
    at.button(key="prune_run").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["method"]) == ["original", pruning.STRUCTURED, pruning.UNSTRUCTURED, pruning.CHAINED]
    original, structured, unstructured, chained = table.to_dict("records")
    assert structured["params (M)"] < original["params (M)"] and chained["accuracy"] > 0
    assert unstructured["size MB"] == pytest.approx(original["size MB"], rel=0.02)
    assert unstructured["x smaller compressed"] > 1  # its zeros count only once compressed
    assert any("Structured pruning of 50%" in md.value and "Unstructured pruning of 50%" in md.value
               for md in at.markdown)
    assert charts_have_data(at)
