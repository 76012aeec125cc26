"""Benchmark: the first visit and the default buttons. How long each page takes to show results in Chromium on an
empty data folder (the committed results snapshot), then `warm` on the offline defaults (each lab's default button,
quick budget) and the same tour after it.

    MICROBUDGET_HOME=/tmp/talk-home .venv/bin/python -m benchmarks.talk   # a fresh data folder: warm from nothing
    .venv/bin/python -m benchmarks.talk                                   # the usual folder: kept results reused

Writes benchmarks/talk.md. Each page is reached as a person would: by its link in the sidebar, from the page
before (the first page load, which imports the engine, is timed on its own); Talk mode is walked step by step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from playwright.sync_api import sync_playwright

from benchmarks.run import report
from microbudget_core.support.cpu import describe
from microbudget_core import labs
from microbudget_core.labs import talk
from microbudget_core.support.paths import home

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What "results" means on each page: the methods table on the home page; elsewhere, data marks in a chart.
TABLE = '[data-testid="stTable"] tbody tr'
MARKS = '[data-testid="stPlotlyChart"] :is(.bars .point, .scatterlayer .point, .hm)'
PAGES = [("Methods at a glance", TABLE), ("Transfer learning", MARKS), ("Distillation", MARKS),
         ("Quantization", MARKS), ("LLM quantization", MARKS), ("Specialist vs generalist", MARKS),
         ("Speech", MARKS), ("Architectures", MARKS), ("Compare and decide", MARKS), ("Talk mode", MARKS)]
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'
PORT = 8765


def warm_table() -> list[str]:
    """`warm` (kept results reused), then each lab job's duration when it last ran in this data folder: the
    default buttons' times (labs.job keeps them)."""
    started = time.perf_counter()
    warmed = talk.warm(progress=report("warm"))
    print(file=sys.stderr)
    lines = ["| lab | seconds now | status |", "|---|---|---|"]
    lines += [f"| {w.lab} | {w.seconds:.0f} | {w.status} |" for w in warmed]
    lines += ["", f"`warm` wall time now: {time.perf_counter() - started:.0f} s. Each lab job's duration when it last "
                  "ran in this data folder (a default button's time; the first job on a model includes its baseline):",
              "", "| job | seconds |", "|---|---|"]
    return lines + [f"| `{job}` | {seconds:.0f} |" for job, seconds in labs.durations_here().items()]


def page_table(data_folder: Path, screenshot: Path | None = None) -> list[str]:
    """The tour of every page on an app whose data folder is `data_folder` (the home page saved to `screenshot`)."""
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(PORT),
                               "--server.headless", "true", "--server.address", "127.0.0.1"], cwd=ROOT,
                              env={**os.environ, "MICROBUDGET_HOME": str(data_folder)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            started = time.perf_counter()
            page.goto(f"http://127.0.0.1:{PORT}/")
            page.locator(TABLE).first.wait_for(timeout=120_000)
            if screenshot:
                page.locator(MARKS).first.wait_for(timeout=120_000)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(screenshot), full_page=True)
            lines = [f"First load of the home page (the engine imported): {time.perf_counter() - started:.1f} s.", "",
                     "| page | seconds to results | charts with data | error boxes |", "|---|---|---|---|"]
            for title, results in PAGES:
                started = time.perf_counter()
                page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
                page.locator(results).first.wait_for(timeout=120_000)
                seconds = time.perf_counter() - started
                page.wait_for_timeout(1500)  # let the rest of the page draw before counting it
                charts = page.locator('[data-testid="stPlotlyChart"]').count()
                errors = page.locator(ERRORS).count()
                lines.append(f"| {title} | {seconds:.2f} | {charts} | {errors} |")
                print(lines[-1], file=sys.stderr)
            for step in talk.STEPS[1:]:  # Talk mode's other steps, by its Next button
                started = time.perf_counter()
                page.get_by_role("button", name="Next →").click()
                page.get_by_role("heading", name=step.title, exact=True).wait_for(timeout=120_000)
                page.locator(MARKS).first.wait_for(timeout=120_000)
                seconds = time.perf_counter() - started
                page.wait_for_timeout(1500)
                charts, errors = page.locator('[data-testid="stPlotlyChart"]').count(), page.locator(ERRORS).count()
                lines.append(f"| Talk mode: {step.title} | {seconds:.2f} | {charts} | {errors} |")
                print(lines[-1], file=sys.stderr)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return lines


def main(path: Path) -> None:
    with tempfile.TemporaryDirectory() as empty:
        first = page_table(Path(empty), ROOT / "docs" / "home.png")
    lines = [f"Measured {date.today()} on {describe()}, 2 threads, data folder {home()}.", "",
             "### First visit: an empty data folder (the committed results snapshot), no button pressed", "", *first,
             "", "### `python -m microbudget_core warm`: each lab's default button (quick budget)", "", *warm_table(),
             "", "### Each page after `warm`, reached by its sidebar link in headless Chromium", "",
             *page_table(home())]
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(__file__).with_name("talk.md"))
