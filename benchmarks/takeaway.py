"""Benchmark: take-away models scored by the ecosystem's loaders, in a process without microbudget, on the eval
examples the app scored: MiniLM ONNX int8 and fine-tuned (Optimum + pipeline), MobileNetV2 int8 (Optimum +
pipeline), Whisper tiny.en int8 (Optimum's ORTModelForSpeechSeq2Seq + pipeline, and faster-whisper).

    .venv/bin/python -m benchmarks.takeaway        # writes benchmarks/takeaway.md
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.run import report
from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.export import export_run
from microbudget_core.kinds.speech_recognition import error_rate
from microbudget_core.measure import MeasureConfig
from microbudget_core.pipeline import Request, run_pipeline
from microbudget_core.saved import load_saved
from microbudget_core.support.cpu import describe

BATCH = MeasureConfig.batch_size  # the app scores classifiers in batches of this many; the pipelines do the same
# Any import of microbudget_core fails in the loaders' process, as on a machine without it.
BLOCK = """import sys, json
class NoMicrobudget:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "microbudget_core":
            raise ImportError("microbudget_core is not installed here")
sys.meta_path.insert(0, NoMicrobudget())
"""
TEXT = """from optimum.onnxruntime import ORTModelForSequenceClassification
from transformers import AutoTokenizer, pipeline
model = ORTModelForSequenceClassification.from_pretrained("{where}")
classify = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained("{where}"))
texts = json.load(open("inputs.json"))
print(json.dumps([answer["label"] for answer in classify(texts, truncation=True, batch_size=32)]))
"""
IMAGE = """from optimum.onnxruntime import ORTModelForImageClassification
from transformers import AutoImageProcessor, pipeline
model = ORTModelForImageClassification.from_pretrained("{where}")
classify = pipeline("image-classification", model=model, image_processor=AutoImageProcessor.from_pretrained("{where}"))
print(json.dumps([answer[0]["label"] for answer in classify(json.load(open("inputs.json")), top_k=1, batch_size=32)]))
"""
OPTIMUM_SPEECH = """import numpy
from optimum.onnxruntime import ORTModelForSpeechSeq2Seq
from transformers import AutoProcessor
processor = AutoProcessor.from_pretrained("{where}")
model = ORTModelForSpeechSeq2Seq.from_pretrained("{where}/onnx")
def transcribe(clip):
    features = processor(clip, sampling_rate=16000, return_tensors="pt").input_features
    return processor.batch_decode(model.generate(features, max_new_tokens=128), skip_special_tokens=True)[0].strip()
clips = numpy.load("inputs.npz")
print(json.dumps([transcribe(clips[key]) for key in clips.files]))
"""
FASTER_WHISPER = """import numpy
from faster_whisper import WhisperModel
model = WhisperModel("{where}", device="cpu", compute_type="default", cpu_threads=2)
clips = numpy.load("inputs.npz")
print(json.dumps([" ".join(s.text.strip() for s in model.transcribe(clips[key], language="en", beam_size=1,
                  without_timestamps=True)[0]) for key in clips.files]))
"""


@dataclass(frozen=True)
class Case:
    name: str
    model: str
    dataset: str
    steps: list[tuple[str, dict]]
    loader: str  # what loads it, as the table says
    code: str  # the loader's snippet, {where} = the exported folder (or its subfolder)
    subfolder: str = ""
    eval_limit: int | None = None


CASES = [
    Case("text, ONNX int8", "minilm-l6", "rotten-tomatoes", [("onnx-int8-dynamic", {})],
         "Optimum ORTModelForSequenceClassification + pipeline", TEXT, eval_limit=1000),
    Case("text, fine-tuned (last 2 layers)", "minilm-l6", "rotten-tomatoes",
         [("finetune-last-n", {"n": 2, "epochs": 1, "examples_per_class": 500})],
         "Optimum ORTModelForSequenceClassification + pipeline (onnx/)", TEXT, "onnx", eval_limit=1000),
    Case("image, MobileNetV2 ONNX int8", "mobilenet-v2", "photos-12", [("onnx-int8-dynamic", {})],
         "Optimum ORTModelForImageClassification + pipeline", IMAGE),
    Case("speech, tiny.en ONNX int8", "whisper-tiny.en", "speech-clips", [("onnx-int8-dynamic", {})],
         "Optimum ORTModelForSpeechSeq2Seq.generate", OPTIMUM_SPEECH),
    Case("speech, tiny.en faster-whisper int8", "whisper-tiny.en", "speech-clips",
         [("faster-whisper", {"quantization": "int8"})], "faster_whisper.WhisperModel", FASTER_WHISPER, "ctranslate2"),
]


def write_inputs(dataset: str, eval_limit: int | None, folder: Path) -> tuple[list, list]:
    """The eval split's inputs as the loaders' process reads them; the references."""
    split = load_dataset(DatasetSpec(dataset)).eval
    inputs, labels = list(split.inputs)[:eval_limit], list(split.labels)[:eval_limit]
    if isinstance(inputs[0], str):
        (folder / "inputs.json").write_text(json.dumps(inputs))
    elif np.asarray(inputs[0]).ndim == 1:  # audio
        np.savez(folder / "inputs.npz", *[np.asarray(clip, dtype=np.float32) for clip in inputs])
    else:
        paths = []
        for n, image in enumerate(inputs):
            paths.append(str(folder / f"image{n}.png"))
            Image.fromarray(np.asarray(image)).save(paths[-1])
        (folder / "inputs.json").write_text(json.dumps(paths))
    return inputs, labels


def without_microbudget(code: str, cwd: Path) -> Any:
    """Run `code` in a fresh Python where importing microbudget_core fails (and it is not on the path); the JSON it
    printed last."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "MICROBUDGET_HOME")}
    done = subprocess.run([sys.executable, "-c", BLOCK + code], cwd=cwd, capture_output=True, text=True,
                          env={**env, "HF_HUB_OFFLINE": "1"}, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"The loader's process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def score(case: Case) -> str:
    run = run_pipeline(Request(case.model, case.dataset, case.steps, eval_limit=case.eval_limit),
                       progress=report(case.name))
    with tempfile.TemporaryDirectory() as scratch:
        folder = export_run(run, Path(scratch) / "export")
        inputs, labels = write_inputs(case.dataset, case.eval_limit, Path(scratch))
        where = f"export/{case.subfolder}".rstrip("/")
        found = without_microbudget(case.code.format(where=where), Path(scratch))
        if run.task == "speech-recognition":
            app, theirs = run.result.wer, error_rate(labels, found)
            same = np.mean([a == b for a, b in zip(run.result.transcripts, found)])
            figures = f"WER {app:.1%} | WER {theirs:.1%} | {abs(theirs - app) * 100:.1f} pt | {same:.0%} of transcripts"
        else:
            names = [run.labels[label] for label in labels]
            app, theirs = run.result.accuracy, float(np.mean([a == b for a, b in zip(found, names)]))
            app_model = load_saved(Path(run.artifact_path))  # in the app's batches: int8 activations scale per batch
            predicted = [run.labels[i] for n in range(0, len(inputs), BATCH)
                         for i in app_model.predict(inputs[n:n + BATCH])]
            same = np.mean([a == b for a, b in zip(found, predicted)])
            figures = (f"accuracy {app:.3f} | accuracy {theirs:.3f} | {abs(theirs - app) * 100:.1f} pt | "
                       f"{same:.1%} of predictions")
        files = ", ".join(sorted(p.name for p in folder.iterdir()))
    print(file=sys.stderr)
    return f"| {case.name} | {case.loader} | {len(labels)} | {figures} | {files} |"


def main(out: Path) -> None:
    chosen = [CASES[int(n) - 1] for n in sys.argv[1:]] or CASES
    lines = [f"Measured {date.today()} on {describe()}: each run made and measured by the app, exported with "
             "`export_run`, then loaded and scored in a fresh process where importing microbudget_core fails.", "",
             "| case | standard loader | eval examples | the app measured | the loader scored | difference | "
             "agreement | exported files |", "|---|---|---|---|---|---|---|---|"]
    lines += [score(case) for case in chosen]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(__file__).with_name("takeaway.md"))
