"""Benchmark: the Speech page's comparison offline, side by side in one run: Whisper tiny.en, base, int8 (ONNX
Runtime and PyTorch), a distilled student, its hard-label control and the student in int8, on the recorded clips;
the student and its control again on held-out flite speech.

    .venv/bin/python -m benchmarks.speech          # writes benchmarks/speech.md
    .venv/bin/python -m benchmarks.speech anchors  # writes benchmarks/speech-anchors.md: tiny.en's int8 rows beside
                                                   # faster-whisper's, no training (a few minutes)
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.run import report
from microbudget_core.support.cpu import describe
from microbudget_core.labs.speech import FASTER_WHISPER, FULL_ROWS, ORIGINAL, SpeechRow, rows_of, run_speech

MODEL = "whisper-tiny.en"
# The recorded clips get every row of the page; held-out flite speech the rows its floors name.
DATASETS = {"speech-clips": (FULL_ROWS, ""), "spoken:rotten-tomatoes": (("control (reference transcripts)",
                                                                            "distilled"), None)}
# The anchors: ours against faster-whisper's on the same weights and clips, measured in one run.
ANCHORS = {"speech-clips": (("int8 (ONNX Runtime)", "int8 (PyTorch)", *FASTER_WHISPER), None)}


def comparison(dataset: str, plan: dict = DATASETS) -> tuple[list[str], dict[str, SpeechRow]]:
    started = time.perf_counter()
    rows, larger = plan[dataset]
    sweep = run_speech(MODEL, dataset, rows, larger, full=True, progress=report(dataset))
    wall = time.perf_counter() - started
    rows = rows_of(sweep.runs)
    clips = sweep.runs[0].result.eval_examples
    lines = [f"### {MODEL} on {dataset} ({clips} clips)", "",
             "WER and CER after Whisper's English normalizer (jiwer); seconds per clip = p50 of each clip's whole "
             "greedy transcript at batch 1; real-time factor = processing seconds per second of audio.", "",
             "| model | size MB | x smaller | s per clip | x faster | real-time factor | WER | CER | train s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.name} | {row.size_mb:.1f} | {row.x_smaller:.2f} | {row.seconds_per_clip:.3f} | "
                     f"{row.x_faster:.2f} | {row.rtf:.3f} | {row.wer:.1%} | {row.cer:.1%} | "
                     f"{'' if row.train_s is None else f'{row.train_s:.0f}'} |")
    lines += ["", f"Wall time for the {len(rows)} rows: {wall:.0f} s (conversion, training and measurement).", ""]
    for run in sweep.runs:
        lines += [f"- **{name}**: {note}" for name, note in ((run.label, n) for n in run.notes)]
    if sweep.skipped:
        lines += [f"- left out: {row}: {why}" for row, why in sweep.skipped.items()]
    return lines, {row.name: row for row in rows}


def floors(clips: dict[str, SpeechRow], spoken: dict[str, SpeechRow]) -> list[str]:
    """The issue's floors, each with its measured figure."""
    original, base = clips[ORIGINAL], clips["whisper-base"]  # the recorded clips' rows
    int8 = min((clips[n] for n in ("int8 (ONNX Runtime)", "int8 (PyTorch)")),
               key=lambda row: (row.wer > original.wer + 0.01, -row.x_faster))
    checks = [("tiny.en WER on the recorded clips <= 10%", original.wer, 0.10, "<="),
              ("base WER on the recorded clips <= 10%", base.wer, 0.10, "<="),
              (f"best int8 ({int8.name}) x smaller >= 2", int8.x_smaller, 2.0, ">="),
              (f"best int8 ({int8.name}) x faster >= 1.5", int8.x_faster, 1.5, ">="),
              (f"best int8 ({int8.name}) WER rise <= 1 pt", (int8.wer - original.wer) * 100, 1.0, "<=")]
    for name, rows in (("recorded clips", clips), ("held-out flite speech", spoken)):
        student, teacher, control = rows["distilled"], rows[ORIGINAL], rows["control (reference transcripts)"]
        checks += [(f"student x faster than its teacher >= 2 ({name})", student.x_faster, 2.0, ">="),
                   (f"student WER rise <= 2 pt ({name})", (student.wer - teacher.wer) * 100, 2.0, "<="),
                   (f"student WER below its control's ({name}; control - student, pt)",
                    (control.wer - student.wer) * 100, 0.0, ">")]
    quantized = clips["distilled + int8"]
    checks += [("student + int8 x faster than the fp32 teacher >= 4", quantized.x_faster, 4.0, ">="),
               ("student + int8 x smaller than the fp32 teacher >= 3", quantized.x_smaller, 3.0, ">="),
               ("default distillation train seconds < 1200", clips["distilled"].train_s or 0, 1200, "<=")]
    lines = ["| floor | measured | met |", "|---|---|---|"]
    for name, value, bound, sense in checks:
        met = {">=": value >= bound, ">": value > bound, "<=": value <= bound}[sense]
        lines.append(f"| {name} | {value:.3f} | {'yes' if met else 'no'} |")
    return lines


def main() -> None:
    lines = [f"Measured {date.today()} on {describe()}, 2 threads.", ""]
    if sys.argv[1:] == ["anchors"]:
        lines += comparison("speech-clips", ANCHORS)[0]
        Path(__file__).with_name("speech-anchors.md").write_text("\n".join(lines) + "\n")
        print(file=sys.stderr)
        print("\n".join(lines))
        return
    tables = {}
    for dataset in DATASETS:
        part, tables[dataset] = comparison(dataset)
        lines += part + [""]
    lines += ["### Floors", ""] + floors(*tables.values()) + [""]
    Path(__file__).with_name("speech.md").write_text("\n".join(lines))
    print(file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
