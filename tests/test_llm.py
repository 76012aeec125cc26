"""Language models: levels, perplexity, constrained label scoring, context limits and both LLM pages (tiny Llama)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from streamlit.testing.v1 import AppTest

from conftest import HANG_GUARD_S, charts_have_data, pick_model_and_texts, tiny_llama
from microbudget_core import kinds
from microbudget_core import cli, quant_math
from microbudget_core.labs import llm_quantization, specialist
from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.measure import MeasureConfig
from microbudget_core.models import CAUSAL_LM, TEXT, ModelSpec, load_model
from microbudget_core.runs import RunStore
from microbudget_core.models.llm import Generation, complete, perplexity
from microbudget_core.techniques import few_shot
from microbudget_core.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
QUICK = MeasureConfig(memory=False, latency_runs=3, warmup=1, prompt="the film was", new_tokens=4)


@pytest.fixture()
def texts_id(sentiment_csv) -> str:
    return f"csv:{sentiment_csv}"


def test_a_tiny_llama_loads_as_a_language_model_and_as_a_zero_shot_classifier(tiny_causal_lm, texts_id):
    lm = load_model(ModelSpec(str(tiny_causal_lm)))
    assert lm.task == CAUSAL_LM and lm.preprocess.max_length == 128
    dataset = load_dataset(DatasetSpec(texts_id))
    classifier = load_model(ModelSpec(str(tiny_causal_lm)), dataset.label_names, TEXT)
    assert classifier.task == TEXT and classifier.labels == dataset.label_names
    assert classifier.logits(dataset.eval.inputs[:3]).shape == (3, 2)
    # One load of the weights, whoever asks: as loaded, as the LM baseline (with labels), as a classifier.
    as_baseline = load_model(ModelSpec(str(tiny_causal_lm)), dataset.label_names, CAUSAL_LM)
    assert classifier.model.lm is lm.model is as_baseline.model


def test_perplexity_of_a_model_that_predicts_nothing_is_the_vocabulary_size(tmp_path):
    bundle = load_model(ModelSpec(str(tiny_llama(tmp_path / "uniform", zero_head=True))))
    vocabulary = bundle.model.config.vocab_size
    assert perplexity(bundle, ["the film was good", "a dull plot and weak actors"]) == pytest.approx(vocabulary,
                                                                                                      rel=1e-4)


@torch.no_grad()
def test_perplexity_is_the_exponent_of_the_mean_token_loss(tiny_causal_lm):
    bundle = load_model(ModelSpec(str(tiny_causal_lm)))
    texts = ["the film was good", "a dull plot and weak actors but the story is moving"]
    # by hand: every predicted token's negative log-likelihood, pooled over both texts
    losses = []
    for text in texts:
        ids = bundle.preprocess.tokenizer(text, return_tensors="pt").input_ids
        log_probs = torch.log_softmax(bundle.model(input_ids=ids).logits[0, :-1], dim=-1)
        losses += [-float(log_probs[i, ids[0, i + 1]]) for i in range(ids.shape[1] - 1)]
    assert perplexity(bundle, texts, batch_size=2) == pytest.approx(math.exp(np.mean(losses)), rel=1e-4)


@torch.no_grad()
def test_constrained_scoring_picks_the_label_with_the_highest_log_likelihood(tiny_causal_lm, texts_id):
    dataset = load_dataset(DatasetSpec(texts_id))
    classifier = load_model(ModelSpec(str(tiny_causal_lm)), dataset.label_names, TEXT)
    lm, tokenizer = classifier.model.lm, classifier.preprocess.tokenizer
    texts = dataset.eval.inputs[:6]
    expected = np.zeros((len(texts), len(dataset.label_names)))
    for row, text in enumerate(texts):
        prompt = tokenizer(classifier.preprocess.prompt(text)).input_ids
        for column, label in enumerate(dataset.label_names):
            answer = tokenizer(" " + label, add_special_tokens=False).input_ids
            ids = torch.tensor([prompt + answer])
            log_probs = torch.log_softmax(lm(input_ids=ids).logits[0], dim=-1)
            expected[row, column] = sum(float(log_probs[len(prompt) + i - 1, token]) for i, token in enumerate(answer))
    np.testing.assert_allclose(classifier.logits(texts), expected, atol=1e-4)
    assert (classifier.predict(texts) == expected.argmax(axis=1)).all()


def test_few_shot_takes_examples_in_turn_from_each_class_of_the_train_split(tiny_causal_lm, texts_id):
    dataset = load_dataset(DatasetSpec(texts_id))
    classifier = load_model(ModelSpec(str(tiny_causal_lm)), dataset.label_names, TEXT)
    shown = few_shot.apply(classifier, few_shot.Config(shots=4), dataset)
    shots = shown.preprocess.shots
    assert [label for _, label in shots] == [dataset.label_names[0], dataset.label_names[1]] * 2
    assert all(text in dataset.train.inputs for text, _ in shots) and classifier.preprocess.shots == ()
    assert all(f"Text: {text}\nAnswer: {label}" in shown.preprocess.prompt("x") for text, label in shots)
    refused = "few-shot does not apply .* a causal language model.*Pick a language model .* and a text dataset"
    with pytest.raises(MicrobudgetError, match=refused):
        few_shot.apply(load_model(ModelSpec(str(tiny_causal_lm))), few_shot.Config(), dataset)


def test_a_prompt_longer_than_the_context_gives_a_clear_message(tiny_causal_lm, texts_id):
    dataset = load_dataset(DatasetSpec(texts_id))
    classifier = load_model(ModelSpec(str(tiny_causal_lm)), dataset.label_names, TEXT)
    with pytest.raises(MicrobudgetError, match="longer than the model's context of 128"):
        few_shot.apply(classifier, few_shot.Config(shots=16), dataset)  # 16 examples of ~12 tokens
    lm = load_model(ModelSpec(str(tiny_causal_lm)))
    with pytest.raises(MicrobudgetError, match="exceeds the model's context of 128"):
        list(Generation(lm, "the film " * 62, 8))


def test_generation_is_greedy_streams_pieces_and_stops_when_asked(tiny_causal_lm):
    lm = load_model(ModelSpec(str(tiny_causal_lm)))
    done = complete(lm, "the film was", 6, stop_at_end=False)
    ids = lm.preprocess.tokenizer("the film was", return_tensors="pt").input_ids
    reference = lm.model.generate(ids, max_new_tokens=6, min_new_tokens=6, do_sample=False,
                                  pad_token_id=lm.preprocess.tokenizer.pad_token_id)
    assert done.tokens == reference[0, ids.shape[1]:].tolist() and len(done.seconds) == 6
    pieces = Generation(lm, "the film was", 50, stop_at_end=False)
    first_two = list(itertools.islice(pieces, 2))  # a reader stopping after two pieces
    assert len(first_two) == 2 and len(pieces.tokens) == 2


def test_each_pytorch_level_runs_and_its_packed_size_is_what_the_bit_count_predicts(tiny_causal_lm, texts_id):
    levels = [level for level in llm_quantization.LEVELS if llm_quantization.backend(level) == "PyTorch"]
    sweep = llm_quantization.run_levels(str(tiny_causal_lm), texts_id, levels, group_size=16, texts=20,
                                        measure_config=QUICK)
    assert [llm_quantization.level_of(run) for run in sweep.runs] == levels and not sweep.skipped
    fp32 = load_model(ModelSpec(str(tiny_causal_lm))).model
    matrices = [m.weight for m in fp32.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Embedding))]
    matrices = list({id(w): w for w in matrices}.values())  # the tied head and table once
    other_bytes = 4 * sum(p.numel() for p in fp32.parameters() if all(p is not w for w in matrices))
    for run in sweep.runs:
        bits = llm_quantization.LEVELS[llm_quantization.level_of(run)][0]
        assert math.isfinite(run.result.perplexity) and run.result.tokens_per_s > 0
        assert run.result.completion and run.ratios["perplexity"] > 0
        if run.steps[0]["technique"] != "weight-only":
            continue
        predicted = other_bytes
        for weight in matrices:
            rows, columns = weight.shape
            width, groups = quant_math.group_layout(columns, 16)
            predicted += math.ceil(rows * width * groups * bits / 8) + rows * groups * 3  # codes, fp16 scale, zero
        with safe_open(Path(run.artifact_path) / "model.safetensors", "pt") as stored:
            held = sum(stored.get_tensor(key).nbytes for key in stored.keys())
        assert held == predicted
    rows = llm_quantization.level_rows(sweep.runs)
    assert rows[0].level == llm_quantization.ORIGINAL and rows[0].x_smaller == 1
    sizes = {row.level: row.size_mb for row in rows}
    assert sizes["2-bit"] < sizes["4-bit"] < sizes["8-bit"] < sizes[llm_quantization.ORIGINAL]
    assert llm_quantization.latest_levels(str(tiny_causal_lm), texts_id) == sweep.runs


def test_a_stored_level_reloads_and_generates_what_it_generated_when_measured(tiny_gguf_llama, texts_id):
    # Not the word-level Llama: its first greedy token is [SEP], where a stream stops before any text.
    sweep = llm_quantization.run_levels(str(tiny_gguf_llama), texts_id, ["4-bit"], texts=20, measure_config=QUICK)
    run = sweep.runs[0]
    pieces = list(llm_quantization.stream(str(tiny_gguf_llama), run.run_id, QUICK.prompt, QUICK.new_tokens))
    assert len(pieces) > 1 and "".join(pieces).strip() and run.result.completion.startswith("".join(pieces))
    with pytest.raises(MicrobudgetError, match="prompt is empty"):
        llm_quantization.stream(str(tiny_gguf_llama), "", "  ", 4)


def test_the_contest_measures_specialist_and_llm_on_the_same_texts(tiny_causal_lm, tiny_text_model, texts_id, monkeypatch):
    monkeypatch.setattr(kinds.get(TEXT), "RECIPE", TrainConfig(epochs=1, learning_rate=1e-3))
    runs = specialist.run_contest(texts_id, [str(tiny_causal_lm)], shots=2, specialist=str(tiny_text_model), eval_limit=30,
                               measure_config=QUICK)
    rows = specialist.contest_rows(runs)
    assert [row.contender.split()[-1] for row in rows] == ["fine-tuned", "onnx-int8-dynamic", "zero-shot",
                                                              "2-shot"]
    assert {run.result.eval_examples for run in runs} == {30}
    # Each contender's row carries its own run's measurement: the specialist's two, then the LLM's two.
    assert [row.accuracy for row in rows] == [runs[0].baseline.accuracy, runs[0].result.accuracy,
                                              runs[1].baseline.accuracy, runs[1].result.accuracy]
    assert all(row.cost_per_million > 0 for row in rows)
    assert "x faster per text" in specialist.contest_headline(rows)
    assert specialist.latest_contest(texts_id) == runs
    with pytest.raises(MicrobudgetError, match="not a causal language model"):
        specialist.run_contest(texts_id, [str(tiny_text_model)], specialist=str(tiny_text_model), measure_config=QUICK)
    assert len(RunStore().list()) == 2  # refused before any slow work: nothing more stored


def test_the_cli_measures_a_language_model_by_perplexity(tiny_causal_lm, texts_id, capsys):
    code = cli.main(["run", "--model", str(tiny_causal_lm), "--dataset", texts_id, "--language-model", "--technique",
                     "weight-only", "--set", "bits=4", "--eval-limit", "20", "--no-memory", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["result"]["perplexity"] > 0 and "perplexity" in out["ratios"] and out["result"]["completion"]
    # The classification pages never list a language model's runs (they have no accuracy); `runs` does.
    assert not RunStore().list() and [r.run_id for r in RunStore().list(quality=None)] == [out["run_id"]]
    assert cli.main(["run", "--model", "minilm-l6", "--dataset", texts_id, "--language-model"]) == 2
    assert "not a causal language model" in capsys.readouterr().err


def test_llm_quantization_page_runs_both_backends_and_generates_with_a_gguf_level(tiny_gguf_llama, texts_id):
    at = AppTest.from_file(str(ROOT / "views" / "llm_quantization.py"), default_timeout=HANG_GUARD_S).run()
    assert not at.exception
    assert list(at.multiselect(key="llmq_levels").value) == list(llm_quantization.TALK_LEVELS)
    pick_model_and_texts(at, "llmq", str(tiny_gguf_llama), texts_id)
    assert any("No levels" in info.value for info in at.info)
    at.multiselect(key="llmq_levels").set_value(["GGUF Q4_K_M", "4-bit"])
    at.slider(key="llmq_texts").set_value(50)
    at.slider(key="llmq_tokens").set_value(8)
    at.button[0].click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["level"]) == [llm_quantization.ORIGINAL, "GGUF Q4_K_M", "4-bit"]
    assert list(table["backend"]) == ["PyTorch", "llama.cpp", "PyTorch"] and "Q4_K x" in table["tensor types"][1]
    assert (table["perplexity"] > 0).all() and charts_have_data(at)
    traces = [trace for chart in at.get("plotly_chart") for trace in json.loads(chart.proto.spec)["data"]]
    assert {trace.get("name") for trace in traces} >= {"llama.cpp", "PyTorch"}
    runs = llm_quantization.latest_levels(str(tiny_gguf_llama), texts_id)
    at.selectbox(key="llmq_live_level").set_value(next(r.run_id for r in runs if r.steps[0]["technique"] == "gguf"))
    at.button(key="llmq_generate").click().run()
    assert not at.exception and not at.error


def test_specialist_page_with_tiny_models(tiny_causal_lm, tiny_text_model, texts_id, monkeypatch):
    monkeypatch.setattr(kinds.get(TEXT), "RECIPE", TrainConfig(epochs=1, learning_rate=1e-3))
    at = AppTest.from_file(str(ROOT / "views" / "specialist.py"), default_timeout=HANG_GUARD_S).run()
    assert not at.exception
    pick_model_and_texts(at, "spec", str(tiny_causal_lm), texts_id)
    assert any(o.startswith("mpnet-base") for o in at.selectbox(key="spec_specialist").options)  # the large one
    at.selectbox(key="spec_specialist").set_value("other…").run()
    at.text_input(key="spec_specialist_other").input(str(tiny_text_model)).run()
    at.slider(key="spec_shots").set_value(2)
    at.slider(key="spec_eval").set_value(50)
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert len(at.dataframe[0].value) == 4 and charts_have_data(at)
    assert any("x cheaper per prediction" in m.value for m in at.markdown)
