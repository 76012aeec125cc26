"""Architectures: how much model each task needs, measured with the same training budget for every candidate."""

import pandas as pd
import streamlit as st

import ui
from microbudget_core import kinds, labs, plots
from microbudget_core.data.bundled import PHOTOS, installed
from microbudget_core.labs import architectures
from microbudget_core.support.network import hub_reachable
from microbudget_core.yardstick import speed_verdict

st.title("Efficient architectures")
st.markdown("A smaller architecture saves at every prediction. Each candidate below is trained with the **same "
            "budget** on the same data (the same examples per class; all weights for the same epochs, or only a "
            "head on each frozen network's features), then measured like every run: parameters, multiply-adds, "
            "size, p50 latency at batch 1, throughput at batch 32, accuracy on held-out data. Figures from the "
            "literature are beside them, marked as quoted.")

kind = st.radio("Task", ["text", "image"], horizontal=True, key="arch_kind")
task = kinds.for_inputs(kind).ID
datasets = sorted((d.id for d in installed(kind)), key=lambda i: i != PHOTOS)
left, right = st.columns(2)
chosen = left.selectbox("Dataset", datasets, key=f"arch_dataset_{kind}")
own = right.text_input("…or your own: csv:PATH, images:PATH (zip or folder of class folders), hf:NAME",
                       key=f"arch_dataset_other_{kind}").strip()
dataset = own or chosen
built_in = {a.id: a for a in architectures.choices(task)}
picked = st.multiselect("Architectures", list(built_in), default=[a.id for a in architectures.defaults(task)],
                        key=f"arch_models_{kind}",
                        format_func=lambda i: f"{i} — {built_in[i].description}")
extra = st.text_input("More models: Hugging Face ids or local folders, comma-separated", key=f"arch_extra_{kind}",
                      help="Hub ids need a network; each is used as published, with a new head for this dataset.")
hub_ids = [i.strip() for i in extra.split(",") if i.strip()]
if hub_ids and not all(i.startswith((".", "/", "~")) for i in hub_ids) and not hub_reachable():
    st.info("No network here: hub models cannot be downloaded. The built-in architectures still work offline.")
left, middle, right = st.columns(3)
weights = left.radio("Train", architectures.WEIGHTS, key=f"arch_weights_{kind}", horizontal=True,
                     index=architectures.WEIGHTS.index(architectures.default_budget(task).weights),
                     format_func={"all": "all weights", "head": "head only (frozen features)"}.get,
                     help="All weights: each network fine-tuned for the epochs below. Head only: each backbone frozen "
                          "and a linear head trained on its cached features: what each pretrained network's "
                          "features are worth, in seconds (the default for the small photo sets).")
budget = architectures.Budget(
    examples_per_class=middle.number_input("Examples per class", 2, 5000, 128, key="arch_examples"),
    epochs=right.number_input("Epochs", 1, 20, 3, key="arch_epochs", disabled=weights == "head"), weights=weights)

candidates = [built_in[i] for i in picked] + [architectures.hub_architecture(i) for i in hub_ids]
if ui.job_button("Train and measure", architectures.compare_architectures, type="primary", disabled=not candidates):
    ui.run_with_progress(  # the comparison is kept as this dataset's latest, shown below
        f"{len(candidates)} architectures on {dataset}",
        lambda progress: architectures.compare_architectures(candidates, dataset, budget, progress=progress))

latest = architectures.latest(dataset) if dataset else None
if latest:
    budget_done, rows = latest
    ui.snapshot_note(labs.from_snapshot(labs.ARCHITECTURES, [dataset]))
    trained = "head only" if budget_done.weights == "head" else f"all weights, {budget_done.epochs} epochs each"
    st.subheader(f"Measured on {dataset}: {budget_done.examples_per_class} examples per class, {trained}")
    st.plotly_chart(plots.architectures_figure(rows), width="stretch")
    table = pd.DataFrame([{"architecture": r["architecture"], "params (M)": r["params"] / 1e6,
                           "multiply-adds (M)": r["multiply_adds"] / 1e6,
                           "multiply-adds as published (G)": (r.get("multiply_adds_published") or float("nan")) / 1e9,
                           "size MB": r["size_bytes"] / 1e6, "p50 ms": r["latency_ms_p50"],
                           f"x faster than {rows[0]['architecture']}": r.get("x_faster_than_first", float("nan")),
                           "per s @32": r["throughput_per_s"], "speed": speed_verdict(r.get("speed_check")), "accuracy": r["accuracy"],
                           "balanced accuracy": r.get("balanced_accuracy", float("nan")),
                           "train s": r["train_seconds"]} for r in rows])
    st.dataframe(table.round(3), hide_index=True, width="stretch")
    st.caption(f"Multiply-adds: torch.utils.flop_counter, per input ({architectures.TEXT_TOKENS} tokens for "
               "text, the dataset's image size for images; at the resolution each network was published at to compare "
               "with the quoted figures). Rows marked *random* start from random weights: what pretraining is worth.")

st.subheader("Quoted from the literature (not measured here)")
st.dataframe(pd.DataFrame(architectures.QUOTED), hide_index=True, width="stretch")
