"""Quantization lab: run quantization techniques (chained, with their knobs) and compare with the original."""

import dataclasses
import math

import streamlit as st

import ui
from microbudget_core import explainer, labs, plots, quant_math, techniques
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.labs import quantization as lab
from microbudget_core.pipeline import Request

st.title("Quantization")
st.markdown("Store weights in fewer bits. Every row below is measured the same way, original included: "
            "serialized size, batch-1 latency (median of 30), batch-32 throughput, and accuracy on the "
            "held-out eval split.")

model, dataset = ui.pick_model_and_dataset()
chosen = st.multiselect("Pipeline: techniques applied in the order picked", sorted(techniques.registry()),
                        default=["dynamic-int8"], format_func=lambda t: f"{t} — {techniques.get(t).DESCRIPTION}")
steps = []
for number, technique_id in enumerate(chosen):
    technique = techniques.get(technique_id)
    if not dataclasses.fields(technique.Config):
        steps.append((technique_id, {}))
        continue
    with st.expander(f"Step {number + 1}: {technique_id} settings"):
        steps.append((technique_id, ui.technique_settings(technique, f"step{number}")))
eval_limit = st.slider("Eval examples", 50, 1000, 300, step=50,
                       help="More examples: a steadier accuracy figure, a slower run.")

if ui.job_button("Run", lab.run_quantization, type="primary", disabled=not (model and dataset and steps)):
    request = Request(model, dataset, steps, eval_limit)
    label = " -> ".join(chosen)
    ui.run_with_progress(f"{label} on {model}", lambda progress: lab.run_quantization(request, progress=progress))

# The last run on this model and dataset: this session's, an earlier one's, or `warm`'s.
run = lab.latest(model, dataset)
if run:
    st.subheader(f"{run.label} vs original")
    ui.snapshot_note([run])
    st.markdown(f"**{plots.summary(run)}**")
    for note in run.notes:
        st.info(note)
    columns = st.columns(4)
    for column, (key, name, scale, unit, smaller_is_better) in zip(columns, plots.PANELS):
        before, after = getattr(run.baseline, key), getattr(run.result, key)
        column.metric(name, f"{after * scale:,.2f} {unit}", f"{(after - before) * scale:+,.2f} {unit}",
                      delta_color="inverse" if smaller_is_better else "normal")
    st.plotly_chart(plots.comparison_figure(run), width="stretch", config={"displayModeBar": False})
    # Numbers only (a column mixing numbers with lists or names breaks the table), the run's label on its column.
    st.dataframe(ui.row_frame(lab.figure_rows(run)).set_index("metric").rename(columns={"result": run.label}),
                 width="stretch")

earlier = lab.run_rows_of(dataset)
if earlier:
    st.subheader(f"Runs on {dataset}")
    ui.number_table(earlier, {})

st.subheader("Bit-width sweep")
st.markdown("weight-only at 8, 4, 3 and 2 bits, plus the int8 paths that suit this kind of model (dynamic "
            "int8 in PyTorch and ONNX Runtime for transformers; static int8 for CNNs), each measured against one "
            "measurement of the original (peak memory is skipped here to keep the sweep quick).")
group_size = st.number_input("Group size (weights per scale)", value=64, step=16)
clicked = ui.job_button("Run the sweep", lab.run_sweep, disabled=not (model and dataset))
sweep_request = Request(model, dataset, [], eval_limit)
sweep = ui.kept_rows(labs.SWEEP, [model, dataset], f"bit-width sweep on {model}", clicked and (
    lambda progress: lab.run_sweep(sweep_request, group_size=int(group_size), progress=progress)) or None)
if sweep:
    st.plotly_chart(plots.sweep_figure(sweep), width="stretch", config={"displayModeBar": False})
    ui.number_table(lab.sweep_rows(sweep), {})

st.subheader("Explainer: what quantization does to one layer")
st.markdown("One layer of the pretrained model, its weights before and after a quantize -> dequantize round "
            "trip: every weight moves to the nearest level of the grid. Fewer bits, fewer and wider-spaced "
            "levels; one scale per output channel fits each row's own range.")
network = None
if model:
    try:
        with st.spinner(f"Loading {model}"):
            network = explainer.pretrained_model(model)
    except MicrobudgetError as error:
        # A warning, not an error box: a bad model id is reported once, as an error, by the Run button above.
        st.warning(f"The explainer needs the model's weights. {error}")
if network is not None:
    shapes = explainer.layers(network)
    names = list(shapes)
    layer_column, bits_column, format_column = st.columns([2, 1, 1])
    layer = layer_column.selectbox("Layer", names, index=len(names) // 2, key="explain_layer",
                                   format_func=lambda name: f"{name} {list(shapes[name])}")
    bits = bits_column.slider("Bits", quant_math.MIN_BITS, quant_math.MAX_BITS, 8, key="explain_bits")
    with format_column:
        symmetric = st.toggle("Symmetric", True, key="explain_symmetric",
                              help="On: z is fixed at the middle code and the grid is centred on 0, so its lowest "
                                   "level lies beyond the weights and goes unused. Off: the grid spans the weights' "
                                   "min..max.")
        granularity = st.radio("Scales", ["per-tensor", "per-channel"], key="explain_granularity",
                               horizontal=True)
    shown = explainer.explain_layer(network, layer, bits, symmetric, granularity == "per-channel")

    st.latex(r"q = \operatorname{clamp}\left(\operatorname{round}\left(\frac{x}{S}\right) + z,\; 0,\; 2^{b}-1\right)"
             r"\qquad \hat{x} = (q - z)\cdot S")
    st.latex(rf"S = {shown.scale:.4g},\quad z = {shown.zero_point},\quad b = {bits}")
    if shown.per_channel:
        st.caption(f"S and z shown for channel {shown.channel}, the widest of {len(shown.scales)} channels (the "
                   f"coarsest grid); S runs from {shown.scales.min():.3g} to {shown.scales.max():.3g} across them.")
    else:
        st.caption(f"One S and z for all {math.prod(shapes[layer]):,} weights of the layer.")
    sqnr, relative, worst, size = st.columns(4)
    sqnr.metric("SQNR", f"{shown.error['sqnr_db']:.1f} dB", help="Signal to quantization noise; higher is better.")
    relative.metric("Relative error", f"{shown.error['relative']:.2%}", help="||w - ŵ|| / ||w|| over the layer.")
    worst.metric("Max |error|", f"{shown.error['max_abs']:.3g}")
    size.metric("Stored size", f"{shown.stored_bytes / 1e3:,.1f} kB",
                f"{shown.fp32_bytes / shown.stored_bytes:.1f}x smaller than fp32", delta_color="off",
                delta_arrow="off",
                help="Codes packed at b bits plus an fp32 S (and z when asymmetric) per scale.")
    st.plotly_chart(plots.explainer_figure(shown), width="stretch", config={"displayModeBar": False})
