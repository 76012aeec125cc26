"""Speech: Whisper against a larger Whisper, int8 and a distilled student, by word error rate and time per clip."""

import streamlit as st

import ui
from microbudget_core import plots
from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.data.audio import SAMPLE_RATE
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.labs import speech as lab

st.title("Speech recognition")
st.markdown("Whisper transcribes speech; Distil-Whisper keeps its encoder and cuts its decoder, and the distilled "
            "variants are *\"50% smaller and up to 6 times faster with a very small quality loss\"* (quoted). Here "
            "Whisper tiny.en, a larger Whisper (base), their int8 forms, faster-whisper (CTranslate2, how most "
            "people run Whisper on CPUs: the anchor to beat) and a student distilled on this machine transcribe the "
            "same clips, scored by word error rate (WER: words substituted, dropped or added, per reference word, "
            "after Whisper's English normalizer) against the time each clip takes.")

model, dataset = ui.pick_speech_model_and_clips("speech")
full = ui.full_budget("speech_full", "one student, one epoch", "the control too, each for 3 epochs (the benchmark figures)")
rows = st.multiselect("Rows", list(lab.ROWS), default=list(lab.FULL_ROWS if full else lab.DEFAULT_ROWS),
                      key=f"speech_rows_{full}",
                      help="distilled: the original's weights, its encoder reading only the clip (not a 30 s window) "
                           "and matched to the original's states, its decoder trained on the original's transcripts "
                           "of the training speech (minutes). control: the same student trained on the reference "
                           "transcripts instead. faster-whisper: the same weights converted by CTranslate2 (int8 or "
                           "float32) and transcribed by faster-whisper as it runs by default, greedy.")
larger = model in lab.LARGER and st.checkbox(f"Also the larger Whisper ({lab.LARGER[model]}), as it is",
                                            value=True, key="speech_larger")

if ui.job_button("Transcribe and measure", lab.run_speech, type="primary"):
    ui.run_with_progress(f"{model} on {dataset}", lambda progress: lab.run_speech(
        model, dataset, rows, "" if larger else None, full=full, progress=progress), live_curves=True)

runs = ui.results_or_stop(lab.latest(model, dataset), f"No comparison of {model} on {dataset} yet: press the button "
                          "(about a minute per row; the distilled rows train first).")
table = lab.rows_of(runs)
st.subheader("Size, time per clip and word error rate")
st.markdown(lab.headline(table))
st.plotly_chart(plots.lineup_figure(table, "name", lab.PANELS), width="stretch", config={"displayModeBar": False})
ui.number_table(table, {"size MB": "%.1f", "x smaller": "%.2fx", "s per clip (p50)": "%.3f", "x faster": "%.2fx",
                        "real-time factor": "%.3f", "WER": "percent", "CER": "percent", "train s": "%.0f"},
                hidden=("run",))
for run in runs:
    for note in run.notes:
        st.caption(f"**{lab.name_of(run)}**: {note}")

st.subheader("What each model heard")
st.caption("Words that differ from the reference (after the normalizer) are highlighted; missing ones struck through.")
try:
    clips = load_dataset(DatasetSpec(dataset)).eval
except MicrobudgetError as error:
    st.error(str(error))
    st.stop()
for n, clip in enumerate(lab.clip_rows(runs, list(clips.labels))):
    with st.expander(f"Clip {n + 1}: {clip.reference}", expanded=n == 0):
        st.audio(clips.inputs[n], sample_rate=SAMPLE_RATE)
        st.markdown("<br>".join(f"**{name}**: {lab.marked_differences(clip.reference, text)}"
                                for name, text in clip.transcripts.items()), unsafe_allow_html=True)

st.subheader("Your own voice")
recorded = st.audio_input("Record yourself", key="speech_record")
uploaded = st.file_uploader("or upload a clip (wav, flac, mp3, ogg)", type=["wav", "flac", "mp3", "ogg"],
                            key="speech_upload")
source = recorded or uploaded
if source is not None:
    try:
        heard = lab.transcribe_upload(source.getvalue(), source.name, model, [run.run_id for run in runs])
    except MicrobudgetError as error:
        st.error(str(error))
    else:
        for name, transcript in heard.items():
            st.markdown(f"**{name}** · {transcript.seconds:.2f} s: {transcript.text or '(nothing heard)'}")
