"""Plotly figures: pure functions of runs, shared by the app's pages and exports."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .runs import Run

ORIGINAL_COLOUR = "#94a3b8"
RESULT_COLOUR = "#0f766e"

# (metric key, panel title, scale, unit, True when smaller is better)
PANELS = [
    ("size_bytes", "Size", 1e-6, "MB", True),
    ("latency_ms_p50", "Latency p50 (batch 1)", 1, "ms", True),
    ("throughput_per_s", "Throughput (batch 32)", 1, "/s", False),
    ("accuracy", "Accuracy", 100, "%", False),
]


def comparison_figure(run: Run) -> go.Figure:
    """Original vs result, one panel per metric, each titled with the change it shows."""
    figure = make_subplots(rows=1, cols=len(PANELS), subplot_titles=[_title(run, p) for p in PANELS])
    for column, (key, _, scale, unit, _) in enumerate(PANELS, start=1):
        values = [run.baseline[key] * scale, run.result[key] * scale]
        figure.add_trace(go.Bar(x=["original", run.label], y=values, marker_color=[ORIGINAL_COLOUR, RESULT_COLOUR],
                                text=[f"{v:,.1f} {unit}" for v in values], textposition="auto",
                                hovertemplate="%{x}: %{y:,.2f} " + unit + "<extra></extra>", showlegend=False),
                         row=1, col=column)
    figure.update_layout(height=360, margin=dict(l=20, r=20, t=60, b=20), bargap=0.3)
    return figure


def _title(run: Run, panel: tuple) -> str:
    key, name, _, _, smaller_is_better = panel
    before, after = run.baseline[key], run.result[key]
    if key == "accuracy":
        return f"{name}<br><sub>{(after - before) * 100:+.1f} pt</sub>"
    if not before or not after:
        return name
    factor = before / after if smaller_is_better else after / before
    word = {"size_bytes": "smaller", "latency_ms_p50": "faster", "throughput_per_s": "more"}[key]
    return f"{name}<br><sub>{factor:.2f}x {word}</sub>"


def summary(run: Run) -> str:
    """One line a person can say out loud: '3.9x smaller, 1.3x faster, -0.4 pt accuracy'."""
    drop = (run.result["accuracy"] - run.baseline["accuracy"]) * 100
    return (f"{run.ratios['size']:.1f}x smaller, {run.ratios['latency']:.1f}x faster, "
            f"{drop:+.1f} pt accuracy, {run.result['fidelity'] * 100:.1f}% same predictions")


def sweep_figure(runs: list[Run]) -> go.Figure:
    """Accuracy and size against bits for a weight-only sweep, the original as a dashed line."""
    runs = sorted(runs, key=lambda r: r.steps[-1]["config"]["bits"])
    bits = [r.steps[-1]["config"]["bits"] for r in runs]
    original = runs[0].baseline
    figure = make_subplots(rows=1, cols=2, subplot_titles=["Accuracy vs bits", "Size vs bits"])
    panels = [("accuracy", 100, "%"), ("size_bytes", 1e-6, "MB")]
    for column, (key, scale, unit) in enumerate(panels, start=1):
        figure.add_trace(go.Scatter(x=bits, y=[r.result[key] * scale for r in runs], mode="lines+markers",
                                    name=f"weight-only {key.split('_')[0]}", marker_color=RESULT_COLOUR,
                                    hovertemplate="%{x} bits: %{y:,.2f} " + unit + "<extra></extra>"),
                         row=1, col=column)
        figure.add_hline(y=original[key] * scale, line_dash="dash", line_color=ORIGINAL_COLOUR,
                         annotation_text=f"original {original[key] * scale:,.1f} {unit}", row=1, col=column)
        figure.update_xaxes(title_text="bits per weight", tickvals=bits, row=1, col=column)
    figure.update_layout(height=380, showlegend=False, margin=dict(l=20, r=20, t=60, b=20))
    return figure
