"""Integration on the real offline assets: loading, checksums and real predictions (the default baselines' full
trainings and their accuracy floors are the benchmark scripts')."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from microbudget_core.support import assets
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.models import ModelSpec, load_model
from test_cli import cli

pytestmark = pytest.mark.slow


def test_minilm_loads_as_a_classifier_for_the_dataset_labels():
    bundle = load_model(ModelSpec("minilm-l6"), ["fresh", "rotten"], "text-classification")
    assert bundle.labels == ["fresh", "rotten"] and not bundle.head_trained
    assert 22_000_000 < sum(p.numel() for p in bundle.model.parameters()) < 23_500_000


@pytest.mark.parametrize("asset, model, task", [(assets.MINILM, "minilm-l6", "text-classification"),
                                                (assets.EFFICIENTNET_LITE2, "efficientnet-lite2", "image-classification")])
def test_a_corrupt_weights_file_is_caught_by_its_checksum(asset, model, task, tmp_path, monkeypatch):
    weights = tmp_path / asset.relative_path
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"not a weights file")
    monkeypatch.setattr(assets, "package_dir", lambda package: tmp_path)
    with pytest.raises(MicrobudgetError, match="does not match its published sha256"):
        load_model(ModelSpec(model), ["neg", "pos"], task)


# MiniLM-L6's default baseline (a full fine-tune on 11k snippets, ~4 minutes) is trained and held to its floor by
# benchmarks/run.py; here the CLI goes end to end on MobileNetV2 and MNIST, and MiniLM's path is checked below
# without its training.
@pytest.mark.parametrize("model, dataset, floor", [("mobilenet-v2", "mnist-5k", 0.95)])
def test_cli_dynamic_int8_on_the_offline_defaults(model, dataset, floor):
    started = time.perf_counter()
    done = cli("run", "--model", model, "--dataset", dataset, "--technique", "dynamic-int8", "--json")
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads(done.stdout)
    baseline, result = run["baseline"], run["result"]
    assert baseline["accuracy"] >= floor, f"baseline accuracy {baseline['accuracy']}"
    # This run built the baseline (nothing else here trains this model): its training is part of the run's time.
    assert baseline["eval_examples"] == 1000 and 0 < baseline["train_seconds"] <= elapsed
    assert result["accuracy"] >= floor - 0.03 and result["fidelity"] >= 0.9
    assert baseline["peak_rss_mb"] and result["peak_rss_mb"]
    # One Linear layer in a CNN: the size barely moves, and the run says why.
    assert 0.97 < run["ratios"]["size"] < 1.03 and "barely changes this model" in run["notes"][0]


def test_smollm2_loads_from_its_gguf_and_packs_to_under_a_third_in_4_bits(tmp_path):
    from microbudget_core import techniques
    from microbudget_core.data import DatasetSpec, load_dataset
    from microbudget_core.models.llm import perplexity

    lm = load_model(ModelSpec("smollm2-135m"))  # converted from its GGUF in this test's empty data folder
    params = sum(p.numel() for p in lm.model.parameters())
    assert type(lm.model).__name__ == "LlamaForCausalLM" and 130e6 < params
    texts = load_dataset(DatasetSpec("rotten-tomatoes")).eval.inputs[:20]
    weight_only = techniques.get("weight-only")
    sizes, perplexities = {}, {}
    for bits in (32, 4, 2):
        bundle = lm if bits == 32 else weight_only.apply(
            lm, weight_only.Config(bits=bits, group_size=32, skip_head=False, embeddings=True))
        folder = bundle.save(tmp_path / str(bits))
        sizes[bits] = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        perplexities[bits] = perplexity(bundle, texts)
    # The fp32 folder is its weights and small files: no copy of the GGUF as the tokenizer's vocab file.
    assert not list((tmp_path / "32").rglob("tokenizer.model")) and sizes[32] <= 4 * params + 5e6
    assert sizes[4] <= 0.3 * sizes[32] and sizes[2] < sizes[4]
    assert perplexities[32] < perplexities[4] < perplexities[2]  # 2 bits blows up, as the 2-bit row shows


def test_the_bundled_smollm2_quantizes_in_llama_cpp_with_its_real_tensor_types(tmp_path):
    from microbudget_core.runtimes import llamacpp
    from microbudget_core.techniques import gguf

    source = assets.asset_path(assets.SMOLLM2)  # sha256-checked
    target = tmp_path / llamacpp.FILE
    gguf.quantize(source, target, "Q4_K_M")
    types = llamacpp.tensor_types(target)
    # 576 wide: most matrices cannot hold whole 256-value K-quant blocks and fall back to Q5_0.
    assert sum(types.values()) == 272 and types["Q5_0"] > types.get("Q4_K", 0) > 0
    assert "rows of 576 values" in gguf.fallback_note(target, "Q4_K_M")
    model = llamacpp.GgufModel(target, threads=2)
    assert target.stat().st_size <= 0.25 * 4 * llamacpp.parameter_count(model)  # the floor against fp32
    tokens = [next(model.greedy([1, 504, 1296])) for _ in range(2)]
    assert tokens[0] == tokens[1] and 0 <= tokens[0] < 49152  # greedy is deterministic over a cached prefix


@pytest.mark.parametrize("model", ["whisper-tiny.en", "whisper-base"])
def test_both_bundled_whispers_transcribe_the_recorded_clips_under_the_wer_floor(model):
    """The converted CTranslate2 files transcribe the 10 recorded clips: WER at most 10% (7.7% / 6.6% measured)."""
    from microbudget_core.data import DatasetSpec, load_dataset
    from microbudget_core.data.audio import POCKETSPHINX
    from microbudget_core.kinds.speech_recognition import error_rate
    from microbudget_core.models.speech import transcribe

    bundle = load_model(ModelSpec(model))
    assert bundle.task == "speech-recognition" and bundle.parameter_count() > 37e6
    clips = load_dataset(DatasetSpec("speech-clips")).eval
    heard = [transcribe(bundle, clip).text for clip in clips.inputs]
    assert len(heard) == 10 and (POCKETSPHINX / "librivox").is_dir()
    assert error_rate(list(clips.labels), heard) <= 0.10, heard
    assert "dashwood had then leisure to consider" in heard[0].lower()


def test_a_corrupt_whisper_part_is_caught_by_its_checksum(tmp_path, monkeypatch):
    part = assets.WHISPER_BASE[1]
    copy = tmp_path / part.package / part.relative_path
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"not the second half of whisper base")
    monkeypatch.setattr(assets, "package_dir", lambda package: tmp_path / package)
    with pytest.raises(MicrobudgetError, match="does not match its published sha256"):
        assets.asset_path(part)


def test_efficientnet_lite0_head_only_on_the_real_photos_reloads_with_its_predictions(tmp_path):
    """Head-only Lite0 on the real photos (benchmarks/photos.py measures it against its default recipe, whose
    fine-tune of every weight takes minutes): real predictions, and an artifact that reloads to the same ones."""
    from sklearn.metrics import balanced_accuracy_score

    from microbudget_core import techniques
    from microbudget_core.data import DatasetSpec, load_dataset
    from microbudget_core.saved import load_saved

    photos = load_dataset(DatasetSpec("photos-12"))
    pretrained = load_model(ModelSpec("efficientnet-lite0"), photos.label_names, "image-classification")
    head = techniques.get("finetune-head")
    trained = head.apply(pretrained, techniques.make_config(head, {}), photos)
    predictions = trained.predict(photos.eval.inputs)
    # 0.78 measured on this split; far above the majority class (0.25) and the random-weight network (0.43)
    assert (predictions == photos.eval.labels).mean() >= 0.65
    assert balanced_accuracy_score(photos.eval.labels, predictions) >= 0.55
    assert len(photos.eval) == 51 and trained.meta["report"]["trainable_params"] == 1280 * 12 + 12
    reloaded = load_saved(trained.save(tmp_path / "lite0"))
    assert reloaded.preprocess.size == 224 and reloaded.labels == photos.label_names
    assert (reloaded.predict(photos.eval.inputs) == predictions).all()


def test_minilm_int8_keeps_the_fp32_predictions_on_real_snippets_and_is_smaller(tmp_path):
    """MiniLM-L6's dynamic int8 on the real weights and snippets, from a head fitted on its frozen features (its
    default baseline's full fine-tune and the accuracy floor are benchmarks/run.py's)."""
    from microbudget_core import techniques
    from microbudget_core.data import DatasetSpec, load_dataset

    dataset = load_dataset(DatasetSpec("rotten-tomatoes"))
    dataset = dataclasses.replace(dataset, train=dataset.train.per_class(300))  # features of 600 snippets, not 11k
    pretrained = load_model(ModelSpec("minilm-l6"), dataset.label_names, "text-classification")
    head, int8 = techniques.get("finetune-head"), techniques.get("dynamic-int8")
    trained = head.apply(pretrained, techniques.make_config(head, {}), dataset)
    quantized = int8.apply(trained, techniques.make_config(int8, {}), dataset)
    texts, labels = dataset.eval.inputs[:200], dataset.eval.labels[:200]
    fp32, int8_predictions = trained.predict(texts), quantized.predict(texts)
    assert (fp32 == labels).mean() >= 0.65  # the head reads sentiment from the real features (0.5: a coin)
    assert (int8_predictions == fp32).mean() >= 0.9

    def size(bundle, name):
        return sum(f.stat().st_size for f in bundle.save(tmp_path / name).rglob("*") if f.is_file())
    assert size(trained, "fp32") > 1.3 * size(quantized, "int8")  # int8 Linear weights: a real size cut


def test_mpnet_base_unpacks_from_its_five_packages_loads_every_weight_and_reads_sentences_by_meaning():
    import torch
    import transformers

    from microbudget_core.models import MPNET
    from microbudget_core.models.hf import quiet
    from microbudget_core.models.pooling import mean_pooled
    from microbudget_core.models.split_zip import unpacked

    folder = unpacked(MPNET)
    assert not list(folder.rglob("desktop.ini")) and (folder / "1_Pooling" / "config.json").exists()
    with quiet():
        encoder, info = transformers.AutoModel.from_pretrained(folder, output_loading_info=True)
    assert type(encoder).__name__ == "MPNetModel" and not any(info[k] for k in ("missing_keys", "unexpected_keys",
                                                                                 "mismatched_keys"))
    assert (encoder.config.num_hidden_layers, encoder.config.hidden_size) == (12, 768)
    bundle = load_model(ModelSpec("mpnet-base"), ["fresh", "rotten"], "text-classification")
    assert 108_000_000 < bundle.parameter_count() < 110_000_000 and not bundle.head_trained
    texts = ["a wonderful, moving film", "a beautiful and touching movie", "the stock market fell sharply today"]
    inputs = bundle.preprocess(texts)
    with torch.no_grad():
        states = bundle.model(**inputs).hidden_states
    sentences = torch.nn.functional.normalize(mean_pooled(states, inputs["attention_mask"])[:, -1], dim=-1)
    similar, unrelated = float(sentences[0] @ sentences[1]), float(sentences[0] @ sentences[2])
    assert similar > 0.5 and similar > unrelated + 0.3, (similar, unrelated)  # the encoder's own, mean-pooled
