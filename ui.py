"""Shared widgets for the pages: model/dataset pickers, a progress adapter, error display.

Only presentation lives here; every computation is a call into microbudget_core.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any, Callable

import streamlit as st

from microbudget_core import cli
from microbudget_core.errors import MicrobudgetError
from microbudget_core.progress import Progress

OTHER = "other…"


def pick_model_and_dataset() -> tuple[str, str]:
    """Model and dataset pickers whose choice persists across pages (session state)."""
    listing = cli.catalog()
    models = {m["id"]: m for m in listing["models"]}
    left, right = st.columns(2)
    with left:
        choice = st.selectbox("Base model", [*models, OTHER], key="model_choice",
                              format_func=lambda i: f"{i} — {models[i]['description']}" if i in models else i)
        model = choice if choice != OTHER else st.text_input(
            "Hugging Face model id or local folder", key="model_other",
            help="Hub ids need a network; a folder saved with save_pretrained() works offline.").strip()
    modality = "image" if models.get(model, {}).get("task") == "image-classification" else "text"
    bundled = [d for d in listing["datasets"] if ":" not in d["id"]]
    fitting = [d["id"] for d in bundled if d["modality"] == modality or model not in models]
    with right:
        choice = st.selectbox("Dataset", [*fitting, OTHER], key=f"dataset_choice_{modality}",
                              format_func=lambda i: next((f"{i} — {d['description']}" for d in bundled
                                                          if d["id"] == i), i))
        dataset = choice if choice != OTHER else st.text_input(
            "Dataset id: csv:PATH, images:PATH (zip or folder of class folders) or hf:NAME",
            key="dataset_other").strip()
    st.session_state["model"], st.session_state["dataset"] = model, dataset
    return model, dataset


def run_with_progress(label: str, job: Callable[[Progress], Any]) -> Any | None:
    """Run `job(progress)` inside st.status with a progress bar; None (and one error box) on bad input."""
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0, text="Starting")

        def progress(fraction: float, message: str, **metrics: Any) -> None:
            bar.progress(min(max(fraction, 0.0), 1.0), text=message)

        try:
            result = job(progress)
        except MicrobudgetError as error:
            status.update(label="Could not run", state="error")
            st.error(str(error))
            return None
        status.update(label=f"{label}: done", state="complete", expanded=False)
        return result


def technique_settings(technique: ModuleType, key: str) -> dict[str, Any]:
    """One widget per field of the technique's Config; the values go to the core as settings."""
    settings: dict[str, Any] = {}
    for field in dataclasses.fields(technique.Config):
        label, widget_key = field.name.replace("_", " "), f"{key}.{field.name}"
        if "choices" in field.metadata:
            choices = list(field.metadata["choices"])
            settings[field.name] = st.selectbox(label, choices, index=choices.index(field.default), key=widget_key)
        elif isinstance(field.default, bool):
            settings[field.name] = st.checkbox(label, field.default, key=widget_key)
        elif isinstance(field.default, (int, float)):
            settings[field.name] = st.number_input(label, value=field.default, key=widget_key)
        else:
            settings[field.name] = st.text_input(label, str(field.default), key=widget_key)
    return settings
