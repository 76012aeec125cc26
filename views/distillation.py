"""Distillation lab: a large teacher trains a small student; see what the student keeps, and what distillation adds."""

import pandas as pd
import streamlit as st

import ui
from microbudget_core import plots, techniques
from microbudget_core.labs import distillation
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.pipeline import Request
from microbudget_core.runs import RunStore

st.title("Distillation")
st.markdown("A small **student** learns from a large **teacher**: not only from the labels, but from the teacher's "
            "softened predictions, which say how wrong each wrong answer is. The **control** is the same student "
            "trained on the labels alone, with the same budget, so the gap between the two is what distillation "
            "itself buys. The teacher is the model fine-tuned on the dataset (the default recipe); for text it starts "
            "as all-mpnet-base-v2 (109M parameters) teaching MiniLM-L6 (22.7M).")

model, dataset = ui.pick_model_and_dataset(model_default=distillation.default_teacher())
ui.dataset_preview(dataset)
teachers = {"": "the default recipe's fine-tuned model"} | {
    r.run_id: f"{r.label} ({r.result.accuracy:.1%}, run {r.run_id})" for r in RunStore().list(dataset)
    if r.model == model and r.steps and r.steps[-1]["technique"].startswith("finetune") and not r.snapshot}
teacher_run = st.selectbox("Teacher", list(teachers), format_func=teachers.get, key="distill_teacher")
with st.expander("Student, loss and budget", expanded=True):
    full = ui.full_budget("distill_full", "one epoch on 500 labelled examples per class",
                          "the settings of the benchmark figures: all the data, the large teacher's 3 epochs")
    defaults = distillation.default_settings(model, full)  # a large teacher starts from its own student settings
    own = f"distill_{model}" if model in distillation.STUDENT_SETTINGS else "distill"  # a large teacher's own settings
    settings = ui.technique_settings(techniques.get("distill"), f"{own}_{'full' if full else 'quick'}",
                                     skip=("teacher_run",), columns=4, defaults=defaults)
left, right, eval_column = st.columns(3)
control = left.checkbox("Train the hard-label control too", True, key="distill_control",
                        help="The same student and budget with alpha 0: the teacher unused.")
quantize = right.checkbox("Then quantize the student to int8", True, key="distill_int8",
                          help="ONNX Runtime int8 (dynamic for text, static for images) after distillation.")
eval_limit = eval_column.slider("Eval examples", 50, 1000, 500, step=50, key="distill_eval",
                                help="Held-out examples for accuracy; never used for training.")

if ui.job_button("Distill", distillation.run_distillation, type="primary", key="distill_run",
                 disabled=not (model and dataset)):
    request = Request(model, dataset, [], eval_limit)
    ui.run_with_progress(f"Distilling {model}", lambda progress: distillation.run_distillation(
        request, {**settings, "teacher_run": teacher_run}, control, quantize, progress=progress), live_curves=True)
# The last distillation of this model on this dataset: this session's, an earlier one's, or `warm`'s.
runs = distillation.latest(model, dataset) if model and dataset else []
if runs:
    rows = distillation.lineup(runs)
    st.subheader("Teacher and students side by side")
    ui.snapshot_note(runs)
    st.markdown(f"**{distillation.headline(rows)}**")
    for run in runs:
        if distillation.role(run) != distillation.QUANTIZED:
            st.caption(run.notes[-1])
    st.plotly_chart(plots.lineup_figure(rows), width="stretch", config={"displayModeBar": False})
    ui.number_table(rows, {"accuracy": "percent", "same predictions as the original": "percent", "size MB": "%.1f",
                           "params (M)": "%.2f", "p50 ms": "%.2f", "x smaller": "%.1fx", "x faster": "%.1fx",
                           "% of teacher accuracy": "%.1f"})
    histories, teacher_accuracy = distillation.histories(runs)
    # A key of its own: the live chart of the run just finished can be the same figure.
    st.plotly_chart(plots.training_figure(histories, teacher_accuracy), width="stretch", key="distill_curves",
                    config={"displayModeBar": False})

st.subheader("What the teacher's soft targets look like")
st.markdown("Dividing the teacher's logits by a temperature *T* before the softmax flattens its prediction: "
            "at T = 1 it is nearly all on one class; at higher T the other classes show how close they came. "
            "The student is trained to match these (times T², so the gradients keep their scale).")
if st.toggle("Show the teacher's soft targets", key="distill_explainer", disabled=not (model and dataset),
             help="Fine-tunes the teacher first if this model and dataset have none yet (cached afterwards)."):
    try:
        examples = distillation.eval_examples(dataset)
        pick = st.selectbox("Example from the eval split", range(len(examples)), key="distill_example",
                            format_func=lambda i: examples[i][:120] if isinstance(examples[i], str) else f"image {i}")
        if not isinstance(examples[pick], str):
            st.image(examples[pick], width=96)
        with st.spinner("Asking the teacher"):
            labels, targets = distillation.soft_targets(model, dataset, examples[pick], teacher_run)
    except MicrobudgetError as error:
        st.error(str(error))
    else:
        st.plotly_chart(plots.temperature_figure(labels, targets), width="stretch", config={"displayModeBar": False})

student = next((run for run in runs if distillation.role(run) == distillation.STUDENT), None)
if student:
    st.subheader("Try it: teacher and student on the same input")
    example = ui.example_input(student.task, key="distill_try")
    if example is not None:
        try:
            answers = distillation.side_by_side(student, example)
        except MicrobudgetError as error:
            st.error(str(error))
        else:
            st.bar_chart(pd.DataFrame(answers, index=student.labels), horizontal=True, stack=False)
