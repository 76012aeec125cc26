"""Presenter view: the talk one step per screen, large, in order; each step can be re-run live."""

import streamlit as st

import ui
from microbudget_core import labs
from microbudget_core.labs import talk

# Large type for a projector: the page's text, headings and metrics; charts get larger fonts below.
st.html("""<style>
.stMainBlockContainer {max-width: 1600px}
.stMainBlockContainer p, .stMainBlockContainer li {font-size: 1.6rem; line-height: 1.4}
.stMainBlockContainer h1 {font-size: 3.4rem}
</style>""")

steps = talk.STEPS
# The step is in the address (?step=2), so a reload or a second screen stays on the same slide.
requested = st.query_params.get("step", "1")
number = min(max(int(requested), 1), len(steps)) - 1 if requested.isdigit() else 0

back, where, forward = st.columns([1, 4, 1])
if back.button("← Back", shortcut="Left", disabled=number == 0, width="stretch"):
    st.query_params["step"] = number
    st.rerun()
if forward.button("Next →", shortcut="Right", disabled=number == len(steps) - 1, width="stretch"):
    st.query_params["step"] = number + 2
    st.rerun()
where.caption(" → ".join(f"**{step.title}**" if n == number else step.title for n, step in enumerate(steps))
              + " · keys ← →")

plan = talk.last_plan()
shown = talk.slide(number, plan)
st.title(shown.title)
if shown.headline:
    st.markdown(f"### {shown.headline}")
    for figure in shown.figures:
        figure.update_layout(font_size=20, height=520)
        st.plotly_chart(figure, width="stretch", config={"displayModeBar": False})
    ui.snapshot_note(labs.from_snapshot(labs.TALK, []))  # the plan, and the steps not re-run here
else:
    st.info("No results for this step yet: run `make warm` before the talk, or run it live below.")
st.caption(f"{plan.model} on {plan.dataset}; another model: `python -m microbudget_core warm --model ID --dataset ID`.")

if st.button(f"Run live: {shown.live}", type="primary", key=f"live_{number}"):
    if ui.run_with_progress(f"{shown.title}, live", lambda progress: talk.run_live(number, plan, progress),
                            live_curves=True):
        st.rerun()
