"""Plotly figures: pure functions of runs and of explainer results, shared by the app's pages and exports."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import Measured
from .labs.compare import Candidate, pareto_front, quality_name, score
from .yardstick import unstable
from .runs import Run

if TYPE_CHECKING:  # annotations only: importing the explainer would pull torch and the model loaders in here
    from .explainer import Explanation
    from .labs.llm_quantization import LevelRow

ORIGINAL_COLOUR = "#94a3b8"
RESULT_COLOUR = "#0f766e"
SECOND_COLOUR = "#7c3aed"  # a second series beside the results (another backend)

# (metric key, panel title, scale, unit, True when smaller is better)
PANELS = [
    ("size_bytes", "Size", 1e-6, "MB", True),
    ("latency_ms_p50", "Latency p50 (batch 1)", 1, "ms", True),
    ("throughput_per_s", "Throughput (batch 32)", 1, "/s", False),
    ("accuracy", "Accuracy", 100, "%", False),
]


def comparison_figure(run: Run) -> go.Figure:
    """Original vs result, one panel per metric, each titled with the change it shows; latency bars carry their
    interquartile range, and a speed measured on a busy machine is hatched and said."""
    figure = make_subplots(rows=1, cols=len(PANELS), subplot_titles=[_title(run, p) for p in PANELS])
    rows = [run.baseline, run.result]
    for column, (key, _, scale, unit, _) in enumerate(PANELS, start=1):
        values = [getattr(row, key) * scale for row in rows]
        figure.add_trace(go.Bar(x=["original", run.label], y=values, marker_color=[ORIGINAL_COLOUR, RESULT_COLOUR],
                                marker_pattern_shape=[_hatch(row, key) for row in rows],
                                error_y=_spread(rows, key, scale), text=[f"{v:,.1f} {unit}" for v in values],
                                textposition="auto",
                                hovertemplate="%{x}: %{y:,.2f} " + unit + "<extra></extra>", showlegend=False),
                         row=1, col=column)
    figure.update_layout(height=360, margin=dict(l=20, r=20, t=60, b=20), bargap=0.3)
    return figure


SPEED_KEYS = ("latency_ms_p50", "throughput_per_s", "tokens_per_s", "seconds_per_clip", "p50_ms")


def _symbol(symbol: str, busy: Any) -> str:
    """A marker's symbol, open where it shows a speed measured on a busy machine."""
    return symbol + "-open" if busy else symbol


def _hatch(figures: Measured, key: str) -> str:
    """A hatched bar where the figure is a speed measured on a busy machine."""
    return "/" if key in SPEED_KEYS and unstable(figures.speed_check) else ""


def _spread(rows: list[Measured], key: str, scale: float) -> dict[str, Any] | None:
    """Error bars from each row's 25th to 75th latency percentile (None for other panels and older runs)."""
    if key != "latency_ms_p50" or any(row.latency_ms_p25 is None for row in rows):
        return None
    return dict(type="data", symmetric=False, color="#1e293b", thickness=1.5,
                array=[(row.latency_ms_p75 - row.latency_ms_p50) * scale for row in rows],
                arrayminus=[(row.latency_ms_p50 - row.latency_ms_p25) * scale for row in rows])


def _title(run: Run, panel: tuple) -> str:
    key, name, _, _, smaller_is_better = panel
    before, after = getattr(run.baseline, key), getattr(run.result, key)
    if key == "accuracy":
        return f"{name}<br><sub>{(after - before) * 100:+.1f} pt</sub>"
    if not before or not after:
        return name
    figure = {"latency_ms_p50": "latency", "throughput_per_s": "throughput"}.get(key)
    if figure in run.ratios:  # timed side by side: the paired ratio and its interquartile range
        factor = run.ratios[figure]
        spread = f" ({run.ratios[figure + '_low']:.2f}-{run.ratios[figure + '_high']:.2f})"
    else:
        factor, spread = before / after if smaller_is_better else after / before, ""
    word = {"size_bytes": "smaller", "latency_ms_p50": "faster", "throughput_per_s": "more"}[key]
    warning = " ⚠ unstable" if figure and unstable(run.result.speed_check) else ""
    return f"{name}<br><sub>{factor:.2f}x {word}{spread}{warning}</sub>"


def summary(run: Run) -> str:
    """One line a person can say out loud: '3.9x smaller, 1.3x faster, -0.4 pt accuracy'."""
    drop = (run.result.accuracy - run.baseline.accuracy) * 100
    busy = " (speed unstable: measured on a busy machine)" if unstable(run.result.speed_check) else ""
    return (f"{run.ratios['size']:.1f}x smaller, {run.ratios['latency']:.1f}x faster{busy}, "
            f"{drop:+.1f} pt accuracy, {run.result.fidelity * 100:.1f}% same predictions")


INT8_STYLES = [("diamond", "#7c3aed"), ("square", "#d97706"), ("triangle-up", "#2563eb"), ("x", "#be123c")]


def sweep_name(run: Run) -> str:
    """A sweep row's name: the bit width for weight-only rows (whatever the defaults), else the label."""
    step = run.steps[-1]
    return f"weight-only {step['config']['bits']}-bit" if step["technique"] == "weight-only" else run.label


def sweep_figure(runs: list[Run]) -> go.Figure:
    """Accuracy, size and latency against bits: the weight-only line, int8 paths as points at 8 bits,
    the original as a dashed line; a latency measured on a busy machine is an open marker."""
    weight_only = sorted((r for r in runs if r.steps[-1]["technique"] == "weight-only"),
                         key=lambda r: r.steps[-1]["config"]["bits"])
    int8 = [r for r in runs if r.steps[-1]["technique"] != "weight-only"]
    bits = [r.steps[-1]["config"]["bits"] for r in weight_only]
    original = runs[0].baseline
    panels = [("accuracy", 100, "%", "Accuracy"), ("size_bytes", 1e-6, "MB", "Size"),
              ("latency_ms_p50", 1, "ms", "Latency p50 (batch 1)")]
    figure = make_subplots(rows=1, cols=3, subplot_titles=[f"{title} vs bits" for *_, title in panels])
    for column, (key, scale, unit, _) in enumerate(panels, start=1):
        figure.add_trace(go.Scatter(x=bits, y=[getattr(r.result, key) * scale for r in weight_only], mode="lines+markers",
                                    name="weight-only", legendgroup="weight-only", showlegend=column == 1,
                                    marker=dict(color=RESULT_COLOUR, symbol=[
                                        _symbol("circle", key in SPEED_KEYS and unstable(r.result.speed_check))
                                        for r in weight_only]),
                                    hovertemplate="weight-only %{x} bits: %{y:,.2f} " + unit + "<extra></extra>"),
                         row=1, col=column)
        for run, (symbol, colour) in zip(int8, INT8_STYLES):
            figure.add_trace(go.Scatter(x=[8], y=[getattr(run.result, key) * scale], mode="markers", name=run.label,
                                        legendgroup=run.label, showlegend=column == 1,
                                        marker=dict(symbol=_symbol(symbol, key in SPEED_KEYS and unstable(run.result.speed_check)),
                                                    color=colour, size=11),
                                        hovertemplate=run.label + ": %{y:,.2f} " + unit + "<extra></extra>"),
                             row=1, col=column)
        figure.add_hline(y=getattr(original, key) * scale, line_dash="dash", line_color=ORIGINAL_COLOUR,
                         annotation_text=f"original {getattr(original, key) * scale:,.1f} {unit}", row=1, col=column)
        figure.update_xaxes(title_text="bits per weight", tickvals=sorted({*bits, 8}), row=1, col=column)
    figure.update_layout(height=400, margin=dict(l=20, r=20, t=60, b=20),
                         legend=dict(orientation="h", yanchor="top", y=-0.25))
    return figure


GRID_COLOUR = "#d97706"
EXPLAINER_BINS = 120  # about this many histogram bins across the weights' range
MAX_GRID_LINES = 64  # more grid levels than this are thinned out, or 8 bits would paint the plot solid


def explainer_figure(explanation: Explanation) -> go.Figure:
    """Histogram of a layer's weights before and after quantization, with the quantization grid overlaid.

    The histograms are binned here (a few hundred numbers reach the browser, not the sample itself), on bins
    aligned to the grid so the restored weights, which sit on grid levels, do not alias into a comb.
    """
    e = explanation
    edges = _grid_aligned_edges(e)
    # Plain lists, not numpy arrays (which plotly encodes as base64): the spec stays readable JSON for exports.
    centres, widths = ((edges[:-1] + edges[1:]) / 2).tolist(), np.diff(edges).tolist()
    figure = go.Figure()
    for name, values, colour in [("original (fp32)", e.original, ORIGINAL_COLOUR),
                                 (f"after {e.bits}-bit round trip", e.restored, RESULT_COLOUR)]:
        figure.add_trace(go.Bar(x=centres, y=np.histogram(values, edges)[0].tolist(), width=widths, name=name,
                                marker_color=colour, opacity=0.6,
                                hovertemplate="%{x:.4g}: %{y:,} weights<extra>" + name + "</extra>"))
    step = math.ceil(len(e.grid) / MAX_GRID_LINES)
    levels = e.grid[::step]
    grid_name = f"{len(e.grid)}-level grid" + (f" of channel {e.channel}" if e.per_channel else "")
    if step > 1:
        grid_name += f" (1 in {step} levels drawn)"
    # One trace of vertical segments on a hidden 0..1 axis: full height whatever the counts, one legend entry.
    figure.add_trace(go.Scatter(x=np.repeat(levels, 3).tolist(), y=[0.0, 1.0, None] * len(levels), yaxis="y2",
                                mode="lines", line=dict(color=GRID_COLOUR, width=1), opacity=0.7, name=grid_name,
                                hovertemplate="level %{x:.4g}<extra></extra>"))
    granularity = "per-channel" if e.per_channel else "per-tensor"
    figure.update_layout(
        title=(f"{e.bits}-bit {'symmetric' if e.symmetric else 'asymmetric'}, {granularity}: "
               f"SQNR {e.error['sqnr_db']:.1f} dB, relative error {e.error['relative']:.1%}"),
        barmode="overlay", height=420, margin=dict(l=20, r=20, t=60, b=20),
        xaxis_title="weight value", yaxis=dict(title="weights per bin (log)", type="log", dtick=1),  # 1, 10, 100...
        yaxis2=dict(overlaying="y", range=[0, 1], visible=False),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0))
    return figure


def _grid_aligned_edges(e: Explanation) -> np.ndarray:
    """Histogram bin edges over the weights' range whose width is a multiple or a fraction of S.

    Coarse grids get several bins per level with each level centred in one; fine grids get several whole
    levels per bin. The alignment is exact for the shown grid (every row's, per-tensor).
    """
    low = float(min(e.original.min(), e.restored.min()))
    high = float(max(e.original.max(), e.restored.max()))
    levels_spanned = max((high - low) / e.scale, 1.0)
    if levels_spanned >= EXPLAINER_BINS:
        width = e.scale * math.ceil(levels_spanned / EXPLAINER_BINS)
        origin = e.grid[0] - e.scale / 2
    else:
        width = e.scale / math.floor(EXPLAINER_BINS / levels_spanned)
        origin = e.grid[0] - width / 2
    start = origin + math.floor((low - origin) / width) * width
    return start + width * np.arange(math.floor((high - start) / width) + 2)


STRATEGY_COLOURS = {"finetune-head": "#0f766e", "finetune-last-n": "#2563eb", "finetune-full": "#7c3aed",
                    "from-scratch": "#be123c", "student": RESULT_COLOUR, "control": "#d97706"}


def training_figure(histories: dict[str, list[dict]], teacher_accuracy: float | None = None) -> go.Figure:
    """Training loss and validation accuracy per epoch, one line per run (live while training); the teacher's
    accuracy on the same validation examples as a dashed line, where there is one."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=["Training loss", "Validation accuracy"])
    epochs = [row["epoch"] for history in histories.values() for row in history]
    if teacher_accuracy is not None and epochs:  # a trace, not a shape: the axis range then includes it
        figure.add_trace(go.Scatter(x=[min(epochs), max(epochs)], y=[teacher_accuracy] * 2, mode="lines",
                                    name=f"teacher {teacher_accuracy:.1%}", line=dict(dash="dash", color=ORIGINAL_COLOUR)),
                         row=1, col=2)
    for name, history in histories.items():
        epochs = [row["epoch"] for row in history]
        for column, key in enumerate(("loss", "val_accuracy"), start=1):
            figure.add_trace(go.Scatter(x=epochs, y=[row[key] for row in history], mode="lines+markers", name=name,
                                        legendgroup=name, showlegend=column == 1,
                                        marker_color=STRATEGY_COLOURS.get(name.split("(")[0].strip())),
                             row=1, col=column)
    figure.update_xaxes(title_text="epoch", dtick=1)
    figure.update_layout(height=320, margin=dict(l=20, r=20, t=50, b=20))
    return figure


def confusion_figure(matrix: list[list[int]], labels: list[str]) -> go.Figure:
    """The eval confusion matrix: true class down, predicted class across, counts in the cells."""
    figure = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Teal", text=matrix,
                                  texttemplate="%{text}", hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    figure.update_layout(height=360, margin=dict(l=20, r=20, t=30, b=20), xaxis_title="predicted",
                         yaxis_title="true", yaxis_autorange="reversed")
    return figure


def _per_class(run: Run) -> float:
    """Training examples per class the run used (its report's figure, else the average)."""
    return run.result.report.get("examples_per_class") or run.result.train_examples / len(run.result.confusion_matrix)


def curve_figure(runs: list[Run]) -> go.Figure:
    """Data efficiency: eval accuracy against training examples per class, one line per strategy."""
    figure = go.Figure()
    strategies = dict.fromkeys(run.steps[-1]["technique"] for run in runs)
    for strategy in strategies:
        points = sorted((_per_class(run), run.result.accuracy) for run in runs
                        if run.steps[-1]["technique"] == strategy)
        figure.add_trace(go.Scatter(x=[x for x, _ in points], y=[y * 100 for _, y in points], mode="lines+markers",
                                    name=strategy, marker_color=STRATEGY_COLOURS.get(strategy),
                                    hovertemplate=strategy + ": %{x:,.0f} per class, %{y:.1f}%<extra></extra>"))
    original = runs[0].baseline.accuracy * 100
    figure.add_hline(y=original, line_dash="dash", line_color=ORIGINAL_COLOUR,
                     annotation_text=f"default recipe, all data: {original:.1f}%")
    figure.update_layout(height=400, margin=dict(l=20, r=20, t=30, b=20), yaxis_title="eval accuracy (%)",
                         xaxis=dict(type="log", title="training examples per class"))
    return figure


TECHNIQUE_PALETTE = plotly.colors.qualitative.Dark24  # 24 distinct colours: one per technique in practice
PARETO_AXES = [("latency_ms_p50", 1, "p50 latency, batch 1 (ms)"), ("size_bytes", 1e-6, "size (MB)")]


def pareto_figure(found: list[Candidate]) -> go.Figure:
    """Accuracy (a speech model's WER) against latency and against size: point size = parameters, colour =
    technique, the originals as stars, each panel's Pareto frontier drawn and the runs it dominates faded; latencies
    carry their interquartile range, and a speed measured on a busy machine is an open marker."""
    quality = quality_name(found)
    figure = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                           subplot_titles=[f"{quality.capitalize() if quality == 'accuracy' else quality} vs {axis}"
                                           for axis in ("latency", "size")])
    # The originals last, so their stars sit on top of the runs that cluster around them.
    techniques = sorted(dict.fromkeys(c.technique for c in found), key=lambda t: t == "original")
    colours = {t: ORIGINAL_COLOUR if t == "original" else TECHNIQUE_PALETTE[i % len(TECHNIQUE_PALETTE)]
               for i, t in enumerate(techniques)}
    largest = max((c.metrics.params or 1 for c in found), default=1)
    for column, (key, scale, title) in enumerate(PARETO_AXES, start=1):
        xs = [getattr(c.metrics, key) * scale for c in found]
        ys = [abs(score(c.metrics)) * 100 for c in found]  # accuracy or WER, in %
        front = pareto_front(xs, [score(c.metrics) for c in found])
        for technique in techniques:
            members = [i for i, c in enumerate(found) if c.technique == technique]
            figure.add_trace(go.Scatter(
                x=[xs[i] for i in members], y=[ys[i] for i in members], mode="markers", name=technique,
                legendgroup=technique, showlegend=column == 1, customdata=[found[i].run_id or "" for i in members],
                text=[f"{found[i].name}<br>{found[i].model}" + _busy_note(found[i].metrics) for i in members],
                error_x=_spread([found[i].metrics for i in members], key, scale),
                marker=dict(color=colours[technique],
                            symbol=[_symbol("star" if technique == "original" else "circle",
                                            unstable(found[i].metrics.speed_check)) for i in members],
                            size=[8 + 22 * math.sqrt((found[i].metrics.params or 1) / largest)
                                  for i in members],
                            opacity=[1.0 if front[i] or technique == "original" else 0.25 for i in members],
                            line=dict(width=1.5 if technique == "original" else 0, color="#1e293b")),
                hovertemplate="%{text}<br>%{x:,.2f} " + title.split("(")[-1].rstrip(")")
                              + f", {quality} %{{y:.1f}}%<extra></extra>"),
                row=1, col=column)
        frontier = sorted((xs[i], ys[i]) for i in range(len(found)) if front[i])
        figure.add_trace(go.Scatter(x=[x for x, _ in frontier], y=[y for _, y in frontier], mode="lines",
                                    line=dict(color="#334155", dash="dot", shape="hv"), name="Pareto frontier",
                                    legendgroup="frontier", showlegend=column == 1, hoverinfo="skip"),
                         row=1, col=column)
        figure.update_xaxes(title_text=title, type="log", row=1, col=column)
    figure.update_yaxes(title_text=f"eval {quality} (%)" + (" (lower is better)" if quality == "WER" else ""),
                        row=1, col=1)
    figure.update_layout(height=460, margin=dict(l=20, r=20, t=50, b=20),
                         legend=dict(orientation="h", yanchor="top", y=-0.18))
    return figure


def _busy_note(figures: Measured) -> str:
    """A hover line for a speed measured on a busy machine (such points are drawn open)."""
    reason = unstable(figures.speed_check)
    return f"<br>⚠ speed unstable: {reason}" if reason else ""


def architectures_figure(rows: list[dict]) -> go.Figure:
    """Accuracy against multiply-adds and against p50 latency, one labelled point per architecture (open where the
    latency was measured on a busy machine)."""
    figure = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                           subplot_titles=["Accuracy vs multiply-adds", "Accuracy vs latency"])
    for column, (key, scale, title) in enumerate([("multiply_adds", 1e-6, "multiply-adds per input (M)"),
                                                  ("latency_ms_p50", 1, "p50 latency, batch 1 (ms)")], start=1):
        figure.add_trace(go.Scatter(
            x=[row[key] * scale for row in rows], y=[row["accuracy"] * 100 for row in rows],
            mode="markers+text", text=[row["architecture"] for row in rows], textposition="top center",
            cliponaxis=False,  # names at the axes' ends stay whole
            marker=dict(size=12, color=TECHNIQUE_PALETTE[column - 1],
                        symbol=[_symbol("circle", key in SPEED_KEYS and unstable(row.get("speed_check"))) for row in rows]),
            showlegend=False,
            hovertemplate="%{text}: %{x:,.1f}, accuracy %{y:.1f}%<extra></extra>"), row=1, col=column)
        figure.update_xaxes(title_text=title, type="log", row=1, col=column)
    figure.update_yaxes(title_text="eval accuracy (%)", row=1, col=1)
    figure.update_layout(height=420, margin=dict(l=70, r=70, t=50, b=20))
    return figure


LINEUP_PANELS = [("size_mb", "Size", "MB"), ("p50_ms", "Latency p50 (batch 1)", "ms"), ("accuracy", "Accuracy", "%")]


def lineup_figure(rows: list[Any], name: str = "model", panels: list[tuple[str, str, str]] = LINEUP_PANELS,
                  log_panels: tuple[str, ...] = ()) -> go.Figure:
    """One bar per row (the original first, in grey) in each panel, e.g. what a student keeps of its teacher.

    `rows` are a lab's row dataclasses; `name` and each panel's first item name their fields. A row's `speed`
    saying "unstable" marks its name and hatches its speed bars; `<field>_p25` / `<field>_p75` draw error bars."""
    names = [getattr(row, name) + (" ⚠" if _row_unstable(row) else "") for row in rows]
    colours = [ORIGINAL_COLOUR] + TECHNIQUE_PALETTE[:len(rows) - 1]
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=[title for _, title, _ in panels])
    for column, (key, _, unit) in enumerate(panels, start=1):
        scale = 100 if unit == "%" else 1
        values = [getattr(row, key) * scale for row in rows]
        spread = None
        if all(hasattr(row, f"{key}_p25") for row in rows):  # a speed's interquartile range, as error bars
            spread = dict(type="data", symmetric=False, color="#1e293b", thickness=1.5,
                          array=[getattr(row, f"{key}_p75") * scale - v for row, v in zip(rows, values)],
                          arrayminus=[v - getattr(row, f"{key}_p25") * scale for row, v in zip(rows, values)])
        hatch = ["/" if key in SPEED_KEYS and _row_unstable(row) else "" for row in rows]
        figure.add_trace(go.Bar(x=names, y=values, marker_color=colours, marker_pattern_shape=hatch, error_y=spread,
                                showlegend=False,
                                text=[f"{v:,.3g} {unit}" if key in log_panels else f"{v:,.1f} {unit}" for v in values],
                                textposition="auto",
                                hovertemplate="%{x}: %{y:,.3g} " + unit + "<extra></extra>"), row=1, col=column)
        if key in log_panels:
            figure.update_yaxes(type="log", row=1, col=column)
    figure.update_layout(height=380, margin=dict(l=20, r=20, t=50, b=20), bargap=0.25)
    return figure


def _row_unstable(row: Any) -> bool:
    return str(getattr(row, "speed", "")).startswith("unstable")


def levels_figure(rows: list[LevelRow]) -> go.Figure:
    """Perplexity, tokens/s and size at each level, one colour per backend; the original as a dashed line; a
    tokens/s measured on a busy machine is an open marker."""
    original, levels = rows[0], rows[1:]
    panels = [("perplexity", "Perplexity (lower is better, log)", True), ("tokens_per_s", "Tokens per second", False),
              ("size_mb", "Stored size, MB", False)]
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=[title for _, title, _ in panels])
    names = [row.level for row in levels]
    backends = list(dict.fromkeys(row.backend for row in levels))
    for column, (key, _, log) in enumerate(panels, start=1):
        for number, backend in enumerate(backends):
            mine = [row for row in levels if row.backend == backend]
            colour = RESULT_COLOUR if number == 0 else SECOND_COLOUR
            figure.add_trace(go.Scatter(x=[row.level for row in mine], y=[getattr(row, key) for row in mine],
                                        mode="lines+markers+text", name=backend, legendgroup=backend,
                                        marker=dict(size=10, color=colour, symbol=[
                                            _symbol("circle", key in SPEED_KEYS and _row_unstable(row))
                                            for row in mine]),
                                        line=dict(color=colour),
                                        text=[f"{getattr(row, key):,.3g}" for row in mine], textposition="top center",
                                        showlegend=column == 1, customdata=[row.tensor_types for row in mine],
                                        hovertemplate="%{x}: %{y:,.4g}<br>%{customdata}<extra></extra>"),
                             row=1, col=column)
        # A dashed trace, not add_hline: plotly reads a shape's and annotation's y as log10(y) on log axes.
        figure.add_trace(go.Scatter(x=names, y=[getattr(original, key)] * len(names), mode="lines",
                                    name=original.level,
                                    line=dict(dash="dash", color=ORIGINAL_COLOUR), showlegend=column == 1,
                                    hovertemplate=f"{original.level}: %{{y:,.4g}}<extra></extra>"),
                         row=1, col=column)
        figure.update_xaxes(categoryorder="array", categoryarray=names, row=1, col=column)
        if log:
            figure.update_yaxes(type="log", row=1, col=column)
        else:
            figure.update_yaxes(rangemode="tozero", row=1, col=column)
    figure.update_layout(height=420, margin=dict(l=20, r=20, t=50, b=60), legend=dict(orientation="h", y=-0.2))
    return figure


def temperature_figure(labels: list[str], targets: dict[float, np.ndarray]) -> go.Figure:
    """The teacher's softmax for one input at each temperature: higher T, softer targets."""
    figure = make_subplots(rows=1, cols=len(targets), shared_yaxes=True,
                           subplot_titles=[f"T = {t:g}" for t in targets])
    for column, probabilities in enumerate(targets.values(), start=1):
        figure.add_trace(go.Bar(x=labels, y=probabilities, marker_color=RESULT_COLOUR, showlegend=False,
                                hovertemplate="%{x}: %{y:.3f}<extra></extra>"), row=1, col=column)
    figure.update_yaxes(range=[0, 1], row=1, col=1, title_text="probability")
    figure.update_layout(height=300, margin=dict(l=20, r=20, t=50, b=20))
    return figure


def pruning_figure(rows: list[Any]) -> go.Figure:
    """Accuracy against the batch-1 speed-up over the original across pruning ratios: one line per method (labelled
    by ratio), the original as a star at 1x. Each speed-up was timed side by side with the original (its spread as
    error bars): rows timed in different windows compare through it, not through their milliseconds."""
    figure = go.Figure()
    methods = list(dict.fromkeys(row.method for row in rows))
    for number, method in enumerate(methods):
        members = sorted((row for row in rows if row.method == method), key=lambda row: row.ratio or 0)
        original = method == "original"
        figure.add_trace(go.Scatter(
            x=[row.x_faster for row in members], y=[row.accuracy * 100 for row in members], name=method,
            mode="markers" if original else "lines+markers+text", textposition="top center",
            text=[] if original else [f"{row.ratio:.0%}" for row in members],
            error_x=dict(type="data", symmetric=False, array=[row.x_faster_high - row.x_faster for row in members],
                         arrayminus=[row.x_faster - row.x_faster_low for row in members], thickness=1),
            marker=dict(size=14 if original else 10,
                        color=ORIGINAL_COLOUR if original else TECHNIQUE_PALETTE[number % len(TECHNIQUE_PALETTE)],
                        symbol=[_symbol("star" if original else "circle", _row_unstable(row)) for row in members]),
            hovertemplate="%{x:.2f}x faster, accuracy %{y:.1f}%<extra>" + method + "</extra>"))
    figure.update_xaxes(title_text="x faster than the original at batch 1 (timed side by side)")
    figure.update_yaxes(title_text="eval accuracy (%)")
    figure.update_layout(height=440, margin=dict(l=20, r=20, t=30, b=20),
                         legend=dict(orientation="h", yanchor="top", y=-0.2))
    return figure
