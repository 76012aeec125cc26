"""LLM quantization: a small language model at GGUF levels on llama.cpp (as Ollama runs it) and in PyTorch."""

import streamlit as st

import ui
from microbudget_core import plots
from microbudget_core.labs import llm_quantization as lab
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.measure import MeasureConfig

st.title("LLM quantization")
st.markdown("GGUF files ship a language model in fewer bits per weight: Llama-3-8B is 7.96 GB in Q8_0, 4.58 GB in "
            "Q4_K_M and 2.96 GB in Q2_K, for +0.003, +0.18 and +3.5 perplexity (*quoted*). Here a small LLM goes "
            "through llama.cpp's own quantizer and runs on its kernels, as Ollama runs it, beside PyTorch levels, "
            "measured on this machine: each level's stored size, load time, generation speed, perplexity on "
            "held-out texts (the same texts and tokens for both backends), and the same prompt's greedy "
            "completion, so you can judge by eye.")
if lab.llamacpp.missing():
    st.warning(f"The GGUF levels are missing: {lab.llamacpp.missing()} The PyTorch levels work.")

model, dataset = ui.pick_language_model_and_texts("llmq")
left, middle, right = st.columns(3)
levels = left.multiselect("Levels", list(lab.LEVELS), default=list(lab.default_levels()), key="llmq_levels",
                          help="GGUF levels: llama.cpp. The others: PyTorch, where bf16 and int8 (per-token, "
                               "torchao) have no fast kernels on this kind of CPU: expect them many times slower "
                               "(minutes per level).")
group_size = middle.select_slider("Group size (PyTorch n-bit)", [16, 32, 64, 128], 32, key="llmq_group",
                                  help="Weights sharing one scale and zero-point; smaller = more accurate, bigger "
                                       "file. GGUF levels have their own fixed block sizes.")
texts = right.slider("Texts for perplexity", 50, 500, lab.PERPLEXITY_TEXTS, step=50, key="llmq_texts")
prompt = st.text_area("Prompt for the side-by-side completions (plain text: no chat template is added)",
                      MeasureConfig.prompt, max_chars=600, key="llmq_prompt")
new_tokens = st.slider("Generated tokens", 8, 128, MeasureConfig.new_tokens, key="llmq_tokens")

if ui.job_button("Quantize and measure each level", lab.run_levels, type="primary",
                 disabled=not (model and dataset and levels)):
    config = MeasureConfig(prompt=prompt, new_tokens=new_tokens)
    ui.run_with_progress(f"{model} at {len(levels)} levels", lambda progress: lab.run_levels(
        model, dataset, levels, group_size, texts, config, progress=progress))

runs = ui.results_or_stop(lab.latest_levels(model, dataset) if model and dataset else [],
                          f"No levels of {model or 'this model'} measured on {dataset or 'these texts'} yet: press the "
                          "button (about a minute per level on 2 cores).")
rows = lab.level_rows(runs)
st.subheader("What each level saves and loses")
st.plotly_chart(plots.levels_figure(rows), width="stretch", config={"displayModeBar": False})
ui.number_table(rows, {"bits per weight": "%.2f", "size MB": "%.1f", "x smaller": "%.2fx", "load s": "%.2f",
                       "tokens/s": "%.1f", "prompt tokens/s": "%.0f", "perplexity": "%.1f", "perplexity x": "%.2fx",
                       "same tokens": "percent"}, hidden=("completion",))
st.caption("tensor types: what the GGUF file really holds, read from it (a K-quant level falls back to older types "
           "for matrices whose rows are not a multiple of 256 values; see each level's note). bits per weight: "
           "over all tensors of the file. same tokens: the share of the completion's tokens equal to the "
           "original's, position by position.")
for run in runs:
    st.caption(f"**{lab.level_of(run)}**: {run.notes[-1]}")

st.subheader("The same prompt at each level")
st.markdown(f"*{runs[0].result.prompt}*")
for start in range(0, len(rows), 3):
    for column, row in zip(st.columns(3), rows[start:start + 3]):
        column.markdown(f"**{row.level}** · perplexity {row.perplexity:,.1f}")
        column.text(row.completion.strip())

st.subheader("Try a level live")
choices = {"": lab.ORIGINAL} | {run.run_id: lab.level_of(run) for run in runs}
level = st.selectbox("Level", list(choices), format_func=choices.get, key="llmq_live_level")
live_prompt = st.text_area("Prompt", "Once upon a time, a tiny model", max_chars=600, key="llmq_live_prompt")
limit = st.slider("Maximum new tokens", 8, 256, 64, key="llmq_live_tokens")
go, stop = st.columns([1, 5])
if go.button("Generate", key="llmq_generate"):
    stop.button("Stop", key="llmq_stop", help="Stops the generation (the page reruns without it).")
    try:
        st.write_stream(lab.stream(model, level, live_prompt, limit))
    except MicrobudgetError as error:
        st.error(str(error))
