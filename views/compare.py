"""Compare: every run of a dataset on one Pareto chart, the best run within your limits, and what serving costs."""

import functools
import json

import streamlit as st

import ui

from microbudget_core import plots
from microbudget_core.labs.compare import (DEFAULT_PRICE_PER_HOUR, DEFAULT_PRICE_SOURCE, Limits, candidates, chosen,
                                           comparison_rows, eval_sizes, hardware_choices, measured_on, on_hardware,
                                           quality_name, recommend)
from microbudget_core.export import export_zip, model_card
from microbudget_core.labs import distillation
from microbudget_core.models.bundle import DAMAGED, MISSING, SAVED
from microbudget_core.runs import RunStore

st.title("Compare and decide")
store = RunStore()
runs = store.list()
speech_runs = store.list(quality="wer")  # speech models are ranked by word error rate, apart from the classifiers
if speech_runs:
    ranked = st.radio("Models", ["classifiers (accuracy)", "speech recognizers (WER)"], index=0 if runs else 1,
                      horizontal=True, key="compare_quality")
    runs = speech_runs if ranked.startswith("speech") else runs
if not runs:
    st.info("No runs yet: run a technique in a lab and it appears here.")
    st.stop()
ui.snapshot_note(runs)

datasets = list(dict.fromkeys(run.dataset for run in reversed(runs)))  # the most recently used first
dataset = st.selectbox("Dataset", datasets, key="compare_dataset")
runs = [run for run in runs if run.dataset == dataset]
machines = hardware_choices(runs)
if len(machines) > 1:  # speed ranks only between runs measured on one machine
    machine = st.selectbox("Speed measured on", machines, key="compare_hardware",
                           help="Latency and throughput compare only between runs measured on the same hardware.")
    runs = on_hardware(runs, machine)
sizes = eval_sizes(runs)
size = st.selectbox("Measured on", sizes, key="compare_eval", format_func=lambda n: f"the first {n:,} eval examples",
                    help="Accuracy (or WER) compares only between runs measured on the same examples.")
runs = measured_on(runs, size)
left, middle, right = st.columns(3)
models = left.multiselect("Models", sorted({r.model for r in runs}), key="compare_models", placeholder="all")
found = candidates(runs, models)
techniques = middle.multiselect("Techniques", sorted({c.technique for c in found}), key="compare_techniques",
                                placeholder="all")
days = sorted({c.created_at[:10] for c in found})
since = right.selectbox("Runs since", days, key="compare_since")
found = chosen(found, techniques, since)
if not found:
    st.warning("No run matches these filters.")
    st.stop()

with st.expander("Cost of serving", expanded=True):
    left, right = st.columns(2)
    price = left.number_input("Price per instance-hour ($)", min_value=0.0, value=DEFAULT_PRICE_PER_HOUR,
                              step=0.01, format="%.4f", help=f"Default: {DEFAULT_PRICE_SOURCE}.")
    rate = right.number_input("Requests per second", min_value=0.0, value=10.0, step=1.0)
    st.caption(f"From each model's measured throughput at batch 32 on 2 CPU threads. Default price: "
               f"{DEFAULT_PRICE_SOURCE}.")

table = ui.row_frame(comparison_rows(found, price, rate)).dropna(axis=1, how="all")  # accuracy or WER
speech = quality_name(found) == "WER"

chart = st.plotly_chart(plots.pareto_figure(found), key="pareto", on_select="rerun", selection_mode="points")
st.caption("Faded points are dominated: another run is at least as accurate and at least as fast (or small). "
           "Select a point to see its run below." + (" A speech model's throughput is clips per second, one after "
                                                      "another." if speech else ""))

st.subheader("Your limits")
columns = st.columns(4)
limits = Limits(
    columns[0].number_input("Max size (MB)", min_value=0.0, value=None, key="limit_size"),
    columns[1].number_input("Max p50 latency (ms)", min_value=0.0, value=None, key="limit_latency"),
    None if speech else columns[2].number_input("Min accuracy", min_value=0.0, max_value=1.0, value=None,
                                                key="limit_accuracy"),
    columns[3].number_input("Max WER rise (points)" if speech else "Max accuracy drop (points)", min_value=0.0,
                            value=None, key="limit_drop"))
pick = recommend(found, limits)
(st.success if pick.best else st.warning)(pick.message)
for said in distillation.headlines(dataset, [c.model for c in found]):  # what a teacher bought, where one taught
    st.info(f"Distillation: {said}")

st.subheader("All runs")
st.dataframe(table, hide_index=True, width="stretch",
             column_config={"accuracy": st.column_config.NumberColumn(format="%.3f"),
                            "WER": st.column_config.NumberColumn(format="percent"),
                            "size MB": st.column_config.NumberColumn(format="%.1f"),
                            "p50 ms": st.column_config.NumberColumn(format="%.2f"),
                            "$ per 1M": st.column_config.NumberColumn(format="$%.4f"),
                            "$ per month": st.column_config.NumberColumn(format="$%.2f")})
left, right = st.columns(2)
left.download_button("Table as CSV", table.to_csv(index=False), file_name=f"microbudget-{dataset}.csv",
                     mime="text/csv")
right.download_button("Runs as JSON", json.dumps([r.to_json() for r in runs], indent=2),
                      file_name=f"microbudget-{dataset}.json", mime="application/json")

st.subheader("One run")
stored = {r.run_id: r for r in runs}
selected = [p.get("customdata") for p in chart.selection.points if p.get("customdata")] if chart else []
choices = [c.run_id for c in reversed(found) if not c.is_original]
if not choices:
    st.stop()
if st.session_state.get("compare_run") not in choices:  # a deleted run, or another dataset's
    st.session_state.pop("compare_run", None)
if selected and selected[0] in choices and st.session_state.get("compare_clicked") != selected[0]:
    st.session_state["compare_run"] = st.session_state["compare_clicked"] = selected[0]  # a new click on the chart
run_id = st.selectbox("Run", choices, key="compare_run",
                      format_func=lambda i: f"{stored[i].label} · {stored[i].model} · {i}")
run = stored[run_id]
artifact = next(c for c in found if c.run_id == run_id).artifact
if run.snapshot:
    st.info(f"From the results snapshot ({run.snapshot}): its model is not on this machine. Make it here with its "
            f"lab's button, or `{run.command()}`.", icon=":material/inventory_2:")
elif artifact == MISSING:
    st.error("Artifact missing: this run's model files were deleted. Its measurements are still here.")
elif artifact == DAMAGED:
    st.error("Artifact damaged: a file of this run's model is truncated or missing. Its measurements are still "
             "here; run the technique again for a model to download.")
st.download_button("Download the model and its card (zip)", functools.partial(export_zip, run),
                   file_name=f"microbudget-{run_id}.zip", mime="application/zip", disabled=artifact != SAVED)
with st.expander("Model card"):
    st.caption("The download also holds the forms other tools load without microbudget (an ONNX graph for Optimum "
               "and transformers' pipeline, CTranslate2 folders for faster-whisper, a Modelfile for Ollama); its "
               "card leads with how to load them.")
    st.markdown(model_card(run))
with st.popover("Delete this run", disabled=bool(run.snapshot)):
    st.write(f"Delete **{run.label}** ({run_id}) and its saved model files? This cannot be undone.")
    if st.button("Yes, delete it", type="primary", key="confirm_delete"):
        store.delete(run_id)
        st.rerun()
