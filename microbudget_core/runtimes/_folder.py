"""A model that lives in a folder of files (ONNX graphs, a CTranslate2 model.bin): the object owns a temporary copy."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch


def new_storage() -> tempfile.TemporaryDirectory:
    """An empty temporary folder for a model's files."""
    return tempfile.TemporaryDirectory(prefix="microbudget-model-")


class FolderModel:
    """A runtime's model over a temporary folder that this object owns; subclasses open their engine in `open()`.

    Nothing writes to the folder once made, so copies share it; it is deleted with its last holder.
    """

    def __init__(self, storage: tempfile.TemporaryDirectory, threads: int | None = None):
        self.storage = storage
        # These engines ignore torch.set_num_threads; measure() sets the count through set_threads().
        self.threads = threads or torch.get_num_threads()
        self.open()

    def open(self) -> None:
        """Start the engine on `self.folder` with `self.threads` threads."""
        raise NotImplementedError

    @classmethod
    def from_folder(cls, source: Path, threads: int | None = None) -> FolderModel:
        """A model over its own copy of the files in `source` (a bundle's folder may change or go)."""
        storage = new_storage()
        shutil.copytree(source, storage.name, dirs_exist_ok=True)
        return cls(storage, threads)

    @property
    def folder(self) -> Path:
        return Path(self.storage.name)

    def set_threads(self, threads: int) -> None:
        """Restart the engine when the count changes (its thread pool is fixed when it starts)."""
        if self.threads != threads:
            self.threads = threads
            self.open()

    def __deepcopy__(self, memo: dict) -> FolderModel:
        return type(self)(self.storage, self.threads)

    def __getstate__(self) -> dict[str, Any]:
        files = {path.name: path.read_bytes() for path in self.folder.iterdir()}  # a flat folder
        return {"files": files, "threads": self.threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        storage = new_storage()
        for name, data in state["files"].items():
            (Path(storage.name) / name).write_bytes(data)
        self.__init__(storage, state.get("threads"))
