"""End to end: `streamlit run` on a free loopback port, driven in headless Chromium by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's background services try the network, which is closed here.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory):
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package.")
    port = _free_port()
    env = {**os.environ, "MICROBUDGET_HOME": str(tmp_path_factory.mktemp("e2e-home")), "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.5)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def page(app_url):
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1400, "height": 1000})
        browser.close()


def _assert_no_error(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def _choose(page, label: str, option: str) -> None:
    """Pick an option in a Streamlit selectbox by typing into its combobox."""
    box = page.get_by_label(label, exact=False).first
    box.click()
    page.get_by_role("option", name=option, exact=False).first.click()


def test_home_page_shows_the_methods_table(page, app_url):
    page.goto(app_url)
    page.get_by_text("Methods at a glance").first.wait_for(timeout=60_000)
    page.locator('[data-testid="stTable"]').first.wait_for(timeout=30_000)
    assert page.locator('[data-testid="stTable"] tbody tr').count() == 6
    _assert_no_error(page)
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)


def test_quantization_page_runs_and_draws_the_chart(page, app_url, tiny_text_model, sentiment_csv):
    page.goto(f"{app_url}/quantization")
    page.get_by_text("Store weights in fewer bits").wait_for(timeout=60_000)
    # Opened by URL, the page still shows the app's own navigation (not Streamlit's file list).
    navigation = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Methods at a glance" in navigation and "app" not in navigation.split("\n")
    _choose(page, "Base model", "other")
    page.get_by_role("textbox", name="Hugging Face model id or local folder").fill(str(tiny_text_model))
    page.keyboard.press("Enter")
    _choose(page, "Dataset", "other")
    page.get_by_role("textbox", name="Dataset id").fill(f"csv:{sentiment_csv}")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Run", exact=True).click()
    # The explainer further down draws its own chart at once; the run's result is the one to wait for.
    page.get_by_text("vs original").first.wait_for(timeout=300_000)
    page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=60_000)
    page.locator('[data-testid="stMetric"]').first.wait_for(timeout=30_000)
    _assert_no_error(page)
    assert page.locator('[data-testid="stPlotlyChart"] .bars .point').count() >= 8  # 4 panels x 2 bars
    assert "smaller" in page.locator('[data-testid="stMarkdown"]').all_inner_texts().__str__()
    page.screenshot(path=str(ARTIFACTS / "quantization.png"), full_page=True)


def _pick_language_model(page, model: Path, csv: Path) -> None:
    """The LLM pages' pickers: a causal LM folder and a CSV of texts, both through "other…"."""
    _choose(page, "Language model", "other")
    page.get_by_role("textbox", name="Hugging Face model id or local folder of a causal LM").fill(str(model))
    page.keyboard.press("Enter")
    _choose(page, "Texts (a text classification dataset)", "other")
    page.get_by_role("textbox", name="Dataset id: csv:PATH or hf:NAME").fill(f"csv:{csv}")
    page.keyboard.press("Enter")


def test_llm_quantization_page_runs_levels_and_draws_them(page, app_url, tiny_causal_lm, sentiment_csv):
    page.goto(f"{app_url}/llm_quantization")
    page.get_by_text("GGUF files ship a language model").wait_for(timeout=60_000)
    _pick_language_model(page, tiny_causal_lm, sentiment_csv)
    page.get_by_role("button", name="Quantize and measure each level").click()
    page.get_by_text("What each level saves and loses").wait_for(timeout=300_000)
    page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=60_000)
    _assert_no_error(page)
    assert page.locator('[data-testid="stPlotlyChart"] .scatterlayer .point').count() >= 15  # 3 panels x 5 levels
    assert page.get_by_text("The same prompt at each level").count() == 1
    page.screenshot(path=str(ARTIFACTS / "llm-quantization.png"), full_page=True)


def test_specialist_page_runs_the_contest_and_draws_it(page, app_url, tiny_causal_lm, tiny_text_model, sentiment_csv):
    page.goto(f"{app_url}/specialist")
    page.get_by_text("answering the same task from a prompt").wait_for(timeout=60_000)
    _pick_language_model(page, tiny_causal_lm, sentiment_csv)
    page.get_by_role("textbox", name="Specialist (fine-tuned for the task)").fill(str(tiny_text_model))
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Run the contest").click()
    page.get_by_text("cheaper per prediction").wait_for(timeout=300_000)
    page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=60_000)
    _assert_no_error(page)
    assert page.locator('[data-testid="stPlotlyChart"] .bars .point').count() == 12  # 3 panels x 4 contenders
    page.screenshot(path=str(ARTIFACTS / "specialist.png"), full_page=True)


def test_compare_page_shows_the_stored_runs(page, app_url):
    page.goto(f"{app_url}/compare")
    page.get_by_text("Compare and decide").first.wait_for(timeout=60_000)
    page.locator('[data-testid="stPlotlyChart"] .scatterlayer .point').first.wait_for(timeout=60_000)
    _assert_no_error(page)
    assert page.locator('[data-testid="stPlotlyChart"] .scatterlayer .point').count() >= 2
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)
