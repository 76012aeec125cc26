"""microbudget: pick a model and a technique, run it, and see what it buys."""

import os

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from microbudget_core import clean, devices, snapshot
from microbudget_core.support import limits, paths
from microbudget_core.support.errors import DamagedFile, move_aside

st.set_page_config(page_title="microbudget", page_icon=":material/compress:", layout="wide")

pages = [
    st.Page("views/home.py", title="Methods at a glance", icon=":material/home:", default=True),
    st.Page("views/transfer.py", title="Transfer learning", icon=":material/school:"),
    st.Page("views/distillation.py", title="Distillation", icon=":material/science:"),
    st.Page("views/pruning.py", title="Pruning", icon=":material/content_cut:"),
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


@st.cache_data(ttl=60, show_spinner=False)
def data_folder_caption() -> str:
    """The data folder's size for the sidebar, after keeping it under the operator's cap (if one is set)."""
    clean.within_cap()
    cap = os.environ.get(clean.CAP_VARIABLE)
    return (f"Data folder: {clean.folder_size(paths.home()) / 1e9:.2f} GB" + (f" (cap {cap} GB)" if cap else "")
            + ". `python -m microbudget_core clean` lists and trims it.")


st.sidebar.caption(data_folder_caption())
if snapshot.problem():  # one notice; the pages open without it
    st.sidebar.warning(snapshot.problem())


def training_settings() -> devices.Training:
    """Where this visitor's training runs: a choice in the sidebar only where more than the CPU exists."""
    if len(devices.available()) == 1:
        return devices.Training()
    device = st.sidebar.selectbox("Train on", [devices.AUTO, *devices.available()], key="train_device",
                                  help="Through Accelerate; auto picks the GPU. Speed is still measured on the CPU, "
                                       "the serving target.")
    precision = st.sidebar.selectbox("Mixed precision", devices.precisions(devices.resolved(device)),
                                     key="train_precision", help="bf16 or fp16 autocast while training.")
    return devices.Training(device, precision)


devices.use(training_settings())


def run_page(page: StreamlitPage) -> None:
    """The chosen page; where a file it reads is damaged, one error box and the way out, and the other pages work."""
    try:
        page.run()
    except DamagedFile as damaged:
        st.error(str(damaged))
        if st.button("Move it aside and start a new one", type="primary"):
            move_aside(damaged.path)
            st.rerun()


def private_workspace() -> str:
    """This tab's workspace id, kept in the page address (?workspace=<token>) so a reload or a bookmark returns to
    the same runs; an unknown, expired or malformed token starts a new workspace, with a notice."""
    if "workspace" not in st.session_state:
        asked = st.query_params.get("workspace")
        st.session_state["workspace"] = asked if asked and paths.session_exists(asked) else paths.new_session_id()
        if asked and asked != st.session_state["workspace"]:
            st.sidebar.warning("That workspace link is unknown or has expired (a workspace unused for a day is "
                               "removed): this is a new, empty one.")
    if st.query_params.get("workspace") != st.session_state["workspace"]:  # page links drop the address's query
        st.query_params["workspace"] = st.session_state["workspace"]
    return st.session_state["workspace"]


page = st.navigation(pages)
if paths.private_sessions():  # a shared server: this browser session's runs and uploads are its own
    with paths.session_workspace(private_workspace()):
        st.sidebar.caption("Your runs and uploads are private to this workspace, removed after a day unused. "
                           "Its link (this page's address) brings you back to it: keep it to yourself.")
        run_page(page)
else:
    run_page(page)
