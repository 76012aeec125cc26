"""Shared widgets for the pages: model/dataset pickers, a progress adapter, error display.

Only presentation lives here; every computation is a call into microbudget_core.
"""

from __future__ import annotations

import dataclasses
import math
from types import ModuleType
from typing import Any, Callable, Sequence

import pandas as pd
import streamlit as st

from microbudget_core import kinds, labs, plots
from microbudget_core.data import AUDIO_INPUTS, IMAGE_INPUTS, TEXT_INPUTS
from microbudget_core.data.bundled import installed
from microbudget_core.data.files import decode_image, preview_csv
from microbudget_core.data.preview import Preview, preview
from microbudget_core.data.uploads import save_upload
from microbudget_core.models import installed_models
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.support.progress import Progress
from microbudget_core.support.rows import labelled

OTHER = "other…"


def pick_model_and_dataset(image_default: str = "", model_default: str = "") -> tuple[str, str]:
    """Model and dataset pickers whose choice persists across pages (session state); `image_default` and
    `model_default`, where installed, are the first image dataset and model offered (a page's own defaults until
    the user picks another)."""
    # Classifiers here; language models have their own pages (LLM quantization, Specialist vs generalist).
    models = {m.id: m for m in installed_models("accuracy")}
    left, right = st.columns(2)
    with left:
        model = pick_classifier("Base model", "model_choice", "model_other", default=model_default)
    modality = kinds.get(models[model].task).INPUTS if model in models else TEXT_INPUTS
    bundled = {d.id: d for d in installed()}
    fitting = [i for i, d in bundled.items() if d.modality == modality or model not in models]
    fitting.sort(key=lambda i: i != image_default)  # stable: the rest keep the bundled order
    with right:
        choice = st.selectbox("Dataset", [*fitting, OTHER], key=f"dataset_choice_{modality}",
                              format_func=lambda i: f"{i} — {bundled[i].description}" if i in bundled else i)
        dataset = choice if choice != OTHER else st.text_input(
            "Dataset id: csv:PATH, images:PATH (zip or folder of class folders) or hf:NAME",
            key="dataset_other").strip()
        dataset = _uploaded_dataset() or dataset
    st.session_state["model"], st.session_state["dataset"] = model, dataset
    return model, dataset


def pick_classifier(label: str, key: str, other_key: str, inputs: str = "", default: str = "",
                    help: str | None = None, other_label: str = "Hugging Face model id or local folder") -> str:
    """A classifier of the catalog (reading `inputs` only, where given; `default` offered first), or a hub id or
    folder typed in."""
    models = {m.id: m for m in sorted(installed_models("accuracy", inputs or None), key=lambda m: m.id != default)}
    choice = st.selectbox(label, [*models, OTHER], key=key, help=help,
                          format_func=lambda i: f"{i} — {models[i].description}" if i in models else i)
    return choice if choice != OTHER else st.text_input(
        other_label, key=other_key,
        help="Hub ids need a network; a folder saved with save_pretrained() works offline.").strip()


def pick_language_model_and_texts(key: str) -> tuple[str, str]:
    """A causal LM (bundled, hub id or folder) and a text dataset, for the LLM pages."""
    return _pick_model_and_data(key, "perplexity", TEXT_INPUTS, "Language model", "a causal LM",
                                "Texts (a text classification dataset)", "Dataset id: csv:PATH or hf:NAME")


def pick_speech_model_and_clips(key: str) -> tuple[str, str]:
    """A speech model (bundled, hub id or folder) and speech clips, for the Speech page."""
    return _pick_model_and_data(key, "wer", AUDIO_INPUTS, "Speech model", "a Whisper model", "Clips",
                                "Dataset id: audio:PATH (a zip or folder of clips and transcripts) or spoken:DATASET "
                                "(a text dataset read aloud)", extra=("spoken:rotten-tomatoes",))


def _pick_model_and_data(key: str, quality: str, modality: str, model_label: str, model_kind: str, data_label: str,
                         data_id_label: str, extra: tuple[str, ...] = ()) -> tuple[str, str]:
    """The bundled models ranked by `quality` and the bundled datasets of `modality` (plus `extra`), each with an
    OTHER choice that takes an id or folder."""
    models = {m.id: m.description for m in installed_models(quality)}
    found = {d.id: d.description for d in installed(modality)}
    found |= {i: i for i in extra}
    left, right = st.columns(2)
    choice = left.selectbox(model_label, [*models, OTHER], key=f"{key}_model",
                            format_func=lambda i: f"{i} — {models[i]}" if i in models else i)
    model = choice if choice != OTHER else left.text_input(
        f"Hugging Face model id or local folder of {model_kind}", key=f"{key}_model_other",
        help="Hub ids need a network; a folder saved with save_pretrained() works offline.").strip()
    choice = right.selectbox(data_label, [*found, OTHER], key=f"{key}_dataset",
                             format_func=lambda i: f"{i} — {found[i]}" if found.get(i, i) != i else i)
    dataset = choice if choice != OTHER else right.text_input(data_id_label, key=f"{key}_dataset_other").strip()
    return model, dataset


def _uploaded_dataset() -> str | None:
    """An uploaded CSV (columns chosen over a preview) or zip of class folders, as a dataset id."""
    upload = st.file_uploader("…or upload your own data: a CSV (a text and a label column) or a zip with one "
                              "folder per class", type=["csv", "tsv", "txt", "zip"], key="upload")
    if upload is None:
        return None
    columns: dict[str, str | None] = {}
    try:
        if not upload.name.lower().endswith(".zip"):
            frame, text_guess, label_guess = preview_csv(upload.getvalue())
            st.dataframe(frame, hide_index=True)
            names = list(frame.columns)
            text_pick, label_pick = st.columns(2)
            columns["text_column"] = text_pick.selectbox("Text column", names, key="upload_text",
                                                         index=names.index(text_guess) if text_guess in names else 0)
            columns["label_column"] = label_pick.selectbox(
                "Label column", names, key="upload_label",
                index=names.index(label_guess) if label_guess in names else min(1, len(names) - 1))
        return save_upload(upload.name, upload.getvalue(), **columns)
    except MicrobudgetError as error:
        st.error(str(error))
        return ""


@st.cache_data(show_spinner="Reading the dataset", max_entries=4)
def _preview(dataset: str) -> Preview:
    return preview(dataset)


def dataset_preview(dataset: str, expanded: bool = False) -> None:
    """A few examples per class (thumbnails for images) and the class counts, in an expander."""
    if not dataset:
        return
    with st.expander("A look at the data", expanded=expanded):
        try:
            shown = _preview(dataset)
        except MicrobudgetError as error:
            st.error(str(error))
            return
        st.caption("Examples per class: " + ", ".join(f"{name} {count:,}" for name, count in shown.counts.items()))
        for name, examples in list(shown.examples.items())[:12]:
            if shown.modality == "image":
                st.image(examples, caption=[name] * len(examples), width=72)
            else:
                st.markdown(f"**{name}**: " + " · ".join(f"“{text[:120]}”" for text in examples[:2]))


def example_input(task: str, key: str) -> Any | None:
    """A sentence typed in, or an image uploaded, to try a model on; None until there is one."""
    if kinds.get(task).INPUTS == IMAGE_INPUTS:
        upload = st.file_uploader("Upload an image", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"], key=key)
        if upload is None:
            return None
        try:
            return decode_image(upload.getvalue(), upload.name, "upload")
        except MicrobudgetError as error:
            st.error(str(error))
            return None
    return st.text_input("Type a sentence", key=key).strip() or None


def kept_rows(lab: str, key: list[str], label: str, job: Callable[[Progress], Any] | None) -> list:
    """Run a many-row job (a sweep, a curve) when given one, and return the lab's latest runs for `key` (the
    job's, else those of an earlier session or `warm`), saying which rows were left out and why."""
    if job is not None:
        run_with_progress(label, job)  # the job records its rows in the lab
    runs, skipped = labs.recall_runs(lab, key)
    snapshot_note(runs)
    for row, why in skipped.items():
        st.info(f"{row} was left out: {why}")
    return runs


def number_table(rows: list[Any], formats: dict[str, str], hidden: tuple[str, ...] = ()) -> None:
    """A lab's rows as a table under their labels, each column in `formats` shown with its number format
    ("percent", "%.1f", ...)."""
    st.dataframe(row_frame(rows).drop(columns=list(hidden)), hide_index=True, width="stretch",
                 column_config={column: st.column_config.NumberColumn(format=fmt) for column, fmt in formats.items()})


def row_frame(rows: list[Any]) -> pd.DataFrame:
    """A lab's row dataclasses as a table whose columns are their display labels."""
    return pd.DataFrame([labelled(row) for row in rows])


def job_button(label: str, job: Callable, **options: Any) -> bool:
    """A lab's button (st.button with `options`), with how long its job took the last time: here, else when the
    results snapshot was measured."""
    clicked = st.button(label, **options)
    expected = labs.expected_seconds(job)
    if expected:
        seconds, where = expected
        took = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
        st.caption(f"Took about {took} the last time " + ("on this machine." if where == "here" else f"({where})."))
    return clicked


def full_budget(key: str, quick: str, full: str) -> bool:
    """The quick budget (the default) or the full one (the benchmark figures, longer); the button below says how long
    the job took the last time."""
    choice = st.radio("Budget", ["quick", "full"], horizontal=True, key=key, captions=[quick, f"longer: {full}"])
    return choice == "full"


def snapshot_note(shown: Sequence[Any] | str) -> None:
    """Where the page shows the results snapshot's results (its runs, or its caption), say so and how to measure
    here instead."""
    caption = shown if isinstance(shown, str) else next((run.snapshot for run in shown if run.snapshot), "")
    if caption:
        st.info(f"From the results snapshot: {caption}. Press a lab's button to measure on this machine.",
                icon=":material/inventory_2:")


def results_or_stop(runs: list, message: str) -> list:
    """The runs to show (labelled where they come from the results snapshot); with none, `message` (what to press)
    and the page ends here."""
    if not runs:
        st.info(message)
        st.stop()
    snapshot_note(runs)
    return runs


def run_with_progress(label: str, job: Callable[[Progress], Any], live_curves: bool = False) -> Any | None:
    """Run `job(progress)` inside st.status with a progress bar; None (and one error box) on bad input.

    With `live_curves`, each epoch's loss and validation accuracy redraw a chart as training goes (one line per
    training, named by its `series` where the core gives one, with the teacher's accuracy where there is one).
    """
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0, text="Starting")
        chart, histories = st.empty(), {}

        def progress(fraction: float, message: str, **metrics: Any) -> None:
            bar.progress(min(max(fraction, 0.0), 1.0), text=message)
            if live_curves and "epoch" in metrics:
                if metrics["epoch"] == 1:  # a new training run starts its own line
                    histories[metrics.get("series") or f"training {len(histories) + 1}"] = []
                list(histories.values())[-1].append(metrics)
                chart.plotly_chart(plots.training_figure(histories, metrics.get("teacher_accuracy")),
                                   width="stretch", config={"displayModeBar": False})

        try:
            result = job(progress)
        except MicrobudgetError as error:
            status.update(label="Could not run", state="error")
            st.error(str(error))
            return None
        status.update(label=f"{label}: done", state="complete", expanded=False)
        return result


def technique_settings(technique: ModuleType, key: str, skip: tuple[str, ...] = (), columns: int = 1,
                       defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """One widget per field of the technique's Config (those not in `skip`, in a grid `columns` wide), starting at
    `defaults` where given, else the Config's; the values go to the core as settings."""
    fields = [f for f in dataclasses.fields(technique.Config) if f.name not in skip]
    cells = [cell for _ in range(0, len(fields), columns) for cell in st.columns(columns)]
    settings: dict[str, Any] = {}
    for field, cell in zip(fields, cells):
        with cell:
            settings[field.name] = _setting_widget(field, f"{key}.{field.name}",
                                                   (defaults or {}).get(field.name, field.default))
    return settings


def _setting_widget(field: dataclasses.Field, key: str, default: Any) -> Any:
    """The widget for one Config field, by its type (a choice list where the field declares one), at `default`."""
    label = field.name.replace("_", " ")
    if "choices" in field.metadata:
        choices = list(field.metadata["choices"])
        return st.selectbox(label, choices, index=choices.index(default), key=key)
    if isinstance(default, bool):
        return st.checkbox(label, default, key=key)
    # The field's declared range bounds the widget (ranges.py): the core refuses the same values.
    low, high = field.metadata.get("min"), field.metadata.get("max")
    if isinstance(default, float):
        # Steps at the default's scale, shown in full: 0.003 would read "0.00" and step to -0.007.
        step = 10.0 ** math.floor(math.log10(default)) if default > 0 else 0.001
        return st.number_input(label, value=default, step=step, format="%g", key=key,
                               min_value=None if low is None else float(low),
                               max_value=None if high is None else float(high))
    if isinstance(default, int):
        return st.number_input(label, value=default, key=key, min_value=low, max_value=high)
    return st.text_input(label, str(default), key=key)
