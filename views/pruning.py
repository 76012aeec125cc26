"""Pruning lab: remove heads, neurons or channels for a real speed-up, recover by distillation, and see why zeroing
single weights does not make a model faster."""

import streamlit as st

import ui
from microbudget_core import plots, techniques
from microbudget_core.labs import pruning
from microbudget_core.pipeline import Request

st.title("Pruning")
st.markdown("**Structured** pruning removes whole attention heads and feed-forward neurons (text) or conv channels "
            "(vision): the matrices get smaller, so every kernel does less work. The pruned model then **recovers** "
            "its accuracy by distillation from the unpruned model. **Unstructured** pruning zeroes the smallest single "
            "weights at the same ratio: the matrices keep their shapes, and a dense kernel multiplies the zeros too.")

model, dataset = ui.pick_model_and_dataset()
ui.dataset_preview(dataset)
ratios = st.multiselect("Ratios: the share of heads, neurons or channels removed", [0.1, 0.25, 0.5, 0.6, 0.75, 0.9],
                        default=list(pruning.RATIOS), format_func=lambda r: f"{r:.0%}", key="prune_ratios")
with st.expander("Pruning and recovery settings"):
    full = ui.full_budget("prune_full", "one recovery epoch on 500 labelled examples per class",
                          "the benchmark figures' recovery: 3 epochs on every labelled example")
    settings = ui.technique_settings(techniques.get("prune"), f"prune_{'full' if full else 'quick'}",
                                     skip=("ratio",), columns=4, defaults=pruning.default_settings(full))
left, middle, right, eval_column = st.columns(4)
unstructured = left.checkbox("Unstructured at the same ratios", True, key="prune_unstructured",
                             help="prune-unstructured: the smallest weights zeroed, shapes unchanged.")
control = middle.checkbox("Hard-label recovery too", False, key="prune_control",
                          help="The control: the same pruned model recovered on the labels alone.")
int8 = right.checkbox("Then ONNX Runtime int8", False, key="prune_int8",
                      help="The chain: each recovered model exported and quantized to int8.")
eval_limit = eval_column.slider("Eval examples", 50, 1000, 300, step=50, key="prune_eval",
                                help="Held-out examples for accuracy; never used for training.")

if ui.job_button("Prune", pruning.run_pruning, type="primary", key="prune_run",
                 disabled=not (model and dataset and ratios)):
    request = Request(model, dataset, [], eval_limit)
    ui.run_with_progress(f"Pruning {model}", lambda progress: pruning.run_pruning(
        request, settings, sorted(ratios), unstructured, control, int8, progress=progress), live_curves=True)

# The last pruning of this model on this dataset: this session's, an earlier one's, or `warm`'s.
runs, skipped = pruning.latest(model, dataset) if model and dataset else ([], {})
if runs:
    rows = pruning.rows_of(runs)
    st.subheader("Pruned models beside the original")
    ui.snapshot_note(runs)
    st.markdown(f"**{pruning.headline(rows)}**")
    st.plotly_chart(plots.pruning_figure(rows), width="stretch", config={"displayModeBar": False})
    ui.number_table(rows, {"pruned": "percent", "accuracy": "percent", "validation before recovery": "percent",
                           "validation after recovery": "percent", "size MB": "%.1f", "compressed MB": "%.1f",
                           "x smaller compressed": "%.1fx", "params (M)": "%.2f", "p50 ms": "%.2f",
                           "inputs/s": "%.0f", "x smaller": "%.1fx", "x faster": "%.1fx"},
                    hidden=("p25 ms", "p75 ms", "x faster, low", "x faster, high"))
    st.caption("Accuracy is on the held-out eval split; the validation columns are on examples held out of the "
               "recovery's training, before and after it.")
    for label, why in skipped.items():
        st.warning(f"{label}: {why}")
    with st.expander("What each row did"):
        for run in runs:
            st.caption(f"**{run.label}** — " + " ".join(run.notes))
