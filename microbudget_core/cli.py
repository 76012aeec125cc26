"""The same engine from a terminal: `python -m microbudget_core list | run | runs | compare | warm | snapshot |
export | clean`."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, TextIO

from tqdm import tqdm

from . import clean, devices, kinds, snapshot, techniques
from .support import logs
from .data.bundled import BUNDLED
from .support.errors import DamagedFile, MicrobudgetError, move_aside
from .export import export_run
from .labs import talk
from .labs.compare import Limits, candidates, measured_on, on_hardware, recommend
from .measure import MeasureConfig
from .models import CAUSAL_LM, OFFLINE_MODELS
from .support.paths import home
from .pipeline import Request, run_pipeline
from .support.progress import Progress
from .figures import Measured
from .runs import Run, RunStore
from .yardstick import speed_verdict, unstable

ROWS = [("size_bytes", "size (MB)", 1e-6), ("params", "params (M)", 1e-6), ("latency_ms_p50", "p50 ms", 1),
        ("latency_ms_p95", "p95 ms", 1), ("throughput_per_s", "per s @32", 1), ("accuracy", "accuracy", 1),
        ("balanced_accuracy", "balanced accuracy", 1), ("macro_f1", "macro F1", 1), ("perplexity", "perplexity", 1), ("tokens_per_s", "tokens/s", 1),
        ("wer", "WER", 1), ("cer", "CER", 1), ("rtf", "real-time x", 1),
        ("load_seconds", "load s", 1), ("fidelity", "fidelity", 1), ("peak_rss_mb", "peak RSS MB", 1)]


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)  # bad options fail here, as one `error:` line
        while True:
            try:
                with _library_output(args) as args.stderr:
                    return args.command(args)
            except DamagedFile as damaged:
                if not args.move_damaged:
                    raise
                moved = move_aside(damaged.path)
                print(f"moved the damaged {damaged.path.name} aside (now {moved.name}); running again", file=sys.stderr)
    except DamagedFile as damaged:
        print(f"error: {damaged} Run again with --move-damaged to do so.", file=sys.stderr)
        return 2
    except MicrobudgetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing was stored for the unfinished run", file=sys.stderr)
        return 130


def _library_output(args: argparse.Namespace) -> contextlib.AbstractContextManager[TextIO]:
    """Libraries' warnings and notices into today's log (or, with --verbose, on stderr as they come)."""
    return logs.shown_here() if args.verbose else logs.library_output_to(logs.log_file())


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad option reported as the CLI reports any bad input: one `error:` line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise MicrobudgetError(f"{message[0].upper()}{message[1:]}.", f"See `{self.prog} --help`.")


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`."""
    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{number} is below {minimum}")
        return number
    return parse


def _amount(text: str) -> float:
    """An argparse type: a finite number of 0 or more."""
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a finite number of 0 or more")
    return number


def catalog() -> dict[str, list[dict[str, str]]]:
    """Models, datasets and techniques with one-line descriptions (the `list` output)."""
    return {
        "models": [{"id": m.id, "task": m.task, "inputs": kinds.get(m.task).INPUTS,
                    "quality": kinds.get(m.task).QUALITY, "description": m.description}
                   for m in OFFLINE_MODELS.values() if m.installed()],
        "datasets": [{"id": d.id, "modality": d.modality, "description": d.description} for d in BUNDLED.values()
                     if d.installed()]
        + [{"id": "csv:PATH", "modality": "text", "description": "your CSV: a text column and a label column"},
           {"id": "images:PATH", "modality": "image", "description": "a zip or folder with one folder per class"},
           {"id": "hf:NAME", "modality": "text or image", "description": "a Hugging Face dataset (needs network)"}],
        "techniques": [{"id": t.ID, "description": t.DESCRIPTION, "kinds": list(t.apply.kinds),
                        "runtimes": list(t.apply.runtimes)} for t in techniques.registry().values()],
    }


def _list(args: argparse.Namespace) -> int:
    listing = catalog()
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    for section, entries in listing.items():
        print(f"{section}:")
        for entry in entries:
            print(f"  {entry['id']:<16} {entry['description']}")
    return 0


def _run(args: argparse.Namespace) -> int:
    steps = _assign_settings(args.technique or [], args.set or [])
    request = Request(args.model, args.dataset, steps, args.eval_limit, CAUSAL_LM if args.language_model else None)
    _train_on(args)
    measure_config = MeasureConfig(threads=args.threads, memory=not args.no_memory, device=args.measure_device)
    kept: list = []
    with _progress_bar(args.stderr) as progress:
        run = run_pipeline(request, measure_config=measure_config, progress=progress, kept=kept)
    if run is None:  # another process of `accelerate launch`: the main one prints the result
        return 0
    if args.json:
        print(json.dumps(run.to_json(), indent=2))
    else:
        for step in kept[:-1]:  # a chain's intermediate results, each stored as a run of its own
            print(f"after {step.label}: run {step.run_id}, {_quality(step)}, "
                  f"{step.result.size_bytes / 1e6:.1f} MB, p50 {step.result.latency_ms_p50:.2f} ms")
        _print_comparison(run.baseline, run.result, run.label)
        print(_speed_line(run.ratios, run.result))
        for note in run.notes:
            print(f"note: {note}")
    return 0


@contextlib.contextmanager
def _progress_bar(stream: TextIO) -> Iterator[Progress]:
    """A progress bar on `stream`, drawn from the first report (bad input fails before it, its line alone);
    stdout is kept for the result alone (libraries' prints go where their stderr goes)."""
    bars: list[tqdm] = []

    def progress(fraction: float, message: str, **metrics: Any) -> None:
        if not devices.is_main():  # under `accelerate launch`: one bar, the main process's
            return
        if not bars:
            bars.append(tqdm(total=100, file=stream, bar_format="{l_bar}{bar}| {elapsed} {desc}"))
        bars[0].n = round(100 * fraction)
        bars[0].set_description_str(message[:70])

    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield progress
    finally:
        for bar in bars:
            bar.close()


def _train_on(args: argparse.Namespace) -> None:
    """The training device, precision and accumulation of this command (a device the machine lacks fails here)."""
    devices.use(devices.Training(args.device, args.mixed_precision, args.gradient_accumulation))


def _warm(args: argparse.Namespace) -> int:
    _train_on(args)
    plan = talk.Plan(args.model, args.dataset, args.llm, args.eval_limit, args.llm_texts,
                     speech_model=args.speech_model, speech_dataset=args.speech_dataset,
                     vision_model=args.vision_model, vision_dataset=args.vision_dataset, teacher=args.teacher,
                     full_budget=args.full_budget)
    with _progress_bar(args.stderr) as progress:
        warmed = talk.warm(plan, force=args.force, progress=progress)
    for lab in warmed:
        print(f"{lab.lab:<14} {lab.seconds:>7.0f} s  {lab.status}")
    failed = [lab.lab for lab in warmed if lab.status.startswith("failed")]
    if failed:
        print(f"warm: {len(failed)} lab(s) failed ({', '.join(failed)}); their pages open empty",
              file=args.stderr)
    return 1 if failed else 0


def _snapshot(args: argparse.Namespace) -> int:
    path = talk.take_snapshot(args.out)
    print(f"{path} ({path.stat().st_size / 1e6:.2f} MB): what every page opens on, from {home()}")
    return 0


def _runs(args: argparse.Namespace) -> int:
    runs = RunStore().list(args.dataset, quality=None)
    if args.json:
        print(json.dumps([run.to_json() for run in runs], indent=2))
        return 0
    for run in runs:
        print(f"{run.run_id}  {run.created_at}  {run.model:<14} {run.dataset:<16} {run.label:<24} "
              f"{_quality(run)}  {run.ratios['size']:.2f}x smaller  "
              f"{run.ratios['latency']:.2f}x faster{' (unstable)' if unstable(run.result.speed_check) else ''}")
    return 0


def _quality(run: Run) -> str:
    """Accuracy for a classifier, perplexity for a language model, word error rate for a speech model."""
    quality = kinds.get(run.task).QUALITY
    value = getattr(run.result, quality)
    if quality == "wer":
        return f"WER {value:.1%}"
    return f"{quality} {value:.1f}" if quality == "perplexity" else f"{quality} {value:.3f}"


def _compare(args: argparse.Namespace) -> int:
    runs = measured_on(on_hardware(RunStore().list(args.dataset), args.hardware), args.eval_examples)
    found = candidates(runs)
    limits = Limits(args.max_size_mb, args.max_latency_ms, args.min_accuracy, args.max_accuracy_drop)
    pick = recommend(found, limits)
    if args.json:
        best = pick.best and {"name": pick.best.name, "run_id": pick.best.run_id, "model": pick.best.model,
                              "metrics": pick.best.metrics.to_json()}
        eval_examples = runs[0].result.eval_examples if runs else None
        print(json.dumps({"dataset": args.dataset, "eval_examples": eval_examples,
                          "hardware": runs[0].result.measured_on if runs else None, "limits": asdict(limits),
                          "recommendation": best, "message": pick.message, "shortfalls": pick.shortfalls}, indent=2))
    else:
        print(pick.message)
    return 0


def _export(args: argparse.Namespace) -> int:
    run = RunStore().get(args.run_id)
    if run is None:
        raise MicrobudgetError(f"No run with id '{args.run_id}'.", "See the ids with `python -m microbudget_core runs`.")
    print(export_run(run, Path(args.path)))
    return 0


def _clean(args: argparse.Namespace) -> int:
    entries = clean.survey()
    doomed = clean.plan(entries, args.max_gb, args.runs)
    kinds_held: dict[str, list[int]] = {}
    for entry in entries:
        kinds_held.setdefault(entry.kind, []).append(entry.size)
    print(f"{home()} holds {sum(e.size for e in entries) / 1e9:.2f} GB:")
    for kind, sizes in kinds_held.items():
        print(f"  {kind:<18} {len(sizes):>5} entries {sum(sizes) / 1e9:>8.2f} GB")
    verb = "would remove" if args.dry_run else "removed"
    for entry in doomed:
        print(f"{verb} {entry.kind}: {entry.path.name} ({entry.size / 1e6:.1f} MB; {entry.why})")
    freed = sum(entry.size for entry in doomed) if args.dry_run else clean.remove(doomed)
    print(f"{verb} {len(doomed)} entries, {freed / 1e9:.2f} GB")
    return 0


def _assign_settings(technique_ids: list[str], settings: list[str]) -> list[tuple[str, dict[str, str]]]:
    """Route each KEY=VALUE (or TECHNIQUE.KEY=VALUE) to the one step whose Config has KEY."""
    steps: list[tuple[str, dict[str, str]]] = [(tid, {}) for tid in technique_ids]
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep:
            raise MicrobudgetError(f"Setting '{setting}' is not KEY=VALUE.", "Write it as --set KEY=VALUE.")
        target, _, field = key.rpartition(".")
        owners = [step for step in steps if (not target or step[0] == target)
                  and field in techniques.get(step[0]).Config.__dataclass_fields__]
        if len(owners) != 1:
            problem = "matches no chosen technique" if not owners else "matches several techniques"
            raise MicrobudgetError(f"Setting '{key}' {problem}.",
                                   "Name the technique: --set TECHNIQUE.KEY=VALUE, and check `list`.")
        owners[0][1][field] = value
    return steps


def _speed_line(ratios: dict[str, float], result: Measured) -> str:
    """The paired speed ratio with its interquartile range, and the machine's verdict on it."""
    spread = f" (IQR {ratios['latency_low']:.2f}-{ratios['latency_high']:.2f})" if "latency_low" in ratios else ""
    return f"speed: {ratios['latency']:.2f}x faster{spread}, timed side by side; {speed_verdict(result.speed_check)}"


def _print_comparison(baseline: Measured, result: Measured, label: str) -> None:
    print(f"{'':<14}{'original':>14}{label:>26}")
    for key, name, scale in ROWS:
        before, after = getattr(baseline, key, None), getattr(result, key, None)
        if before is not None and after is not None:
            print(f"{name:<14}{before * scale:>14.3f}{after * scale:>26.3f}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m microbudget_core",
                     description="Make a model smaller and faster, and measure what it costs.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true",
                        help="show libraries' warnings and notices on stderr "
                             "(else: MICROBUDGET_HOME/logs/cli-DATE.log)")
    common.add_argument("--move-damaged", action="store_true",
                        help="move a damaged runs store or lab results file aside (kept, renamed NAME.damaged-TIME) "
                             "and start a new one")
    training = argparse.ArgumentParser(add_help=False)
    training.add_argument("--device", choices=devices.DEVICES, default=devices.AUTO,
                          help="where training runs (through Accelerate); auto: the GPU where there is one "
                               "(default: %(default)s)")
    training.add_argument("--mixed-precision", choices=devices.PRECISIONS, default="no",
                          help="train in bf16 or fp16 mixed precision (fp16: a GPU only; default: %(default)s)")
    training.add_argument("--gradient-accumulation", type=_count(1), default=1, metavar="N",
                          help="batches per optimizer step (default: %(default)s)")
    commands = parser.add_subparsers(required=True)

    def command(name: str, help: str, *more: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, parents=[common, *more])

    listing = command("list", "models, datasets and techniques")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(command=_list)
    run = command("run", "run techniques on a model and compare with the original", training)
    run.add_argument("--model", required=True, help="an id from `list`, a hub id, or a local folder")
    run.add_argument("--dataset", required=True,
                     help="an id from `list`, csv:PATH, images:PATH, audio:PATH, spoken:DATASET or hf:NAME")
    run.add_argument("--technique", action="append", help="repeat to chain steps, in order")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="a technique setting (repeatable)")
    run.add_argument("--eval-limit", type=_count(1), help="measure on the first N eval examples only")
    run.add_argument("--threads", type=_count(1), default=MeasureConfig.threads,
                     help="threads for every measurement, the original's too (default: %(default)s)")
    run.add_argument("--no-memory", action="store_true", help="skip the peak-memory probe (saves seconds)")
    run.add_argument("--measure-device", choices=devices.DEVICES[1:], default=devices.CPU,
                     help="where quality and speed are measured: the CPU (the serving target) unless a GPU is asked "
                          "for; PyTorch classifiers only, other rows stay on the CPU (default: %(default)s)")
    run.add_argument("--language-model", action="store_true",
                     help="measure a causal LM as a language model: perplexity on the dataset's eval texts, "
                          "tokens/s, a fixed completion (default: as a classifier of the dataset's labels)")
    run.add_argument("--json", action="store_true")
    run.set_defaults(command=_run)
    runs = command("runs", "the stored runs")
    runs.add_argument("--dataset")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(command=_runs)
    compare = command("compare", "the best stored run of a dataset within your limits")
    compare.add_argument("--dataset", required=True)
    compare.add_argument("--max-size-mb", type=_amount)
    compare.add_argument("--max-latency-ms", type=_amount, help="p50 at batch 1")
    compare.add_argument("--min-accuracy", type=_amount, help="a fraction, e.g. 0.8")
    compare.add_argument("--max-accuracy-drop", type=_amount, help="points below the best original")
    compare.add_argument("--eval-examples", type=_count(1),
                         help="compare the runs measured on this many eval examples (default: the most)")
    compare.add_argument("--hardware", help="compare the runs measured on this hardware, as `runs --json` names it "
                                            "(result.measured_on; default: the hardware of the most runs)")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(command=_compare)
    warm = command("warm", "before a talk: compute what every page opens on (kept results are reused)", training)
    defaults = talk.Plan()
    warm.add_argument("--model", default=defaults.model, help="the labs' model (default: %(default)s)")
    warm.add_argument("--dataset", default=defaults.dataset, help="the labs' dataset (default: %(default)s)")
    warm.add_argument("--llm", default=defaults.llm,
                      help="the LLM pages' model, for a text dataset (default: %(default)s)")
    warm.add_argument("--eval-limit", type=_count(1), default=defaults.eval_limit,
                      help="eval examples of every classification row (default: %(default)s)")
    warm.add_argument("--llm-texts", type=_count(1), default=defaults.llm_texts,
                      help="texts for the LLM levels' perplexity (default: %(default)s)")
    warm.add_argument("--speech-model", default=defaults.speech_model,
                      help="the Speech page's model (default: %(default)s)")
    warm.add_argument("--speech-dataset", default=defaults.speech_dataset,
                      help="the Speech page's clips (default: %(default)s)")
    warm.add_argument("--vision-model", default=defaults.vision_model,
                      help="the Transfer and Architectures pages' image model, for a text dataset (default: %(default)s)")
    warm.add_argument("--vision-dataset", default=defaults.vision_dataset,
                      help="their image dataset (default: %(default)s)")
    warm.add_argument("--teacher", default=defaults.teacher,
                      help="the Distillation page's teacher, for a text dataset; '' for the labs' model "
                           "(default: %(default)s)")
    warm.add_argument("--full-budget", action="store_true",
                      help="the labs' full budgets (the benchmarks' figures; about an hour) rather than the pages' quick "
                           "defaults (a few minutes each)")
    warm.add_argument("--force", action="store_true", help="compute every lab again, even where results are kept")
    warm.set_defaults(command=_warm)
    shot = command("snapshot", "after warm: write what every page opens on into the results snapshot")
    shot.add_argument("--out", type=Path, default=snapshot.COMMITTED,
                      help="the snapshot's folder (default: the repository's, %(default)s)")
    shot.set_defaults(command=_snapshot)
    cleaning = command("clean", "what the data folder holds; remove orphans and, over a cap, old cache entries")
    cleaning.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    cleaning.add_argument("--max-gb", type=_amount,
                          help="remove the least recently used cache entries until the data folder is this small")
    cleaning.add_argument("--runs", action="store_true",
                          help="under --max-gb, stored runs' models may go too (their measurements stay)")
    cleaning.set_defaults(command=_clean)
    export = command("export", "a run's model and its model card, into a new folder")
    export.add_argument("run_id")
    export.add_argument("path")
    export.set_defaults(command=_export)
    return parser
