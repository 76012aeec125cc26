"""End to end: `streamlit run` on a free loopback port, driven in headless Chromium by Playwright."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import HANG_GUARD_S
from microbudget_core.labs import speech, talk

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's background services try the network, which is closed here.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Every wait here is for what a person waits for (a result, a chart), however slow the machine: only the hang guard.
WAIT_MS = HANG_GUARD_S * 1000

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def e2e_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app's data folder for this module's tests."""
    return tmp_path_factory.mktemp("e2e-home")


@pytest.fixture(scope="module")
def app_url(e2e_home: Path):
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package.")
    port = _free_port()
    env = {**os.environ, "MICROBUDGET_HOME": str(e2e_home), "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + HANG_GUARD_S
    while not _listening(port):
        if server.poll() is not None or time.time() > deadline:
            pytest.fail(f"`streamlit run` did not start (exit code {server.poll()}).")
        time.sleep(0.5)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=HANG_GUARD_S)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def page(app_url):
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)
        yield page
        browser.close()


def _assert_no_error(page) -> None:
    """No error box once the page has finished running (taken earlier, a count of none proves nothing)."""
    _settled(page)
    errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.all_inner_texts()


def _choose(page, label: str, option: str) -> None:
    """Pick an option in a Streamlit selectbox by typing into its combobox (exact label: not its help button's,
    "Help for <label>")."""
    box = page.get_by_label(label, exact=True).first
    box.click()
    page.get_by_role("option", name=option, exact=False).first.click()


def test_home_page_shows_the_methods_table(page, app_url):
    page.goto(app_url)
    page.get_by_text("Methods at a glance").first.wait_for()
    expect(page.locator('[data-testid="stTable"] tbody tr')).to_have_count(6)
    _assert_no_error(page)
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)


def test_quantization_page_runs_and_draws_the_chart(page, app_url, tiny_text_model, sentiment_csv):
    page.goto(f"{app_url}/quantization")
    page.get_by_text("Store weights in fewer bits").wait_for()
    # Opened by URL, the page still shows the app's own navigation (not Streamlit's file list).
    navigation = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Methods at a glance" in navigation and "app" not in navigation.split("\n")
    _pick_model_and_dataset(page, tiny_text_model, sentiment_csv)
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("vs original").first.wait_for()
    # The run's result, by its panels' titles: the explainer further down draws bars and metrics of its own at once.
    result = page.locator('[data-testid="stPlotlyChart"]', has_text="Throughput (batch 32)")
    expect(result.locator(".bars .point")).to_have_count(8)  # 4 panels x 2 bars
    expect(page.locator('[data-testid="stMetric"]', has_text="Throughput (batch 32)")).to_be_visible()
    expect(page.get_by_text(re.compile(r"x smaller, [\d.]+x faster"))).to_be_visible()  # the summary line
    _assert_no_error(page)
    page.screenshot(path=str(ARTIFACTS / "quantization.png"), full_page=True)


# A run is going on while elements of the run before are still shown (marked stale, at once when a key or click
# asks for a rerun) or while the status widget shows (once a run has taken 500 ms); neither for a second: it ended.
QUIET_FOR_A_SECOND = """() => {
    const busy = document.querySelector('[data-stale="true"], [data-testid="stStatusWidget"]');
    window.quietSince = busy ? 0 : window.quietSince || Date.now();
    return window.quietSince > 0 && Date.now() - window.quietSince > 1000;
}"""


def _settled(page) -> None:
    """Wait for the script run to end, however long it takes."""
    page.evaluate("window.quietSince = 0")
    page.wait_for_function(QUIET_FOR_A_SECOND)


def _choose_other(page, label: str, textbox: str, value: str) -> None:
    """Pick "other…" in a selectbox and type `value` into the text box it opens."""
    _choose(page, label, "other")
    page.get_by_role("textbox", name=textbox).fill(value)
    page.keyboard.press("Enter")
    _settled(page)


def _pick_model_and_dataset(page, model: Path, csv: Path) -> None:
    """The labs' pickers: a model folder and a CSV."""
    _choose_other(page, "Base model", "Hugging Face model id or local folder", str(model))
    _choose_other(page, "Dataset", "Dataset id", f"csv:{csv}")


MARKS = '[data-testid="stPlotlyChart"] :is(.bars .point, .scatterlayer .point, .hm)'  # an empty chart has none


def _wait_for_marks(page, count: int, marks: str = MARKS) -> None:
    """Wait until the page's charts draw at least `count` data marks (bars, markers, heatmap cells)."""
    expect(page.locator(marks).nth(count - 1)).to_be_attached()


def test_quantization_sweep_draws_each_bit_width(page, app_url, tiny_text_model, sentiment_csv):
    page.goto(f"{app_url}/quantization")
    page.get_by_text("Store weights in fewer bits").wait_for()
    _pick_model_and_dataset(page, tiny_text_model, sentiment_csv)
    page.get_by_role("button", name="Run the sweep").click()
    # The sweep's markers: accuracy, size and latency at 4 bit widths, and the int8 points.
    _wait_for_marks(page, 12, '[data-testid="stPlotlyChart"] .scatterlayer .point')
    _assert_no_error(page)
    page.screenshot(path=str(ARTIFACTS / "quantization-sweep.png"), full_page=True)


def test_transfer_page_trains_the_head_and_draws_curves_and_confusion(page, app_url, tiny_text_model, sentiment_csv):
    page.goto(f"{app_url}/transfer")
    page.get_by_text("Keep what a pretrained model learned").wait_for()
    _pick_model_and_dataset(page, tiny_text_model, sentiment_csv)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("eval accuracy").first.wait_for()
    # The charts render after the metrics: each count waits for them (attached: a plotly trace group may be hidden).
    expect(page.locator('[data-testid="stMetric"]')).to_have_count(4)
    expect(page.locator('[data-testid="stPlotlyChart"] .hm')).to_have_count(1)  # the confusion matrix
    expect(page.locator('[data-testid="stPlotlyChart"] .scatterlayer .trace').nth(1)).to_be_attached()  # loss, acc.
    _assert_no_error(page)
    page.screenshot(path=str(ARTIFACTS / "transfer.png"), full_page=True)


def test_distillation_page_distils_a_student_and_lines_it_up(page, app_url, tiny_text_model, sentiment_csv):
    page.goto(f"{app_url}/distillation")
    page.get_by_text("not only from the labels", exact=False).first.wait_for()
    _pick_model_and_dataset(page, tiny_text_model, sentiment_csv)
    page.get_by_role("spinbutton", name="layers", exact=True).fill("1")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Distill", exact=True).click()
    page.get_by_text("Teacher and students side by side").wait_for()
    expect(page.locator('[data-testid="stPlotlyChart"] .bars .point')).to_have_count(12)  # 3 panels x 4 rows
    _assert_no_error(page)
    page.screenshot(path=str(ARTIFACTS / "distillation.png"), full_page=True)


def test_architectures_page_measures_a_model_at_the_same_budget(page, app_url, tiny_text_model, sentiment_csv):
    page.goto(f"{app_url}/architectures")
    page.get_by_text("A smaller architecture saves").wait_for()
    page.get_by_role("textbox", name="…or your own", exact=False).fill(f"csv:{sentiment_csv}")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Clear all").first.click()  # no built-in: the tiny model alone, quick
    page.get_by_role("textbox", name="More models", exact=False).fill(str(tiny_text_model))
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Train and measure").click()
    page.get_by_text("examples per class, all weights, 3 epochs each").wait_for()
    _wait_for_marks(page, 2)  # the model against multiply-adds and against latency
    _assert_no_error(page)
    page.screenshot(path=str(ARTIFACTS / "architectures.png"), full_page=True)


def _pick_language_model(page, model: Path, csv: Path) -> None:
    """The LLM pages' pickers: a causal LM folder and a CSV of texts."""
    _choose_other(page, "Language model", "Hugging Face model id or local folder of a causal LM", str(model))
    _choose_other(page, "Texts (a text classification dataset)", "Dataset id: csv:PATH or hf:NAME", f"csv:{csv}")


def test_llm_quantization_page_runs_the_gguf_levels_and_draws_them(page, app_url, tiny_gguf_llama, sentiment_csv):
    page.goto(f"{app_url}/llm_quantization")
    page.get_by_text("GGUF files ship a language model").wait_for()
    _pick_language_model(page, tiny_gguf_llama, sentiment_csv)
    page.get_by_role("button", name="Quantize and measure each level").click()  # the defaults: the talk's levels
    page.get_by_text("What each level saves and loses").wait_for()
    page.get_by_text("The same prompt at each level").wait_for()
    _wait_for_marks(page, 12, '[data-testid="stPlotlyChart"] .scatterlayer .point')  # 3 panels x 4 levels
    expect(page.locator('[data-testid="stPlotlyChart"] .legendtext', has_text="llama.cpp")).to_have_count(1)
    _assert_no_error(page)
    page.screenshot(path=str(ARTIFACTS / "llm-quantization.png"), full_page=True)


def test_specialist_page_runs_the_contest_and_draws_it(page, app_url, tiny_causal_lm, tiny_text_model, sentiment_csv):
    page.goto(f"{app_url}/specialist")
    page.get_by_text("answering the same task from a prompt").wait_for()
    _pick_language_model(page, tiny_causal_lm, sentiment_csv)
    _choose_other(page, "Specialist (fine-tuned for the task)", "Specialist: hub id or folder", str(tiny_text_model))
    page.get_by_role("button", name="Run the contest").click()
    page.get_by_text("cheaper per prediction").wait_for()
    expect(page.locator('[data-testid="stPlotlyChart"] .bars .point')).to_have_count(12)  # 3 panels x 4 contenders
    _assert_no_error(page)
    page.screenshot(path=str(ARTIFACTS / "specialist.png"), full_page=True)


def test_speech_page_opens_on_its_last_comparison_and_plays_the_clips(page, app_url, e2e_home, tiny_whisper,
                                                                     spoken_folder, monkeypatch):
    # The comparison the page opens on, made by the core into the app's data folder (as `warm` would).
    monkeypatch.setenv("MICROBUDGET_HOME", str(e2e_home))
    speech.run_speech(str(tiny_whisper), f"audio:{spoken_folder}", ["int8 (PyTorch)"], larger=None)
    page.goto(f"{app_url}/speech")
    page.get_by_text("Whisper transcribes speech").wait_for()
    _choose_other(page, "Speech model", "Hugging Face model id or local folder of a Whisper model", str(tiny_whisper))
    _choose_other(page, "Clips", "Dataset id: audio:PATH", f"audio:{spoken_folder}")
    page.get_by_text("What each model heard").wait_for()
    _wait_for_marks(page, 6)  # 3 panels x (original, int8)
    page.locator("audio").first.wait_for()
    _assert_no_error(page)
    page.screenshot(path=str(ARTIFACTS / "speech.png"), full_page=True)


def test_compare_page_shows_the_stored_runs(page, app_url):
    page.goto(f"{app_url}/compare")
    page.get_by_text("Compare and decide").first.wait_for()
    _wait_for_marks(page, 2, '[data-testid="stPlotlyChart"] .scatterlayer .point')
    _assert_no_error(page)
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)


def test_talk_mode_steps_through_the_labs_results_with_the_arrow_keys(page, app_url, e2e_home, tiny_text_model,
                                                                     tiny_gguf_llama, sentiment_csv, tiny_whisper,
                                                                     spoken_folder, monkeypatch):
    # `warm` on the tiny models, into the app's data folder: it keeps what the tests above computed.
    monkeypatch.setenv("MICROBUDGET_HOME", str(e2e_home))
    talk.warm(talk.Plan(model=str(tiny_text_model), dataset=f"csv:{sentiment_csv}", llm=str(tiny_gguf_llama),
                        eval_limit=500, llm_texts=16, architectures=(str(tiny_text_model),),
                        speech_model=str(tiny_whisper), speech_dataset=f"audio:{spoken_folder}",
                        speech_rows=("int8 (PyTorch)",), vision_model="", teacher=""))
    page.goto(f"{app_url}/talk")
    for number, step in enumerate(talk.STEPS):
        page.get_by_role("heading", name=step.title).first.wait_for()
        _settled(page)  # the previous step's charts stay on screen until the run ends
        _wait_for_marks(page, 2)
        _assert_no_error(page)
        page.screenshot(path=str(ARTIFACTS / f"talk-{number + 1}.png"), full_page=True)
        page.keyboard.press("ArrowRight")
    assert f"step={len(talk.STEPS)}" in page.url
