"""Every page through Streamlit's AppTest: no exception, and the content a person would look for."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import ui
from conftest import HANG_GUARD_S

ROOT = Path(__file__).resolve().parent.parent


def page(path: str) -> AppTest:
    return AppTest.from_file(str(ROOT / path), default_timeout=HANG_GUARD_S)


def test_home_lists_the_methods_and_the_offline_defaults():
    at = page("app.py").run()
    assert not at.exception
    methods = at.table[0].value
    assert len(methods) == 6 and "Quantization (int8, 8/4/2-bit)" in set(methods.index)
    assert at.selectbox(key="model_choice").value == "minilm-l6"
    assert "rotten-tomatoes" in at.selectbox(key="dataset_choice_text").options[0]


def test_home_plots_the_runs_so_far_on_the_latest_dataset():
    _stored("minilm-l6", "dynamic-int8", 0.80, 60.0, 14.0, None)
    at = page("app.py").run()
    assert not at.exception and "Runs so far on rotten-tomatoes" in [h.value for h in at.subheader]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert sum(len(trace.get("x") or []) for trace in spec["data"]) >= 2  # the original and the int8 run


def test_home_offers_vision_datasets_for_the_vision_model():
    at = page("app.py").run()
    at.selectbox(key="model_choice").set_value("mobilenet-v2").run()
    assert not at.exception
    assert at.selectbox(key="dataset_choice_image").value == "mnist-5k"


def _choose(at: AppTest, model: str, dataset: str) -> AppTest:
    at.selectbox(key="model_choice").set_value(ui.OTHER).run()
    at.text_input(key="model_other").input(model)
    at.selectbox(key="dataset_choice_text").set_value(ui.OTHER).run()
    at.text_input(key="dataset_other").input(dataset)
    return at.run()


def test_quantization_page_runs_and_plots_original_vs_result(tiny_text_model, sentiment_csv):
    at = _choose(page("views/quantization.py").run(),
                 str(tiny_text_model), f"csv:{sentiment_csv}")
    at.slider[0].set_value(50)
    at.button[0].click().run()
    assert not at.exception and not at.error
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    bars = [trace for trace in figure["data"] if trace["type"] == "bar"]
    assert len(bars) == 4
    assert all(len(bar["y"]) == 2 and all(v > 0 for v in bar["y"]) for bar in bars[:3])
    size_original, size_int8 = bars[0]["y"]
    assert size_int8 < size_original
    assert [m.label for m in at.metric][:2] == ["Size", "Latency p50 (batch 1)"]
    table = at.dataframe[0].value
    assert {"accuracy", "size_bytes", "latency_ms_p50"} <= set(table.index)
    assert all(pd.api.types.is_numeric_dtype(dtype) for dtype in table.dtypes)  # Arrow needs typed columns
    assert table.loc["size_bytes", "dynamic-int8"] < table.loc["size_bytes", "original"]

    compare = page("views/compare.py").run()
    assert not compare.exception
    table = compare.dataframe[0].value
    assert list(table["technique"]) == ["original", "dynamic-int8"]
    assert table["$ per 1M"].gt(0).all() and table["size MB"].iloc[1] < table["size MB"].iloc[0]
    traces = json.loads(compare.get("plotly_chart")[0].proto.spec)["data"]
    points = [y for trace in traces if trace["mode"] == "markers" for y in trace["y"]]
    assert len(points) == 4  # the original and the run, in each of the two panels
    assert "Ship" in compare.success[0].value  # no limits set: the most accurate is named


@pytest.mark.parametrize("model, message", [("someone/not-a-model", "unreachable"),
                                            ("/no/such/folder", "not a model folder")])
def test_quantization_page_explains_a_bad_model_in_one_error_box(model, message, sentiment_csv):
    at = _choose(page("views/quantization.py").run(), model,
                 f"csv:{sentiment_csv}")
    at.button[0].click().run()
    assert not at.exception
    assert len(at.error) == 1 and message in at.error[0].value


def test_compare_page_says_when_there_are_no_runs():
    at = page("views/compare.py").run()
    assert not at.exception
    assert "No runs yet" in at.info[0].value


def test_quantization_page_passes_the_knobs_to_the_technique(tiny_text_model, sentiment_csv):
    at = _choose(page("views/quantization.py").run(), str(tiny_text_model), f"csv:{sentiment_csv}")
    at.multiselect[0].set_value(["onnx-int8-dynamic"]).run()
    at.checkbox(key="step0.per_channel").uncheck()
    at.selectbox(key="step0.preset").set_value("avx2")
    at.slider[0].set_value(50)
    at.button[0].click().run()
    assert not at.exception and not at.error
    notes = [info.value for info in at.info]
    assert any("avx2 preset (chosen by you), per-channel off" in note for note in notes)
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["data"]


def test_quantization_page_sweep_plots_accuracy_and_size_against_bits(tiny_text_model, sentiment_csv):
    at = _choose(page("views/quantization.py").run(), str(tiny_text_model), f"csv:{sentiment_csv}")
    at.slider[0].set_value(50)
    at.button[1].click().run()
    assert not at.exception and not at.error
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    lines = [trace for trace in figure["data"] if trace["name"] == "weight-only"]
    assert len(lines) == 3 and all(trace["x"] == [2, 3, 4, 8] for trace in lines)  # accuracy, size, latency
    sizes = lines[1]["y"]
    assert sizes == sorted(sizes)  # fewer bits, fewer megabytes
    int8 = {trace["name"] for trace in figure["data"] if trace["x"] == [8] and trace["mode"] == "markers"}
    assert int8 == {"dynamic-int8", "onnx-int8-dynamic"}
    assert len(figure["layout"]["shapes"]) == 3  # the original as a reference line in each panel
    assert len(at.dataframe[-1].value) == 6


def test_quantization_page_explains_one_layer_and_reacts_to_the_bits(tiny_text_model, sentiment_csv):
    at = _choose(page("views/quantization.py").run(), str(tiny_text_model), f"csv:{sentiment_csv}")
    assert not at.exception and not at.error
    layer = at.selectbox(key="explain_layer")
    assert layer.index == len(layer.options) // 2 and layer.value.startswith("bert.encoder.layer.1")  # mid-network

    def shown() -> tuple[float, dict]:
        sqnr = next(m.value for m in at.metric if m.label == "SQNR")
        return float(sqnr.removesuffix(" dB")), json.loads(at.get("plotly_chart")[-1].proto.spec)

    sqnr_8bit, figure = shown()
    bars = [trace for trace in figure["data"] if trace["type"] == "bar"]
    assert len(bars) == 2 and all(sum(bar["y"]) > 0 for bar in bars)  # histograms before and after
    assert any(trace["type"] == "scatter" and trace["x"] for trace in figure["data"])  # the grid
    assert "8-bit symmetric, per-tensor" in figure["layout"]["title"]["text"]

    at.slider(key="explain_bits").set_value(2).run()
    assert not at.exception
    sqnr_2bit, figure = shown()
    assert sqnr_2bit < sqnr_8bit - 20
    assert "2-bit symmetric, per-tensor" in figure["layout"]["title"]["text"]

    at.radio(key="explain_granularity").set_value("per-channel").run()
    assert shown()[0] > sqnr_2bit
    assert "widest of" in at.caption[-1].value


def test_transfer_page_trains_shows_curves_confusion_and_tries_a_sentence(tiny_text_model, sentiment_csv):
    at = _choose(page("views/transfer.py").run(), str(tiny_text_model), f"csv:{sentiment_csv}")
    assert not at.exception
    at.selectbox(key="transfer_strategy").set_value("finetune-full").run()
    at.number_input(key="transfer.finetune-full.epochs").set_value(2)
    at.slider(key="transfer_eval").set_value(50)
    at.button[0].click().run()
    assert not at.exception and not at.error
    labels = [m.label for m in at.metric]
    assert labels[:3] == ["Eval accuracy", "Training time", "Trained parameters"]
    figures = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    curves = next(f for f in figures if f["layout"]["annotations"][0]["text"] == "Training loss")
    assert curves["data"] and all(len(trace["x"]) >= 1 for trace in curves["data"])
    confusion = next(f for f in figures if f["data"][0]["type"] == "heatmap")
    from microbudget_core.data import DatasetSpec, load_dataset

    eval_size = min(50, len(load_dataset(DatasetSpec(f"csv:{sentiment_csv}")).eval))
    assert sum(map(sum, confusion["data"][0]["z"])) == eval_size  # every eval example counted once
    at.text_input(key="transfer_try").input("a great superb film").run()
    assert not at.exception and not at.error
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")  # the probabilities


def test_transfer_page_data_efficiency_curve(tiny_text_model, sentiment_csv):
    at = _choose(page("views/transfer.py").run(), str(tiny_text_model), f"csv:{sentiment_csv}")
    at.slider(key="transfer_eval").set_value(50)
    counts = at.multiselect(key=f"curve_counts_csv:{sentiment_csv}_False")
    assert counts.value == [4, 16]  # a few dozen sentences per class: the small budgets, quick by default
    assert at.multiselect(key="curve_strategies_False").value == ["finetune-head", "from-scratch"]
    at.radio(key="curve_full").set_value("full").run()  # the full budget: the benchmarks' five points, 3 strategies
    assert at.multiselect(key=f"curve_counts_csv:{sentiment_csv}_True").value == [2, 4, 8, 16, 0]
    assert len(at.multiselect(key="curve_strategies_True").value) == 3
    at.radio(key="curve_full").set_value("quick").run()
    at.multiselect(key=f"curve_counts_csv:{sentiment_csv}_False").set_value([8, 32])
    at.button[1].click().run()
    assert not at.exception and not at.error
    figure = json.loads(at.get("plotly_chart")[-1].proto.spec)
    lines = {trace["name"]: trace for trace in figure["data"]}
    assert set(lines) == {"finetune-head", "from-scratch"}
    assert all(trace["x"] == [8, 32] for trace in lines.values())  # examples per class actually used
    assert all(0 <= y <= 100 for trace in lines.values() for y in trace["y"])


def _stored(model: str, technique: str, accuracy: float, size_mb: float, latency: float, artifact: Path | None):
    from microbudget_core.runs import Run, RunStore

    metrics = {"accuracy": 0.82, "size_bytes": 90e6, "latency_ms_p50": 20.0, "throughput_per_s": 100.0,
               "params": 22e6, "macro_f1": 0.82, "eval_examples": 1000}
    result = {**metrics, "accuracy": accuracy, "size_bytes": size_mb * 1e6, "latency_ms_p50": latency}
    return RunStore().add(Run(model, "rotten-tomatoes", "text-classification",
                              [{"technique": technique, "config": {}}], metrics, result, {"size": 1, "latency": 1},
                              str(artifact) if artifact else None, labels=["rotten", "fresh"]))


def test_compare_page_recommends_within_limits_and_deletes_on_confirmation(private_home):
    artifact = private_home / "artifacts" / "saved-run"
    artifact.mkdir(parents=True)
    (artifact / "microbudget.json").write_text("{}")
    kept = _stored("minilm-l6", "onnx-int8-dynamic", 0.81, 24.0, 8.0, artifact)
    _stored("minilm-l6", "weight-only", 0.70, 12.0, 15.0, None)  # its files are gone
    at = page("views/compare.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["artifact"]) == ["original", "saved", "missing"]
    assert list(table["Pareto (latency)"]) == [True, True, False]  # weight-only: slower and less accurate
    at.number_input(key="limit_size").set_value(30.0).run()
    assert "Ship onnx-int8-dynamic" in at.success[0].value
    at.number_input(key="limit_size").set_value(5.0).run()
    assert "No run meets the size limit" in at.warning[0].value
    at.selectbox(key="compare_run").set_value(kept.run_id).run()
    at.button(key="confirm_delete").click().run()
    assert not at.exception
    from microbudget_core.runs import RunStore

    assert RunStore().get(kept.run_id) is None and not artifact.exists()
