"""Home: what each miniaturization method costs and buys, and the model + dataset to work on."""

import pandas as pd
import streamlit as st

import ui
from microbudget_core import plots
from microbudget_core.labs.compare import candidates, measured_on, on_hardware
from microbudget_core.runs import RunStore

st.title("microbudget")
st.markdown("Make a model **smaller, faster and cheaper**, and *see* what each method buys: "
            "size, speed and accuracy of the result, measured beside the original on this machine.")

st.subheader("Methods at a glance")
METHODS = pd.DataFrame(
    [
        ["Transfer learning / fine-tuning", "Reuse a pretrained model; train only what the task needs",
         "Same as the base model", "Little: hundreds of examples", "Low: minutes on a CPU"],
        ["Knowledge distillation", "A small student learns the teacher's soft predictions",
         "Student: 2-10x smaller and faster", "Task data, even unlabeled", "Medium: a training run"],
        ["Quantization (int8, 8/4/2-bit)", "Store weights (and activations) in fewer bits",
         "2-4x smaller (int8), up to 8x (4-bit); faster where kernels exist", "None or a small calibration set",
         "Low: one call, no training"],
        ["Pruning", "Remove weights, heads or layers that matter least", "Smaller; faster only if structured",
         "Some, to recover accuracy", "Medium"],
        ["Efficient architectures", "Pick a model designed for the budget (MobileNet, MiniLM)",
         "Often 10x fewer FLOPs at similar accuracy", "As for fine-tuning", "Low: a choice, then fine-tune"],
        ["Small specialist vs big generalist", "A fine-tuned small model for one task",
         "100-1000x cheaper per prediction", "Task examples", "Low to medium"],
    ],
    columns=["Method", "What it does", "Size / inference cost", "Training data", "Effort"],
)
st.table(METHODS.set_index("Method"))

# The latest results at a glance (after `make warm`, the talk's). Also the session's first chart, so the browser
# loads its Plotly code here (about 3 s, measured) rather than on the first lab page opened.
runs = RunStore().list()
if runs:
    dataset = runs[-1].dataset
    shown = on_hardware([r for r in runs if r.dataset == dataset])
    st.subheader(f"Runs so far on {dataset}")
    ui.snapshot_note(shown)
    st.plotly_chart(plots.pareto_figure(candidates(measured_on(shown))), width="stretch",
                    config={"displayModeBar": False})
    st.caption("Every run measured on the same hardware and eval examples: accuracy against latency and size. "
               "Compare and decide has the details.")

st.subheader("Your model and data")
model, dataset = ui.pick_model_and_dataset()
st.caption(f"Selected: **{model or '—'}** on **{dataset or '—'}**. Open a lab in the sidebar to run a technique; "
           "the first run fine-tunes the model for this dataset once and caches it.")
st.page_link("views/transfer.py", label="Go to the Transfer learning lab", icon=":material/school:")
st.page_link("views/distillation.py", label="Go to the Distillation lab", icon=":material/science:")
st.page_link("views/quantization.py", label="Go to the Quantization lab", icon=":material/compress:")
st.page_link("views/llm_quantization.py", label="A small LLM at GGUF Q8_0, Q4_K_M, Q2_K (llama.cpp)", icon=":material/chat:")
st.page_link("views/specialist.py", label="A small specialist against a general LLM", icon=":material/balance:")
st.page_link("views/architectures.py", label="Compare efficient architectures", icon=":material/architecture:")
st.page_link("views/compare.py", label="Compare every run and decide what to ship", icon=":material/insights:")
st.page_link("views/talk.py", label="Presenting? The talk one step per screen (run `make warm` first)",
             icon=":material/slideshow:")
