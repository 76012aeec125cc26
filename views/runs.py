"""Runs: every stored run, as a table and as JSON to download."""

import json

import pandas as pd
import streamlit as st

from microbudget_core.runs import RunStore

st.title("Runs")
runs = RunStore().list()
if not runs:
    st.info("No runs yet: run a technique in a lab and it appears here.")
else:
    rows = [{"run": r.run_id, "when": r.created_at, "model": r.model, "dataset": r.dataset, "pipeline": r.label,
             "accuracy": r.result["accuracy"], "original accuracy": r.baseline["accuracy"],
             "size MB": r.result["size_bytes"] / 1e6, "p50 ms": r.result["latency_ms_p50"],
             "size x": r.ratios["size"], "speed x": r.ratios["latency"]} for r in reversed(runs)]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.download_button("Download all runs (JSON)", json.dumps([r.to_json() for r in runs], indent=2),
                       file_name="microbudget-runs.json", mime="application/json")
