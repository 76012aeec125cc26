"""GGUF levels through llama.cpp: its quantizer's files, its kernels' scores against PyTorch's, Ollama's Modelfile."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import pytest

from benchmarks.takeaway import without_microbudget
from microbudget_core import kinds
from microbudget_core import export, pipeline
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.labs import llm_quantization, specialist
from microbudget_core.measure import MeasureConfig
from microbudget_core.models import CAUSAL_LM, TEXT
from microbudget_core.runs import RunStore
from microbudget_core.runtimes import llamacpp
from microbudget_core.training import TrainConfig
from test_cli import cli

QUICK = MeasureConfig(memory=False, latency_runs=3, warmup=1, prompt="The film was", new_tokens=8)
LEVELS = ["GGUF F32", "GGUF Q8_0", "GGUF Q4_K_M", "GGUF Q2_K"]


@pytest.fixture()
def texts_id(sentiment_csv) -> str:
    return f"csv:{sentiment_csv}"


def stored_bytes(tensor: gguf.ReaderTensor) -> int:
    """What a tensor's type says it takes: whole blocks of the type's size."""
    block, size = gguf.GGML_QUANT_SIZES[tensor.tensor_type]
    return int(tensor.n_elements) // block * size


def test_each_level_is_what_its_file_holds_and_f32_matches_pytorch(tiny_gguf_llama, texts_id, tmp_path):
    sweep = llm_quantization.run_levels(str(tiny_gguf_llama), texts_id, LEVELS, texts=30, measure_config=QUICK)
    assert [llm_quantization.level_of(run) for run in sweep.runs] == LEVELS and not sweep.skipped
    sizes = []
    for run in sweep.runs:
        file = Path(run.artifact_path) / llamacpp.FILE
        reader = gguf.GGUFReader(file)
        assert run.result.report["tensor_types"] == llamacpp.tensor_types(file)
        held = sum(stored_bytes(tensor) for tensor in reader.tensors)
        assert held == sum(int(tensor.n_bytes) for tensor in reader.tensors)
        # The file is its header (metadata, vocabulary) then the tensors, each aligned to 32 bytes.
        assert 0 <= file.stat().st_size - reader.data_offset - held <= 32 * len(reader.tensors)
        sizes.append(file.stat().st_size)
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 3 * sizes[-1]
    f32, q8, q4, q2 = sweep.runs
    assert set(f32.result.report["tensor_types"]) == {"F32"} and "Q8_0" in q8.result.report["tensor_types"]
    assert "Q4_K" in q4.result.report["tensor_types"] and "Q2_K" in q2.result.report["tensor_types"]  # 256 wide: no fallback
    # llama.cpp's F32 file scores the same texts' same tokens as PyTorch, and generates the same greedy tokens.
    assert f32.ratios["perplexity"] == pytest.approx(1.0, abs=2e-3)
    assert f32.result.fidelity == 1.0 and f32.result.completion == f32.baseline.completion
    assert all(run.result.perplexity > 1 and run.result.tokens_per_s > 0 for run in sweep.runs)
    rows = llm_quantization.level_rows(sweep.runs)
    assert [row.backend for row in rows] == ["PyTorch"] + ["llama.cpp"] * 4
    assert rows[-1].bits < rows[2].bits < rows[1].bits == 32
    # The live box runs a stored level on llama.cpp: the same greedy text as when it was measured.
    pieces = list(llm_quantization.stream(str(tiny_gguf_llama), q4.run_id, QUICK.prompt, QUICK.new_tokens))
    assert len(pieces) > 1 and "".join(pieces).strip() and q4.result.completion.startswith("".join(pieces))
    # Taken away: the file, an Ollama Modelfile that names it with the chat template, and the commands.
    folder = export.export_run(q4, tmp_path / "export")
    modelfile = (folder / "Modelfile").read_text()
    assert modelfile.startswith(f"FROM ./{llamacpp.FILE}\n") and "<|im_start|>{{ .Role }}" in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    card = (folder / export.CARD_NAME).read_text()
    assert "ollama create" in card and "ollama run" in card and (folder / llamacpp.FILE).exists()
    # llama.cpp (the engine Ollama runs) opens the exported file without microbudget: the same greedy tokens.
    prompt = [1, 504, 1296]
    found = without_microbudget(f"""
from llama_cpp import Llama
model = Llama(model_path="export/{llamacpp.FILE}", n_ctx=64, n_threads=2, verbose=False)
tokens = model.generate({prompt}, top_k=1, temp=0.0)
print(json.dumps([next(tokens) for _ in range(6)]))
""", tmp_path)
    app = llamacpp.greedy(llamacpp.load(Path(q4.artifact_path)), prompt)
    assert found == [next(app) for _ in range(6)]


def test_the_cli_contract(tiny_gguf_llama, texts_id):
    done = cli("run", "--model", str(tiny_gguf_llama), "--dataset", texts_id, "--language-model", "--technique", "gguf",
               "--set", "level=Q4_K_M", "--eval-limit", "20", "--json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["result"]["size_bytes"] < run["baseline"]["size_bytes"] and run["ratios"]["size"] > 1
    assert run["result"]["perplexity"] > 0 and run["ratios"]["perplexity"] > 0 and run["result"]["tokens_per_s"] > 0
    assert sum(run["result"]["tensor_types"].values()) == len(gguf.GGUFReader(
        Path(run["artifact_path"]) / llamacpp.FILE).tensors)


def test_without_a_llama_cpp_build_one_message_says_why_and_pytorch_levels_remain(tiny_gguf_llama, texts_id,
                                                                                  monkeypatch):
    monkeypatch.setattr(llamacpp, "missing", lambda: "llama.cpp failed to build during the setup (its log: x).")
    assert llm_quantization.default_levels() == llm_quantization.PYTORCH_LEVELS
    request = pipeline.Request(str(tiny_gguf_llama), texts_id, [("gguf", {"level": "Q8_0"})], 10, CAUSAL_LM)
    with pytest.raises(MicrobudgetError, match="failed to build") as error:
        pipeline.run_pipeline(request, RunStore(), QUICK)
    assert "make setup" in error.value.fix


def test_gguf_starts_from_the_model_as_loaded(tiny_gguf_llama, texts_id):
    request = pipeline.Request(str(tiny_gguf_llama), texts_id, [("weight-only", {"bits": 4}), ("gguf", {})], 10,
                               CAUSAL_LM)
    with pytest.raises(MicrobudgetError, match="as loaded"):
        pipeline.run_pipeline(request, RunStore(), QUICK)
    with pytest.raises(MicrobudgetError, match="level='Q9' is out of range"):  # before any slow work
        pipeline.run_pipeline(pipeline.Request(str(tiny_gguf_llama), texts_id, [("gguf", {"level": "Q9"})], 10,
                                               CAUSAL_LM), RunStore(), QUICK)


def test_the_contest_deploys_the_fastest_level_within_ten_percent_perplexity(tiny_gguf_llama, tiny_text_model,
                                                                             texts_id, monkeypatch):
    monkeypatch.setattr(kinds.get(TEXT), "RECIPE", TrainConfig(epochs=1, learning_rate=1e-3))
    llm = str(tiny_gguf_llama)
    assert specialist.deployed_level(llm, texts_id) is None  # no sweep yet: the LLM as loaded
    sweep = llm_quantization.run_levels(llm, texts_id, ["GGUF F32", "GGUF Q8_0"], texts=20, measure_config=QUICK)
    within = [run for run in sweep.runs if run.ratios["perplexity"] <= specialist.PERPLEXITY_KEPT]
    chosen = specialist.deployed_level(llm, texts_id)
    assert chosen == max(within, key=lambda run: run.result.tokens_per_s)
    runs = specialist.run_contest(texts_id, [llm], shots=2, specialist=str(tiny_text_model), eval_limit=20,
                                  measure_config=QUICK)
    assert [step["technique"] for step in runs[1].steps] == ["gguf", "few-shot"]
    rows = specialist.contest_rows(runs)
    level = llm_quantization.level_of(chosen)
    assert [row.contender for row in rows][2:] == [f"{llm} zero-shot", f"{llm} {level} 2-shot"]
    assert [row.accuracy for row in rows][2:] == [runs[1].baseline.accuracy, runs[1].result.accuracy]
    assert all(row.p50_ms > 0 for row in rows)
    # The llama.cpp classifier reloads from its artifact and answers as it did when measured.
    from microbudget_core.runs import load_run_model

    reloaded = load_run_model(runs[1])
    assert reloaded.runtime.ID == llamacpp.ID and reloaded.preprocess.shots
    texts = ["the film was good", "the film was awful"]
    assert reloaded.predict(texts).shape == (2,)
