"""Talk mode: `warm` computes what every page opens on before a talk, and the talk's steps (a headline and its
charts each, from those results) with a short live re-run per step for the presenter view."""

from __future__ import annotations

import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import plotly.graph_objects as go

from .. import kinds, labs, plots, snapshot
from ..support import cpu
from ..data import TEXT_INPUTS, DatasetSpec, load_dataset
from ..data.bundled import PHOTOS
from ..models import IMAGE
from ..support.errors import MicrobudgetError
from ..pipeline import Request
from ..support.progress import Progress, no_progress, scaled
from ..runs import RunStore
from . import architectures, distillation, llm_quantization, pruning, quantization, specialist, speech, transfer
from .compare import Limits, candidates, eval_sizes, measured_on, on_hardware, recommend


@dataclass(frozen=True)
class Plan:
    """What the talk shows: the labs' model and dataset (the app's defaults) and the LLM of the language pages."""

    model: str = "minilm-l6"
    dataset: str = "rotten-tomatoes"
    llm: str = "smollm2-135m"
    eval_limit: int = 500  # one size for every classification row, so the Compare page shows them together
    llm_texts: int = 100  # texts for the LLM levels' perplexity
    llm_levels: tuple[str, ...] = ()  # none: the LLM quantization page's default levels (the talk's GGUF levels)
    live_examples_per_class: int = 128  # the labelled budget of a live re-run: a minute or two, not ten
    architectures: tuple[str, ...] = ()  # built-in architecture ids, hub ids or folders; none: the page's defaults
    speech_model: str = "whisper-tiny.en"  # the Speech page's: Whisper beside a larger and a distilled Whisper
    speech_dataset: str = "speech-clips"
    speech_rows: tuple[str, ...] = ()  # none: the Speech page's default rows for the budget
    # The Transfer and Architectures pages' image runs, where the labs' dataset is text: the talk's first demo,
    # MobileNetV2 transfer learning on photos, and the pretrained vision networks side by side on them.
    vision_model: str = "mobilenet-v2"
    vision_dataset: str = PHOTOS
    # The Distillation page's teacher, where the labs' dataset is text: the large teacher where installed (it
    # teaches MiniLM-L6); "" for the labs' own model teaching a copy of itself.
    teacher: str = field(default_factory=distillation.default_teacher)
    full_budget: bool = False  # the labs' full budgets (the benchmarks' figures) rather than the pages' quick defaults


def use_plan(plan: Plan) -> None:
    """Make `plan` the one the presenter view shows (`warm` does this)."""
    labs.remember(labs.TALK, [], asdict(plan))


def last_plan(with_snapshot: bool = True) -> Plan:
    """The plan `warm` last computed (the presenter view shows it), else the results snapshot's; the defaults if
    neither."""
    kept = labs.recall(labs.TALK, [], with_snapshot)
    if not kept:
        return Plan()
    tuples = {name: tuple(kept[name]) for name in ("architectures", "speech_rows", "llm_levels") if name in kept}
    return Plan(**{**kept, **tuples})


@dataclass(frozen=True)
class Warmed:
    lab: str
    seconds: float
    status: str  # "computed", "kept" (it was there already), or what went wrong


def warm(plan: Plan = Plan(), force: bool = False, progress: Progress = no_progress) -> list[Warmed]:
    """Compute each lab's results for the plan, unless they are there already (`force` computes them again).

    A lab that fails is reported and the others still run: a talk can go on without one page.
    """
    jobs = _jobs(plan)
    use_plan(plan)
    done = []
    for n, (lab, key, job) in enumerate(jobs):
        span = scaled(progress, n / len(jobs), (n + 1) / len(jobs))
        span(0.0, f"{lab}: starting")
        if not force and _ready(lab, key):
            done.append(Warmed(lab, 0.0, "kept"))
            continue
        start = time.perf_counter()
        try:
            job(span)
        except MicrobudgetError as error:
            done.append(Warmed(lab, time.perf_counter() - start, f"failed: {error}"))
        else:
            done.append(Warmed(lab, time.perf_counter() - start, "computed"))
    progress(1.0, "Warm: done")
    return done


def _jobs(plan: Plan) -> list[tuple[str, list[str], Callable[[Progress], Any]]]:
    """(lab, the key its page reads, the job that computes it), in the order of the talk."""
    key = [plan.model, plan.dataset]
    task = _task(plan)
    text = kinds.get(task).INPUTS == TEXT_INPUTS
    built_in = {a.id: a for a in architectures.choices(task)}
    picked = [built_in.get(i) or architectures.hub_architecture(i) for i in plan.architectures]
    jobs = [
        (labs.TRANSFER, key, lambda progress: _transfer(plan, 0, progress)),
        (labs.DISTILLATION, _distilled(plan), lambda progress: _distill(plan, {}, progress)),
        (labs.PRUNING, key, lambda progress: _prune(plan, {}, progress)),
        (labs.QUANTIZATION, key, lambda progress: _quantization(plan, progress)),
        (labs.ARCHITECTURES, [plan.dataset], lambda progress: architectures.compare_architectures(
            picked or architectures.defaults(task), plan.dataset, architectures.default_budget(task),
            progress=progress)),
    ]
    shown = _transfer_plan(plan)  # the Transfer page's curve: its default strategies and budgets
    curve = Request(shown.model, shown.dataset, [], plan.eval_limit)
    if text and plan.vision_model:  # the image runs of the Transfer and Architectures pages (none: "")
        vision = _on_photos(plan)
        jobs += [(labs.TRANSFER, [vision.model, vision.dataset], lambda progress: _transfer(vision, 0, progress)),
                 (labs.ARCHITECTURES, [vision.dataset], lambda progress: architectures.compare_architectures(
                     architectures.defaults(IMAGE), vision.dataset, architectures.default_budget(IMAGE),
                     progress=progress))]
    jobs.append((labs.CURVE, [shown.model, shown.dataset], lambda progress: transfer.run_curve(
        curve, full=plan.full_budget, progress=progress)))
    if text:  # the language-model pages work on texts
        jobs += [(labs.LLM_LEVELS, [plan.llm, plan.dataset], lambda progress: _llm_levels(plan, progress)),
                 (labs.SPECIALIST, [plan.dataset], lambda progress: specialist.run_contest(
                     plan.dataset, (plan.llm,), specialist=plan.model, progress=progress))]
    jobs.append((labs.SPEECH, [plan.speech_model, plan.speech_dataset], lambda progress: _speech(plan, progress)))
    return jobs


SNAPSHOT_COMMAND = "make snapshot"  # warm, then take_snapshot (Makefile)


def take_snapshot(where: Path = snapshot.COMMITTED) -> Path:
    """Write what every page opens on for the last warmed plan into the results snapshot at `where`: the labs'
    latest results and every run of the plan's datasets (measurements only, no model files); its path."""
    plan = last_plan(with_snapshot=False)
    entries, shown = [], set()
    for lab, key in [(lab, key) for lab, key, _ in _jobs(plan)] + [(labs.SWEEP, [plan.model, plan.dataset]),
                                                                   (labs.TALK, [])]:
        value = labs.recall(lab, key, with_snapshot=False)
        if value is not None:
            entries.append({"lab": lab, "key": key, "value": value})
            shown |= set(value.get("runs", []))
    if not any(entry["lab"] != labs.TALK for entry in entries):
        raise MicrobudgetError("Nothing to snapshot: no lab has results in this data folder.",
                               "Run `make warm` (or `python -m microbudget_core warm`) first.")
    datasets = {plan.dataset, plan.vision_dataset, plan.speech_dataset}
    runs = [run.to_json() for run in RunStore(with_snapshot=False).list(quality=None)
            if run.run_id in shown or run.dataset in datasets]
    provenance = {"cpu": cpu.describe(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "commit": _commit(), "command": SNAPSHOT_COMMAND, "plan": asdict(plan)}
    path = snapshot.write(where, provenance, entries, runs, labs.durations_here())
    if path.stat().st_size > snapshot.MAX_BYTES:
        raise MicrobudgetError(f"The snapshot is {path.stat().st_size / 1e6:.1f} MB, over its "
                               f"{snapshot.MAX_BYTES / 1e6:.0f} MB limit ({path}).",
                               "Snapshot a data folder that holds only warm's runs (warm into a new "
                               "MICROBUDGET_HOME).")
    return path


def _commit() -> str:
    """The repository's commit, "" outside a git checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _ready(lab: str, key: list[str]) -> bool:
    """Whether the lab has results for `key` measured here (and, for runs, that none was deleted since): what the
    results snapshot shows, warm computes here."""
    kept = labs.recall(lab, key, with_snapshot=False)
    return kept is not None and ("runs" not in kept or labs.runs_kept(kept))


def _on_photos(plan: Plan) -> Plan:
    """The plan of the talk's transfer demo: its image model and dataset (MobileNetV2 on photos)."""
    return replace(plan, model=plan.vision_model, dataset=plan.vision_dataset)


def _transfer_plan(plan: Plan) -> Plan:
    """Whose transfer run the talk shows: the image demo where warm computes one, else the labs' own model's."""
    return _on_photos(plan) if plan.vision_model and kinds.get(_task(plan)).INPUTS == TEXT_INPUTS else plan


def _distilled(plan: Plan) -> list[str]:
    """Whose distillation the talk shows: the large teacher's where there is one for text, else the labs' model's."""
    teacher = plan.teacher if plan.teacher and kinds.get(_task(plan)).INPUTS == TEXT_INPUTS else plan.model
    return [teacher, plan.dataset]


def _distill(plan: Plan, settings: dict[str, Any], progress: Progress) -> None:
    """The Distillation page's button with its defaults for the teacher (and `settings` on top)."""
    teacher, dataset = _distilled(plan)
    distillation.run_distillation(Request(teacher, dataset, eval_limit=plan.eval_limit),
                                  {**distillation.default_settings(teacher, plan.full_budget), **settings}, progress=progress)


def _prune(plan: Plan, settings: dict[str, Any], progress: Progress) -> None:
    """The Pruning page's button with its defaults (and `settings` on top)."""
    pruning.run_pruning(Request(plan.model, plan.dataset, eval_limit=plan.eval_limit),
                        {**pruning.default_settings(plan.full_budget), **settings}, progress=progress)


def _transfer(plan: Plan, examples_per_class: int, progress: Progress) -> None:
    """Only the head trained, against the default recipe (all weights fine-tuned) as the original."""
    steps = [("finetune-head", {"examples_per_class": examples_per_class})]
    transfer.run_recipe(Request(plan.model, plan.dataset, steps, plan.eval_limit), progress=progress)


def _quantization(plan: Plan, progress: Progress) -> None:
    """The bit-width sweep (weight-only 8/4/3/2, PyTorch and ONNX Runtime int8); its fastest int8 row is the
    Quantization page's headline run."""
    sweep = quantization.run_sweep(Request(plan.model, plan.dataset, eval_limit=plan.eval_limit), progress=progress)
    labs.remember_runs(labs.QUANTIZATION, [plan.model, plan.dataset], [quantization.headline(sweep)])


def _quantization_live(plan: Plan, progress: Progress) -> None:
    """The headline's int8 path, run again (ONNX Runtime int8: dynamic for text, static for images)."""
    shown = quantization.latest(plan.model, plan.dataset)
    task = shown.task if shown else _task(plan)
    request = Request(plan.model, plan.dataset, [(quantization.fast_int8(task), {})], plan.eval_limit)
    quantization.run_quantization(request, progress=progress)


def _task(plan: Plan) -> str:
    """The kind of model the plan's dataset needs (text or image classification)."""
    return kinds.for_inputs(load_dataset(DatasetSpec(plan.dataset)).modality).ID


@dataclass(frozen=True)
class Slide:
    """One step of the talk: what the speaker says (from the measured numbers) and the charts behind it."""

    title: str
    headline: str  # empty while the step has no results
    figures: list[go.Figure]
    live: str  # what the step's "Run live" button runs, and about how long it takes


Shown = tuple[str, list[go.Figure]]  # a step's headline and figures; ("", []) without results


@dataclass(frozen=True)
class Step:
    title: str
    shown: Callable[[Plan], Shown]
    live: Callable[[Plan, Progress], Any]  # re-runs the step with a live-sized budget
    live_text: str


def _transfer_slide(plan: Plan) -> Shown:
    plan = _transfer_plan(plan)
    runs, _ = labs.recall_runs(labs.TRANSFER, [plan.model, plan.dataset])
    if not runs:
        return "", []
    run = runs[0]
    full, head = run.baseline, run.result
    headline = (f"{run.label} of pretrained {plan.model} ({head.report['trainable_params']:,} parameters trained, "
                f"{head.train_examples:,} examples, {head.train_seconds:.0f} s) reaches "
                f"{head.accuracy:.1%} on {plan.dataset}; fine-tuning all {full.params / 1e6:.1f}M weights "
                f"(the default recipe) reaches {full.accuracy:.1%}.")
    figure = plots.lineup_figure(transfer.recipe_rows(run), name="recipe", panels=transfer.RECIPE_PANELS)
    return headline, [figure]


def _distillation_slide(plan: Plan) -> Shown:
    runs = distillation.latest(*_distilled(plan))
    if not runs:
        return "", []
    rows = distillation.lineup(runs)
    return distillation.headline(rows), [plots.lineup_figure(rows)]


def _pruning_slide(plan: Plan) -> Shown:
    runs, _ = pruning.latest(plan.model, plan.dataset)
    if not runs:
        return "", []
    rows = pruning.rows_of(runs)
    return pruning.headline(rows), [plots.pruning_figure(rows)]


def _quantization_slide(plan: Plan) -> Shown:
    runs, _ = labs.recall_runs(labs.QUANTIZATION, [plan.model, plan.dataset])
    if not runs:
        return "", []
    figures = [plots.comparison_figure(runs[0])]
    sweep, _ = labs.recall_runs(labs.SWEEP, [plan.model, plan.dataset])
    if sweep:
        figures.append(plots.sweep_figure(sweep))
    return f"{runs[0].label}: {plots.summary(runs[0])}.", figures


def _llm_levels(plan: Plan, progress: Progress) -> None:
    """The LLM at the page's default levels: the talk's GGUF Q8_0 / Q4_K_M / Q2_K (and F16) on llama.cpp."""
    llm_quantization.run_levels(plan.llm, plan.dataset, plan.llm_levels or None, texts=plan.llm_texts,
                                progress=progress)


def _llm_slide(plan: Plan) -> Shown:
    rows = llm_quantization.level_rows(llm_quantization.latest_levels(plan.llm, plan.dataset))
    if not rows:
        return "", []
    return llm_quantization.headline(rows), [plots.levels_figure(rows)]


def _speech(plan: Plan, progress: Progress) -> None:
    """Whisper beside the larger Whisper, its int8 forms and a distilled student, on the same clips."""
    rows = plan.speech_rows or (speech.FULL_ROWS if plan.full_budget else speech.DEFAULT_ROWS)
    speech.run_speech(plan.speech_model, plan.speech_dataset, rows, full=plan.full_budget, progress=progress)


def _speech_slide(plan: Plan) -> Shown:
    rows = speech.rows_of(speech.latest(plan.speech_model, plan.speech_dataset))
    if not rows:
        return "", []
    return speech.headline(rows), [plots.lineup_figure(rows, "name", speech.PANELS)]


TALK_LIMITS = Limits(max_accuracy_drop_pt=1.0)  # what the Compare step recommends under


def _compare_slide(plan: Plan) -> Shown:
    runs = on_hardware(RunStore().list(plan.dataset))
    # The plan's rows: measured on eval_limit examples, or on the whole eval split where it is smaller.
    size = next((n for n in eval_sizes(runs) if n <= plan.eval_limit), None)
    found = candidates(measured_on(runs, size)) if size else []
    if not found:
        return "", []
    return f"At most 1 pt of accuracy lost: {recommend(found, TALK_LIMITS).message}", [plots.pareto_figure(found)]


STEPS = [
    Step("Transfer learning", _transfer_slide,
         lambda plan, progress: _transfer(_transfer_plan(plan), plan.live_examples_per_class, progress),
         "train only the head on {k} examples per class (about a minute)"),
    Step("Distillation", _distillation_slide, lambda plan, progress: _distill(
        plan, {"examples_per_class": plan.live_examples_per_class}, progress),
        "distil a student and its control from {k} labelled examples per class, then int8 (a few minutes)"),
    Step("Pruning", _pruning_slide, lambda plan, progress: _prune(
        plan, {"examples_per_class": plan.live_examples_per_class}, progress),
        "prune the model at 25, 50 and 75%, each recovered on {k} labelled examples per class (a few minutes)"),
    Step("Quantization", _quantization_slide, _quantization_live,
         "quantize the model to int8 with ONNX Runtime and measure it (under a minute)"),
    Step("An LLM at GGUF levels", _llm_slide, _llm_levels,
         "quantize the LLM to each level with llama.cpp and measure it, as Ollama runs it (a few minutes)"),
    Step("Whisper and a distilled Whisper", _speech_slide, _speech,
         "transcribe the clips with each model again, the student distilled anew (a few minutes)"),
    Step("Compare and decide", _compare_slide, lambda plan, progress: None,
         "read every run stored now, live ones included, and recommend again (instant)"),
]


def slide(number: int, plan: Plan) -> Slide:
    """Step `number` of the talk (0-based) as its latest results show it; an empty headline if there are none."""
    step = STEPS[number]
    headline, figures = step.shown(plan)
    return Slide(step.title, headline, figures, step.live_text.format(k=plan.live_examples_per_class))


def run_live(number: int, plan: Plan, progress: Progress = no_progress) -> Slide:
    """Re-run step `number` for real with a live-sized budget; its slide, with the new results."""
    STEPS[number].live(plan, progress)
    return slide(number, plan)
