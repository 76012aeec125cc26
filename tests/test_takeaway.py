"""Take-away models: each kind's export loads in the ecosystem's standard loader, in a process that cannot import
microbudget_core, and gives the predictions or transcripts the app gives on the same inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.takeaway import without_microbudget
from microbudget_core import techniques
from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.export import CARD_NAME, export_run, standard_forms
from microbudget_core.measure import MeasureConfig
from microbudget_core.models import ModelBundle, ModelSpec, load_model
from microbudget_core.models.bundle import IMAGE
from microbudget_core.models.speech import transcribe
from microbudget_core.models.vision import MobileNetV2, preprocessor_for
from microbudget_core.pipeline import Request, prepare, resolve, run_rows
from microbudget_core.runs import RunStore
from microbudget_core.saved import load_saved
from microbudget_core.support.progress import no_progress

FAST = MeasureConfig(memory=False, warmup=1, latency_runs=2, rounds=1)
def apply(technique_id: str, bundle: ModelBundle, **settings: object) -> ModelBundle:
    technique = techniques.get(technique_id)
    return technique.apply(bundle, techniques.make_config(technique, settings))


def exported(bundle: ModelBundle, folder: Path) -> tuple[Path, str]:
    """The bundle saved, then given its standard forms, as export_run does; the card's sections."""
    bundle.save(folder)
    return folder, standard_forms(load_saved(folder), folder, folder.name)


def test_the_blocker_blocks(tmp_path: Path) -> None:
    assert without_microbudget("try:\n    import microbudget_core\n    print(json.dumps('imported'))\n"
                               "except ImportError:\n    print(json.dumps('blocked'))", tmp_path) == "blocked"


def test_text_exports_load_in_optimum_and_a_pipeline_with_the_apps_predictions(tiny_text_model, sentiment_csv,
                                                                               tmp_path):
    """The ONNX int8 run (its model.onnx at the root) and a fine-tuned run (microbudget's own head: exported to
    onnx/), each through ORTModelForSequenceClassification and pipeline("text-classification")."""
    prepared = prepare(Request(str(tiny_text_model), f"csv:{sentiment_csv}", eval_limit=24), FAST)
    rows = [resolve([("onnx-int8-dynamic", {})]), resolve([("finetune-head", {"epochs": 1})])]
    sweep = run_rows(prepared, rows, RunStore(), FAST, no_progress)
    texts = list(prepared.dataset.eval.inputs)
    wheres = []
    for run, subfolder in zip(sweep.runs, ["", "onnx"]):
        folder = export_run(run, tmp_path / run.run_id)
        card = (folder / CARD_NAME).read_text()
        assert card.index("ORTModelForSequenceClassification") < card.index("microbudget_core")  # standard first
        assert run.result.measured_on in card  # where it was measured
        wheres.append(f"{run.run_id}/{subfolder}".rstrip("/"))
    found = without_microbudget(f"""
from optimum.onnxruntime import ORTModelForSequenceClassification
from transformers import AutoTokenizer, pipeline
def labels(where):
    model = ORTModelForSequenceClassification.from_pretrained(where)
    classify = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(where))
    return [answer["label"] for answer in classify({json.dumps(texts)}, truncation=True)]
print(json.dumps([labels(where) for where in {json.dumps(wheres)}]))
""", tmp_path)
    for run, labels in zip(sweep.runs, found):
        app = load_saved(Path(run.artifact_path))
        assert labels == [app.labels[i] for i in app.predict(texts)]
    # The fine-tuned model's PyTorch weights use microbudget's layer-mean head: the card says so.
    assert "loads only through microbudget" in card


def test_image_exports_load_in_optimum_and_a_pipeline_with_the_apps_predictions(tmp_path):
    """The project's MobileNetV2 (no transformers class) as ONNX fp32 and int8: config.json names the labels,
    preprocessor_config.json does the app's resize and crop."""
    import torch

    torch.manual_seed(0)
    meta = {"family": "mobilenet-v2", "num_classes": 3, "width_mult": 0.5, "image_size": 32}
    bundle = ModelBundle(MobileNetV2(3, 0.5).eval(), IMAGE, ["cat", "dog", "fox"], preprocessor_for(32),
                         "tiny-mobilenet", meta)
    rng = np.random.default_rng(0)
    paths = []
    for n, (height, width) in enumerate([(40, 50), (37, 37), (64, 45), (33, 70), (48, 48), (51, 39)]):
        paths.append(tmp_path / f"image{n}.png")
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(paths[-1])
    images = [np.asarray(Image.open(path)) for path in paths]
    cards = {name: exported(model, tmp_path / name)[1]
             for name, model in [("fp32", bundle), ("int8", apply("onnx-int8-dynamic", bundle))]}
    assert all("ORTModelForImageClassification" in card for card in cards.values())
    found = without_microbudget(f"""
from optimum.onnxruntime import ORTModelForImageClassification
from transformers import AutoImageProcessor, pipeline
def scores(where):
    model = ORTModelForImageClassification.from_pretrained(where)
    classify = pipeline("image-classification", model=model, image_processor=AutoImageProcessor.from_pretrained(where))
    return [{{a["label"]: a["score"] for a in answers}} for answers in classify({json.dumps(list(map(str, paths)))},
                                                                                top_k=3)]
print(json.dumps({{"fp32": scores("fp32/onnx"), "int8": scores("int8")}}))
""", tmp_path)
    for name, answers in found.items():
        # One image a call, as the pipeline runs them (dynamic int8 scales activations per call).
        app = load_saved(tmp_path / name)
        for image, scores in zip(images, answers):
            assert scores == pytest.approx(dict(zip(bundle.labels, app.probabilities([image])[0].tolist())), abs=1e-4)


def test_speech_exports_load_in_faster_whisper_and_optimum_with_the_apps_transcripts(tiny_whisper, spoken_folder,
                                                                                     tmp_path):
    """faster-whisper reads the CTranslate2 run's folder and the float model's converted ones; Optimum's
    ORTModelForSpeechSeq2Seq reads the ONNX int8 run's graphs."""
    clips = load_dataset(DatasetSpec(f"audio:{spoken_folder}")).eval.inputs[:3]
    np.save(tmp_path / "clips.npy", np.stack([np.pad(c, (0, 16000 * 4 - len(c))) for c in clips]))
    lengths = [len(clip) for clip in clips]
    original = load_model(ModelSpec(str(tiny_whisper)))
    ct2 = apply("faster-whisper", original, quantization="int8")
    ort = apply("onnx-int8-dynamic", original)
    _, card = exported(original, tmp_path / "original")
    assert "faster-whisper-int8" in card and "pipeline(\"automatic-speech-recognition\"" in card
    exported(ct2, tmp_path / "ct2")
    exported(ort, tmp_path / "ort")
    heard = without_microbudget(f"""
import numpy
from faster_whisper import WhisperModel
clips = [clip[:n] for clip, n in zip(numpy.load("clips.npy"), {lengths})]
def faster_whisper(path):
    model = WhisperModel(path, device="cpu", compute_type="default", cpu_threads=2)
    return [" ".join(s.text.strip() for s in model.transcribe(clip, language="en", beam_size=1, temperature=0.0,
            without_timestamps=True, condition_on_previous_text=False)[0] if s.text.strip()) for clip in clips]
from optimum.onnxruntime import ORTModelForSpeechSeq2Seq
from transformers import AutoProcessor
processor = AutoProcessor.from_pretrained("ort")
model = ORTModelForSpeechSeq2Seq.from_pretrained("ort/onnx")
def optimum_text(clip):
    features = processor(clip, sampling_rate=16000, return_tensors="pt").input_features
    return processor.batch_decode(model.generate(features, max_new_tokens=128), skip_special_tokens=True)[0].strip()
optimum = [optimum_text(clip) for clip in clips]
print(json.dumps({{"ct2": faster_whisper("ct2/ctranslate2"),
                  "converted": faster_whisper("original/faster-whisper-int8"),
                  "optimum": optimum}}))
""", tmp_path)
    assert heard["ct2"] == [transcribe(ct2, clip).text for clip in clips]
    assert heard["converted"] == heard["ct2"]  # the export's int8 folder is the faster-whisper row's model
    assert heard["optimum"] == [transcribe(ort, clip).text for clip in clips]
