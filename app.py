"""microbudget: pick a model and a technique, run it, and see what it buys."""

import uuid

import streamlit as st

from microbudget_core import limits, paths

st.set_page_config(page_title="microbudget", page_icon=":material/compress:", layout="wide")

pages = [
    st.Page("views/home.py", title="Methods at a glance", icon=":material/home:", default=True),
    st.Page("views/transfer.py", title="Transfer learning", icon=":material/school:"),
    st.Page("views/distillation.py", title="Distillation", icon=":material/science:"),
    st.Page("views/quantization.py", title="Quantization", icon=":material/compress:"),
    st.Page("views/llm_quantization.py", title="LLM quantization", icon=":material/chat:"),
    st.Page("views/specialist.py", title="Specialist vs generalist", icon=":material/balance:"),
    st.Page("views/speech.py", title="Speech", icon=":material/mic:"),
    st.Page("views/architectures.py", title="Architectures", icon=":material/architecture:"),
    st.Page("views/compare.py", title="Compare and decide", icon=":material/insights:"),
    st.Page("views/talk.py", title="Talk mode", icon=":material/slideshow:"),
]
if limits.active():
    st.sidebar.caption("This server trains at most " + ", ".join(f"{maximum} {name.replace('_', ' ')}"
                                                                for name, maximum in limits.active().items()) + ".")
if paths.private_sessions():  # a shared server: this browser session's runs and uploads are its own
    with paths.session_workspace(st.session_state.setdefault("workspace", uuid.uuid4().hex)):
        st.sidebar.caption("Your runs and uploads are private to this browser tab and removed after a day unused.")
        st.navigation(pages).run()
else:
    st.navigation(pages).run()
