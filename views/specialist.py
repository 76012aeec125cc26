"""Specialist vs generalist: a small model fine-tuned for one task against a language model asked to do it."""

import streamlit as st

import ui
from microbudget_core.data import TEXT_INPUTS
from microbudget_core import plots
from microbudget_core.labs import specialist as lab

st.title("Specialist vs generalist")
st.markdown("A small encoder **fine-tuned** for one task (MiniLM-L6, 22M parameters) against a **language model** "
            "answering the same task from a prompt, zero-shot and with *k* labelled examples in the prompt. The LLM "
            "answers by constrained scoring: the label whose tokens it finds most likely wins (no free text is "
            "parsed). Both are measured on the same held-out texts with the same yardstick.")

model, dataset = ui.pick_language_model_and_texts("spec")
specialist_column, left, middle, right = st.columns(4)
with specialist_column:
    specialist = ui.pick_classifier("Specialist (fine-tuned for the task)", "spec_specialist", "spec_specialist_other",
                                    inputs=TEXT_INPUTS, default="minilm-l6", other_label="Specialist: hub id or folder",
                                    help="A text classifier (mpnet-base is the large one), a hub id or a folder; "
                                         "fine-tuned once and cached.")
extra = left.text_input("Another LLM (hub id or folder, optional)", key="spec_extra",
                        help="Hub ids need a network, e.g. HuggingFaceTB/SmolLM2-360M-Instruct.").strip()
shots = middle.slider("Examples in the prompt (k)", 0, 16, 4, key="spec_shots")
eval_limit = right.slider("Eval texts", 50, 1000, 200, step=50, key="spec_eval",
                          help="The LLM reads the prompt once per label: about a second per text on 2 cores.")
level = lab.deployed_level(model, dataset) if model and dataset else None
st.caption(f"The LLM's few-shot contender runs at **{lab.llm_quantization.level_of(level)}**, the fastest level of the "
           "last LLM quantization sweep on these texts that keeps perplexity within 10% (what a user would deploy)."
           if level else "The LLM's contenders run as loaded (fp32, PyTorch): sweep its levels on these texts on the "
                         "LLM quantization page first, and the fastest level within 10% perplexity is deployed here.")
if ui.job_button("Run the contest", lab.run_contest, type="primary", disabled=not (model and dataset and specialist)):
    llms = [model] + ([extra] if extra else [])
    ui.run_with_progress("Specialist vs generalist", lambda progress: lab.run_contest(
        dataset, llms, shots, specialist, eval_limit, progress=progress))

runs = ui.results_or_stop(lab.latest_contest(dataset) if dataset else [],
                          f"No contest on {dataset or 'this dataset'} yet: press the button (the specialist is "
                          "fine-tuned once, a few minutes the first time).")
rows = lab.contest_rows(runs)
st.subheader("Side by side")
st.markdown(f"**{lab.contest_headline(rows)}**")
st.plotly_chart(plots.lineup_figure(rows, name="contender", panels=lab.CONTEST_PANELS,
                                    log_panels=("p50_ms", "cost_per_million")), width="stretch",
                config={"displayModeBar": False})
ui.number_table(rows, {"accuracy": "percent", "macro F1": "%.3f", "params M": "%.1f", "size MB": "%.1f",
                       "p50 ms": "%.1f", "$ per 1M": "$%.3f"})
st.caption("$ per 1M predictions: a 2-vCPU instance at $0.0893/h (AWS c7i.large, on demand) running at the measured "
           "batch-32 throughput; see the Compare page for the cost model.")
