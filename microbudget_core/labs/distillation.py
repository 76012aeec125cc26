"""The distillation lab: a student, its hard-label control and its int8 version, measured beside the teacher."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .. import labs
from ..baseline import build_baseline
from ..data import DatasetSpec, load_dataset
from ..measure import MeasureConfig
from ..yardstick import speed_verdict
from ..models import OFFLINE_MODELS, TEXT, ModelBundle
from ..pipeline import Request, Sweep, prepare, resolve, run_steps
from ..support.progress import Progress, no_progress, scaled
from ..support.rows import column
from ..runs import Run, RunStore, load_run_model, stored_run
from ..techniques.distill import CONTROL, STUDENT, softened
from .quantization import fast_int8

TEMPERATURES = (1, 2, 4, 8)
QUANTIZED = "student + int8"
# The large teacher of a kind, the page's default where it is installed, and the student settings it starts with:
# MiniLM-L6 (its own tokenizer; only the teacher's outputs are distilled) for 3 epochs. Rotten-tomatoes, 1,000 eval
# snippets: 1 epoch 0.822 (control 0.815; alpha 0.9, T 4 or rate 3e-4 no better), 3 epochs 0.859 (benchmarks/teacher-0.md).
TEACHERS = {TEXT: "mpnet-base"}
STUDENT_SETTINGS = {"mpnet-base": {"student": "model", "student_model": "minilm-l6", "epochs": 3}}
# The page's quick budget, its default: one epoch on the first 500 labelled examples of each class (control,
# student and int8 took 255 s on 2 cores, the teacher's view included; docs/first-visit.md). The full budget
# keeps the settings above: benchmarks/teacher-0.md's figures.
QUICK = {"epochs": 1, "examples_per_class": 500}
FULL = {"examples_per_class": 0}  # every labelled example


def default_teacher(task: str = TEXT) -> str:
    """The large teacher for a kind of model where it is installed, else "" (the page then offers the first)."""
    teacher = TEACHERS.get(task, "")
    return teacher if teacher in OFFLINE_MODELS and OFFLINE_MODELS[teacher].installed() else ""


def default_settings(teacher: str, full: bool = False) -> dict[str, Any]:
    """The distill settings the page starts with for this teacher (the technique's own defaults elsewhere), within
    the quick budget unless `full`."""
    return {**STUDENT_SETTINGS.get(teacher, {}), **(FULL if full else QUICK)}


@labs.job
def run_distillation(request: Request, settings: dict[str, Any], control: bool = True, quantize: bool = True,
                     store: RunStore | None = None, measure_config: MeasureConfig = MeasureConfig(memory=False),
                     progress: Progress = no_progress) -> Sweep:
    """The hard-label control (same student and labelled budget, the teacher unused), then the distilled student,
    then it in int8.

    Every row is measured against one measurement of the teacher; the int8 step is ONNX Runtime's fast path
    for the kind of model (dynamic for text, static for images).
    """
    labels_only = {"alpha": 0, "hidden_weight": 0, "unlabeled": "", "use_labels": True}  # the teacher unused
    control_steps = resolve([("distill", {**settings, **labels_only})])  # bad knobs fail before slow work
    student_steps = resolve([("distill", settings)])
    prepared = prepare(request, measure_config, scaled(progress, 0.0, 0.1))
    if quantize and fast_int8(prepared.baseline.task):
        student_steps += resolve([(fast_int8(prepared.baseline.task), {})])
    sweep = Sweep([], {})
    if control:
        sweep.runs.append(run_steps(prepared, control_steps, store, measure_config, scaled(progress, 0.1, 0.5)))
    run_steps(prepared, student_steps, store, measure_config, scaled(progress, 0.5 if control else 0.1, 1.0),
              kept=sweep.runs)
    labs.remember_runs(labs.DISTILLATION, [request.model, request.dataset], sweep.runs)
    return sweep


def latest(model: str, dataset: str) -> list[Run]:
    """The runs of the last distillation of this model on this dataset (the page opens on them)."""
    return labs.recall_runs(labs.DISTILLATION, [model, dataset])[0]


def role(run: Run) -> str:
    """Which row of the lab a run is: the control, the student, or the student in int8."""
    if run.steps[-1]["technique"] != "distill":
        return QUANTIZED
    return run.result.report.get("distill_role", STUDENT)


@dataclass(frozen=True)
class LineupRow:
    """One model of the line-up, against the teacher."""

    model: str = column("model")
    network: str = column("network")  # which network the row is: the teacher's id, the student's
    size_mb: float = column("size MB")
    params_m: float = column("params (M)")
    p50_ms: float = column("p50 ms")
    p50_ms_p25: float = column("p25 ms")
    p50_ms_p75: float = column("p75 ms")
    accuracy: float = column("accuracy")
    fidelity: float = column("same predictions as the original")
    x_smaller: float = column("x smaller")
    x_faster: float = column("x faster")
    teacher_share: float = column("% of teacher accuracy")
    speed: str = column("speed")  # stable, or unstable and why (yardstick.speed_verdict)


def lineup(runs: Sequence[Run]) -> list[LineupRow]:
    """Teacher, control, student, student + int8: size, params, latency, accuracy, fidelity, against the teacher.

    The teacher is the original model, or the stored run the student named as its teacher (`teacher_run`).
    """
    chosen = runs[0].steps[0]["config"].get("teacher_run")
    teacher_run = RunStore().get(chosen) if chosen else None
    teacher = teacher_run.result if teacher_run else runs[0].baseline
    student = next((run.result.report["student"] for run in runs if run.result.report.get("student")), "student")
    rows = [("teacher", teacher_run.label if teacher_run else runs[0].model, teacher,
             teacher_run.result.fidelity if teacher_run else 1.0, 1.0)]
    # A run was timed side by side with its original: that ratio, where the original is the teacher.
    rows += [(role(run), f"{student} int8" if role(run) == QUANTIZED else student, run.result, run.result.fidelity,
              teacher.latency_ms_p50 / run.result.latency_ms_p50 if teacher_run else run.ratios["latency"])
             for run in runs]
    return [LineupRow(model=name, network=network, size_mb=m.size_bytes / 1e6, params_m=m.params / 1e6,
                      p50_ms=m.latency_ms_p50, p50_ms_p25=m.latency_ms_p25 or m.latency_ms_p50,
                      p50_ms_p75=m.latency_ms_p75 or m.latency_ms_p50, accuracy=m.accuracy,
                      fidelity=fidelity,
                      x_smaller=teacher.size_bytes / m.size_bytes, x_faster=x_faster,
                      teacher_share=100 * m.accuracy / teacher.accuracy, speed=speed_verdict(m.speed_check))
            for name, network, m, fidelity, x_faster in rows]


def headline(rows: list[LineupRow]) -> str:
    """What a speaker says about the line-up: how much smaller and faster, how much accuracy kept, what distilling
    added."""
    by_name = {row.model: row for row in rows}
    best = by_name.get(QUANTIZED) or by_name.get(STUDENT)
    if best is None:
        return ""
    said = (f"The {best.model} ({best.network}) is {best.x_smaller:.1f}x smaller and {best.x_faster:.1f}x faster "
            f"than the teacher ({by_name['teacher'].network}) and keeps {best.teacher_share:.0f}% of its accuracy.")
    if STUDENT in by_name and CONTROL in by_name:
        gain = (by_name[STUDENT].accuracy - by_name[CONTROL].accuracy) * 100
        said += (f" Distillation itself: {gain:+.1f} pt over the same student ({by_name[CONTROL].network}) trained "
                 "on the labels alone.")
    return said


def headlines(dataset: str, models: Sequence[str]) -> list[str]:
    """The headline of each model's last distillation on this dataset (the Compare page shows them)."""
    kept = [latest(model, dataset) for model in dict.fromkeys(models)]
    return [said for said in (headline(lineup(runs)) for runs in kept if runs) if said]


def histories(runs: Sequence[Run]) -> tuple[dict[str, list[dict]], float | None]:
    """Per-epoch curves of the trained rows, and the teacher's accuracy on the same validation examples."""
    trained = [run for run in runs if role(run) != QUANTIZED and run.result.history]
    teacher = next((run.result.report.get("teacher_val_accuracy") for run in trained), None)
    return {role(run): run.result.history for run in trained}, teacher


def soft_targets(model: str, dataset: str, example: Any, teacher_run: str = "",
                 temperatures: Sequence[float] = TEMPERATURES) -> tuple[list[str], dict[float, np.ndarray]]:
    """The teacher's softmax for one input at each temperature: what 'soft targets' look like."""
    teacher = teacher_model(model, dataset, teacher_run)
    logits = teacher.logits([example])[0]
    return teacher.labels, {t: softened(logits, t) for t in temperatures}


def eval_examples(dataset: str, count: int = 12) -> list[Any]:
    """The first few held-out inputs of a dataset, to show the teacher's soft targets on."""
    return load_dataset(DatasetSpec(dataset)).eval.inputs[:count]


def teacher_model(model: str, dataset: str, teacher_run: str = "") -> ModelBundle:
    """The teacher: a stored run's model, or by default the model fine-tuned on the dataset by the baseline recipe."""
    if teacher_run:
        return load_run_model(stored_run(teacher_run))
    return build_baseline(model, load_dataset(DatasetSpec(dataset)))


def side_by_side(student: Run, example: Any) -> dict[str, np.ndarray]:
    """The same input through the teacher and the student: each one's class probabilities."""
    teacher = teacher_model(student.model, student.dataset, student.steps[0]["config"].get("teacher_run", ""))
    return {"teacher": teacher.probabilities([example])[0],
            role(student): load_run_model(student).probabilities([example])[0]}
