"""Shared fixtures: tiny models and datasets built locally, and a private data folder per test."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers

POSITIVE = "good great excellent superb wonderful delightful brilliant moving".split()
NEGATIVE = "bad awful boring dull terrible tedious clumsy weak".split()
FILLER = "the film movie plot actors story was is a an and but with this".split()

# Pages open on the committed results snapshot where the data folder has nothing; a test sees it only where it asks
# for it (subprocesses, such as the browser tests' server, inherit this).
os.environ["MICROBUDGET_SNAPSHOT"] = "off"
# The suite checks behaviour, not speed: two timing rounds a window rather than five (measure.timing_rounds). Tests of
# the yardstick's own rounds give theirs.
os.environ["MICROBUDGET_TIMING_ROUNDS"] = "2"

# The suite's one wall-clock limit: a guard against a hang, never a measure of speed. Every subprocess, every wait
# for a page and each test (pytest-timeout) gets it. A loaded machine ran the suite at a third of its usual pace
# (56 minutes instead of 19); this stays under CI's 90 minutes, so a hang still ends with a traceback.
HANG_GUARD_S = 60 * 60


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pytest-timeout's per-test limit is the hang guard too (it replaces pyproject's `timeout`)."""
    for item in items:
        item.add_marker(pytest.mark.timeout(HANG_GUARD_S))


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own MICROBUDGET_HOME, so no test sees another's runs or caches."""
    home = tmp_path_factory.mktemp("microbudget-home")
    monkeypatch.setenv("MICROBUDGET_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # tests never reach for the network
    return home


def sentiment_rows(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """A learnable two-class text task: the class decides which sentiment words appear."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.sample(POSITIVE if label == "pos" else NEGATIVE, 2) + rng.sample(FILLER, 5)
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


@pytest.fixture(scope="session")
def sentiment_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    path.write_text("text,label\n" + "".join(f"{text},{label}\n" for text, label in sentiment_rows(240)))
    return path


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT with a word-level vocabulary, saved like any hub model folder."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def save_tiny_bert(folder: Path, **config: float) -> Path:
    """The tiny BERT into `folder`; `config` overrides BertConfig's defaults (e.g. its dropout)."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(POSITIVE + NEGATIVE + FILLER))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    settings = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                                       **config)
    torch.manual_seed(0)
    transformers.BertModel(settings).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_mpnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer MPNet (another family and tokenizer than the tiny BERT), saved like any hub model folder."""
    folder = tmp_path_factory.mktemp("tiny-mpnet")
    vocab = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"] + sorted(set(POSITIVE + NEGATIVE + FILLER))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    transformers.MPNetTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = transformers.MPNetConfig(vocab_size=len(vocab), hidden_size=48, num_hidden_layers=2,
                                      num_attention_heads=2, intermediate_size=96, max_position_embeddings=66)
    torch.manual_seed(0)
    transformers.MPNetModel(config).save_pretrained(folder)
    return folder


def tiny_llama(folder: Path, zero_head: bool = False) -> Path:
    """A 2-layer Llama with a word-level vocabulary (the sentiment words and labels), tied head, 128 positions."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(POSITIVE + NEGATIVE + FILLER + ["pos", "neg"]))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = transformers.LlamaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2, intermediate_size=64,
                                      max_position_embeddings=128, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    if zero_head:
        with torch.no_grad():
            model.lm_head.weight.zero_()  # tied: every logit is 0, every next token equally likely
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_gguf_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with SmolLM2's real BPE tokenizer (read from the bundled GGUF), 256 wide (whole K-quant
    blocks), which llama.cpp's converter takes; larger weights than the default init, so greedy choices are clear."""
    from microbudget_core.support.assets import SMOLLM2, asset_path

    gguf = asset_path(SMOLLM2)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    folder = tmp_path_factory.mktemp("tiny-gguf-llama")
    config = transformers.LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, intermediate_size=512,
                                      max_position_embeddings=256, tie_word_embeddings=True, initializer_range=0.2,
                                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # A tokenizer read from a GGUF saves the GGUF itself as its "slow" tokenizer.model; tokenizer.json is the real one.
    (folder / "tokenizer.model").unlink(missing_ok=True)
    return folder


def pick_model_and_texts(at: Any, key: str, model: str, dataset: str) -> None:
    """An LLM page's pickers (AppTest): "other…", then the model folder and the dataset id typed in."""
    at.selectbox(key=f"{key}_model").set_value("other…").run()
    at.text_input(key=f"{key}_model_other").input(model).run()
    at.selectbox(key=f"{key}_dataset").set_value("other…").run()
    at.text_input(key=f"{key}_dataset_other").input(dataset).run()


def charts_have_data(at: Any) -> bool:
    """Every plotly chart on the page (AppTest) has a trace with points."""
    charts = [json.loads(c.proto.spec)["data"] for c in at.get("plotly_chart")]
    return bool(charts) and all(any(len(trace.get("y", [])) for trace in chart) for chart in charts)


SPOKEN = ["the cat sat on the mat", "ten of clubs", "a quiet evening by the river", "he was not an ill man",
          "small models can be fast", "the film was long and dull"]


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Whisper (d_model 64) with tiny.en's real tokenizer, processor and generation config."""
    from microbudget_core.support.assets import WHISPER_TINY_EN, asset_path
    from microbudget_core.models.whisper_ct2 import convert

    real = convert([asset_path(WHISPER_TINY_EN)], asset_path(WHISPER_TINY_EN).parent,
                   tmp_path_factory.mktemp("tiny-en") / "converted")
    folder = tmp_path_factory.mktemp("tiny-whisper")
    config = transformers.WhisperConfig.from_pretrained(real)
    config.update(dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                       decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128))
    torch.manual_seed(0)
    transformers.WhisperForConditionalGeneration(config).save_pretrained(folder)
    transformers.WhisperProcessor.from_pretrained(real).save_pretrained(folder)
    transformers.GenerationConfig.from_pretrained(real).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def spoken_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six flite clips and a file,text CSV: an audio:PATH dataset."""
    import subprocess

    folder = tmp_path_factory.mktemp("clips")
    for n, text in enumerate(SPOKEN):
        subprocess.run(["flite", "-voice", "kal16", "-t", text, "-o", str(folder / f"clip{n}.wav")], check=True,
                       timeout=HANG_GUARD_S)
    (folder / "transcripts.csv").write_text("file,text\n" + "".join(f"clip{n}.wav,{t}\n" for n, t in enumerate(SPOKEN)))
    return folder
