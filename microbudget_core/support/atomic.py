"""Writing files and folders atomically: an interrupted write leaves no entry, whole or half, for a reader."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Callable, Iterator


def write_atomically(path: Path, data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write `data` (bytes, or a function that writes into the open file it is given) under a private name,
    then rename it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        with open(partial, "wb") as file:
            file.write(data) if isinstance(data, bytes) else data(file)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def folder_atomically(folder: Path) -> Iterator[Path]:
    """A private folder to fill, renamed to `folder` when the block ends without error. If another process made
    `folder` meanwhile, theirs is kept (the same content: the caller's key names it)."""
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        yield partial
        try:
            partial.rename(folder)
        except OSError:  # another process made it first: theirs is kept
            if not folder.exists():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
