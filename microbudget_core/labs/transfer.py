"""The transfer-learning lab: one recipe against the default one, and the data-efficiency curve."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import labs
from ..data import DatasetSpec, load_dataset
from ..measure import MeasureConfig
from ..pipeline import Request, Sweep, prepare, resolve, run_rows
from ..support.progress import Progress, no_progress, scaled
from ..support.rows import column
from ..runs import Run, RunStore
from ..training import TrainConfig, split_for_training

STRATEGIES = ("finetune-head", "finetune-last-n", "finetune-full", "from-scratch", "setfit-style")  # the page's
# Examples per class for the data-efficiency curve; 0 = all of the train split. Datasets whose classes are small
# (photos-12: 7 to 51 training examples each) get the small budgets. The full budget gives the curves of benchmarks/photos.md and transfer.md;
# the quick one (the page's default, a few minutes on 2 cores) two points of head-only against from-scratch, beside
# the default recipe's line: each training of every weight makes at least training.MIN_STEPS updates, so a point
# costs about the same whatever its k, and the head trains on cached features in seconds.
CURVE_EXAMPLES = (8, 32, 128, 512, 0)
SMALL_CURVE_EXAMPLES = (2, 4, 8, 16, 0)
CURVE_STRATEGIES = ("finetune-head", "finetune-full", "from-scratch")
QUICK_CURVE_EXAMPLES = (8, 128)
QUICK_SMALL_CURVE_EXAMPLES = (4, 16)
QUICK_CURVE_STRATEGIES = ("finetune-head", "from-scratch")


@labs.job
def run_recipe(request: Request, progress: Progress = no_progress) -> Run:
    """One transfer recipe (the request's steps) against the default recipe as the original; the page's latest."""
    return labs.run_and_remember(labs.TRANSFER, request, progress=progress)


def latest(model: str, dataset: str) -> Run | None:
    """The run the Transfer page opens on for this model and dataset."""
    return labs.latest_run(labs.TRANSFER, model, dataset)


@dataclass(frozen=True)
class RecipeRow:
    """A transfer recipe's accuracy and what its training cost."""

    recipe: str = column("recipe")
    accuracy: float = column("accuracy")
    train_s: float = column("train s")
    train_examples: int = column("train examples")


RECIPE_PANELS = [("accuracy", "Accuracy", "%"), ("train_s", "Training time", "s"),
                 ("train_examples", "Training examples", "")]


def recipe_rows(run: Run) -> list[RecipeRow]:
    """The default recipe (all weights fine-tuned, the run's original) and the run's recipe."""
    full, done = run.baseline, run.result
    return [RecipeRow("all weights fine-tuned (default recipe)", full.accuracy, full.train_seconds or 0.0,
                      full.train_examples or 0),
            RecipeRow(run.label, done.accuracy, done.train_seconds, done.train_examples)]


@dataclass(frozen=True)
class StrategyRow:
    """One stored transfer run: its strategy's accuracy and what training it cost."""

    run: str = column("run")
    strategy: str = column("strategy")
    accuracy: float = column("accuracy")
    train_s: float | None = column("train s")
    train_examples: int | None = column("train examples")
    trained_params: int | None = column("trained params")
    size_mb: float = column("size MB")


def strategy_rows(model: str, dataset: str) -> list[StrategyRow]:
    """Every stored run of a transfer strategy on this model and dataset, the latest first."""
    runs = [r for r in RunStore().list(dataset) if r.model == model and r.steps and r.steps[-1]["technique"] in STRATEGIES]
    return [StrategyRow(r.run_id, r.label, r.result.accuracy, r.result.train_seconds, r.result.train_examples,
                        r.result.report.get("trainable_params"), r.result.size_bytes / 1e6) for r in reversed(runs)]


def curve_examples(dataset_id: str, full: bool = False) -> tuple[int, ...]:
    """The curve's default budgets for a dataset (the quick ones unless `full`): the small ones where its mean
    class has under 128 examples."""
    dataset = load_dataset(DatasetSpec(dataset_id))
    small = len(dataset.train) / len(dataset.label_names) < 128
    if full:
        return SMALL_CURVE_EXAMPLES if small else CURVE_EXAMPLES
    return QUICK_SMALL_CURVE_EXAMPLES if small else QUICK_CURVE_EXAMPLES


@labs.job
def run_curve(request: Request, strategies: tuple[str, ...] | None = None,
              examples_per_class: tuple[int, ...] | None = None, store: RunStore | None = None,
              measure_config: MeasureConfig = MeasureConfig(memory=False), full: bool = False,
              progress: Progress = no_progress) -> Sweep:
    """The data-efficiency curve: each strategy trained on k examples per class, for each k.

    A k that every class falls short of trains on all the data: it runs once, as the first such k (or 'all').
    `strategies` and `examples_per_class` None: the quick budget's (the full budget's where `full`).
    """
    strategies = strategies or (CURVE_STRATEGIES if full else QUICK_CURVE_STRATEGIES)
    examples_per_class = examples_per_class or curve_examples(request.dataset, full)
    rows = {(strategy, k): resolve([(strategy, {"examples_per_class": k})])  # bad ids fail before slow work
            for strategy in strategies for k in examples_per_class}
    prepared = prepare(request, measure_config, scaled(progress, 0.0, 0.2))
    fit, _ = split_for_training(prepared.dataset.train, TrainConfig())
    largest = int(np.bincount(fit.labels).max())
    all_data = [k for k in examples_per_class if k == 0 or k >= largest]
    kept = [k for k in examples_per_class if k not in all_data or k == (0 if 0 in all_data else min(all_data))]
    sweep = run_rows(prepared, [steps for (_, k), steps in rows.items() if k in kept], store, measure_config,
                     progress)
    for k in set(examples_per_class) - set(kept):
        sweep.skipped[f"{k}/class"] = f"every class has at most {largest} training examples: the same run as all"
    labs.remember_runs(labs.CURVE, [request.model, request.dataset], sweep.runs, sweep.skipped)
    return sweep
