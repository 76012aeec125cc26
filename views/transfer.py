"""Transfer learning lab: reuse a pretrained model for the user's task, with less data and less compute."""

import pandas as pd
import streamlit as st

import ui
from microbudget_core import labs, plots, techniques
from microbudget_core.data.bundled import PHOTOS
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.labs import transfer as lab
from microbudget_core.pipeline import Request

from microbudget_core.runs import load_run_model

curve_defaults = st.cache_data(max_entries=8, show_spinner=False)(lab.curve_examples)


st.title("Transfer learning")
st.markdown("Keep what a pretrained model learned from a large dataset and train only what your task needs. "
            "Each strategy starts from the pretrained model with a fresh head; **from-scratch** is the control: "
            "the same architecture with random weights and the same budget. The dashed line is the default "
            "recipe (full fine-tune on all the data) that the other labs start from.")

model, dataset = ui.pick_model_and_dataset(image_default=PHOTOS)
ui.dataset_preview(dataset, expanded=True)
strategy = st.selectbox("Strategy", lab.STRATEGIES, key="transfer_strategy",
                        format_func=lambda t: f"{t} — {techniques.get(t).DESCRIPTION}")
with st.expander("Budget and knobs", expanded=True):
    settings = ui.technique_settings(techniques.get(strategy), f"transfer.{strategy}")
eval_limit = st.slider("Eval examples", 50, 1000, 500, step=50, key="transfer_eval",
                       help="Held-out examples for accuracy; never used for training.")

if ui.job_button("Train", lab.run_recipe, type="primary", disabled=not (model and dataset)):
    request = Request(model, dataset, [(strategy, settings)], eval_limit)
    ui.run_with_progress(f"{strategy} on {model}", lambda progress: lab.run_recipe(request, progress=progress),
                         live_curves=True)

# The last training of this model on this dataset: this session's, an earlier one's, or `warm`'s.
run = lab.latest(model, dataset)
if run:
    st.subheader(f"{run.label}: {run.result.accuracy:.1%} eval accuracy")
    ui.snapshot_note([run])
    for note in run.notes:
        st.info(note)
    accuracy, seconds, trainable, size = st.columns(4)
    accuracy.metric("Eval accuracy", f"{run.result.accuracy:.1%}",
                    f"{(run.result.accuracy - run.baseline.accuracy) * 100:+.1f} pt vs default recipe")
    seconds.metric("Training time", f"{(run.result.train_seconds or 0):,.0f} s",
                   f"{(run.result.train_examples or 0):,} examples", delta_color="off", delta_arrow="off")
    trainable.metric("Trained parameters", f"{run.result.report.get('trainable_params', 0):,}",
                     f"of {run.result.params:,}", delta_color="off", delta_arrow="off")
    size.metric("Model size", f"{run.result.size_bytes / 1e6:,.1f} MB")
    curves, confusion = st.columns(2)
    if run.result.history:
        curves.plotly_chart(plots.training_figure({run.label: run.result.history}), key="transfer_curves",
                            width="stretch", config={"displayModeBar": False})
    labels = run.labels or [str(i) for i in range(len(run.result.confusion_matrix))]
    confusion.plotly_chart(plots.confusion_figure(run.result.confusion_matrix, labels), width="stretch",
                           config={"displayModeBar": False})

    st.markdown("**Try it**")
    example = ui.example_input(run.task, key="transfer_try")
    if example is not None:
        try:
            probabilities = load_run_model(run).probabilities([example])[0]
        except MicrobudgetError as error:
            st.error(str(error))
        else:
            st.bar_chart(pd.DataFrame({"probability": probabilities}, index=labels), horizontal=True)

trained = lab.strategy_rows(model, dataset)
if trained:
    st.subheader("Strategies side by side")
    ui.number_table(trained, {})

st.subheader("Data-efficiency curve")
st.markdown("Each strategy trained with only *k* examples per class: how little data transfer learning needs, "
            "and how far from-scratch training falls behind with the same budget.")
full = ui.full_budget("curve_full", "head-only and from-scratch at two budgets",
                      "head-only, full fine-tune and from-scratch at five budgets, as in the benchmarks")
left, right = st.columns(2)
chosen = left.multiselect("Strategies", lab.STRATEGIES, key=f"curve_strategies_{full}",
                          default=list(lab.CURVE_STRATEGIES if full else lab.QUICK_CURVE_STRATEGIES))
try:
    defaults = curve_defaults(dataset, full) if dataset else lab.QUICK_CURVE_EXAMPLES
except MicrobudgetError:  # an unreadable dataset: the preview above says why
    defaults = lab.QUICK_CURVE_EXAMPLES
counts = right.multiselect("Examples per class (0 = all)", [2, 4, 8, 16, 32, 64, 128, 256, 512, 0],
                           default=list(defaults), key=f"curve_counts_{dataset}_{full}")
clicked = ui.job_button("Run the curve", lab.run_curve, disabled=not (model and dataset and chosen and counts))
request = Request(model, dataset, [], eval_limit)
curve = ui.kept_rows(labs.CURVE, [model, dataset], f"data-efficiency curve on {model}", clicked and (
    lambda progress: lab.run_curve(request, tuple(chosen), tuple(sorted(counts, key=lambda k: k or 10**9)),
                               progress=progress)) or None)
if curve:
    st.plotly_chart(plots.curve_figure(curve), width="stretch", config={"displayModeBar": False})
