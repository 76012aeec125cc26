"""llama.cpp: the model is one GGUF file, run on llama.cpp's own CPU kernels through llama-cpp-python.

This is what Ollama runs. The bundle keeps the Hugging Face tokenizer of the model it came from (saved beside
the file), so both runtimes score the very same token ids and their perplexities compare.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..support.errors import MicrobudgetError
from ..support.paths import home
from . import LLAMACPP
from ._scoring import label_log_likelihoods

ID = LLAMACPP
NAME = "llama.cpp"
SELF_CONTAINED = True  # the GGUF file holds the weights, the architecture and the tokenizer's vocabulary
FILE = "model.gguf"
CONTEXT = 2048  # tokens of context: the PyTorch LMs' cap too (models.llm.MAX_CONTEXT)
BUILD_LOG = Path(sys.prefix) / "llama-cpp-build.log"  # written by the setup (tools/build_llamacpp.sh) on failure
CONVERTER = Path(sys.prefix) / "share" / "llama.cpp" / "convert_hf_to_gguf.py"  # vendored by the same setup


@lru_cache(maxsize=1)
def missing() -> str | None:
    """Why llama.cpp cannot run here (None when it can): the setup's build failed or was not run."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as error:
        if BUILD_LOG.exists():
            return (f"llama.cpp failed to build during the setup (its log: {BUILD_LOG}, last line: "
                    f"{BUILD_LOG.read_text().strip().splitlines()[-1:] or ['empty']}).")
        return f"llama-cpp-python is not installed ({error})."
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # llama.cpp's load and quantize chatter
    return None


def require() -> None:
    """Raise one clear message when llama.cpp is not built here."""
    reason = missing()
    if reason:
        raise MicrobudgetError(reason, "Run `make setup` again (it compiles llama.cpp once, about 5 minutes), or "
                                       "use the PyTorch levels.")


def scratch_file() -> Path:
    """A new private path for a GGUF file that a technique writes (removed with the model that owns it)."""
    folder = home() / "scratch"
    folder.mkdir(parents=True, exist_ok=True)
    for left in folder.iterdir():  # what a killed process left behind, a day later
        if time.time() - left.stat().st_mtime > 86400:
            shutil.rmtree(left, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=folder)) / FILE


class GgufModel:
    """A GGUF file and a llama.cpp context on it, made when first run (and again when the thread count changes).

    As a language model it returns logits per position; with `labels` (a causal LM answering a classification
    task from a prompt, see models.llm.as_classifier) each label's log-likelihood per text. The file is never
    modified. `owned` files (a technique's output in scratch) are removed with the object and its copies.
    """

    def __init__(self, path: Path, threads: int | None = None, owned: bool = False, labels: int = 0):
        self.path, self.threads, self.labels = Path(path), threads or torch.get_num_threads(), labels
        self._llama, self._close, self._lock = None, None, threading.Lock()
        if owned:
            weakref.finalize(self, shutil.rmtree, self.path.parent, ignore_errors=True)

    @property
    def llama(self) -> Any:
        if self._llama is None:
            require()
            import llama_cpp

            # Both thread counts: n_threads_batch left at its default made generation 5-10x slower here.
            # logits_all keeps every position's logits (perplexity reads them); the buffer is only touched
            # as far as a sequence goes.
            self._llama = llama_cpp.Llama(str(self.path), n_ctx=context_length(self.path), n_threads=self.threads,
                                          n_threads_batch=self.threads, logits_all=True, verbose=False)
            # Freed with this object or at exit, while llama_cpp is still there (its own __del__ runs too late).
            self._close = weakref.finalize(self, self._llama.close)
        return self._llama

    def unload(self) -> None:
        """Free the llama.cpp context (the next run makes a new one)."""
        with self._lock:
            if self._close:
                self._close()
            self._llama = self._close = None

    def logits(self, ids: list[int]) -> np.ndarray:
        """Logits at every position of one sequence."""
        return self._read(ids, slice(0, len(ids)))

    def _read(self, ids: list[int], rows: slice | np.ndarray) -> np.ndarray:
        """Evaluate `ids` and copy out the logits of `rows` (a slice or position indices). The part they share
        with what the context last read is not read again: llama.cpp keeps it cached, as Ollama and llama-server
        do (a prompt's labels, a few-shot prefix, each next token of a completion). One reader at a time: the
        app's sessions share loaded models."""
        with self._lock:
            llama = self.llama
            kept = 0
            for cached, new in zip(llama.input_ids[: min(llama.n_tokens, len(ids) - 1)], ids):
                if cached != new:
                    break
                kept += 1
            llama.n_tokens = kept  # eval() drops the cache past this point, then reads the rest
            llama.eval(ids[kept:])
            return np.array(llama.scores[rows])

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 scored: torch.Tensor | None = None) -> torch.Tensor:
        """Logits per position of right-padded token ids (zeros where padded); label scores when `scored` is given."""
        sequences = [row[: int(length)].tolist() for row, length in zip(input_ids, attention_mask.sum(dim=1))]
        if scored is None:
            rows = [self.logits(sequence) for sequence in sequences]
            logits = torch.zeros(len(rows), input_ids.shape[1], rows[0].shape[1])
            for number, row in enumerate(rows):
                logits[number, : len(row)] = torch.from_numpy(row)
            return logits
        # Only the positions that predict a label token are copied out: a batch's logits at every position
        # would be gigabytes (rows x tokens x vocabulary). nonzero() lists them row by row, as read here.
        rows, positions = torch.nonzero(scored[:, 1:], as_tuple=True)
        picked = [torch.from_numpy(self._read(sequence, positions[rows == number].numpy()))
                  for number, sequence in enumerate(sequences)]
        return label_log_likelihoods(torch.cat(picked), input_ids, rows, positions, self.labels)

    def greedy(self, ids: list[int]) -> Iterator[int]:
        """The most likely next token, again and again, each one fed back (only it is read: the rest is cached)."""
        ids = list(ids)
        while True:
            token = int(np.argmax(self._read(ids, slice(len(ids) - 1, len(ids)))[0]))
            yield token
            ids.append(token)

    def __deepcopy__(self, memo: dict) -> "GgufModel":
        twin = GgufModel(self.path, self.threads, labels=self.labels)  # the file is read-only: copies share it
        twin._keeps = self  # ... and keep an owned file alive while they live
        return twin

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "threads": self.threads, "labels": self.labels}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(Path(state["path"]), state["threads"], labels=state["labels"])


@dataclass(frozen=True)
class Header:
    """What the engine reads from a GGUF file's header, read once per file (gguf's reader parses the whole
    vocabulary: about 1.6 s for SmolLM2, so not once per question)."""

    tensor_types: dict[str, int]  # GGML type -> number of tensors stored in it, most common first
    parameters: int  # elements of all tensors
    tensor_bytes: int
    row_widths: tuple[int, ...]  # values per row of each matrix (the tensors of two or more dimensions)
    context_length: int | None  # the model's trained context, where the file says
    chat_template: str
    end_token: str


def header(path: Path) -> Header:
    """The file's header; hard links to one file (a technique's output and its run's artifact) share one read."""
    stat = Path(path).stat()
    return _read_header(str(path), (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=16)
def _read_header(path: str, identity: tuple[int, ...]) -> Header:
    import gguf

    reader = gguf.GGUFReader(path)
    fields, tensors = reader.fields, reader.tensors
    trained = fields.get(f"{fields['general.architecture'].contents()}.context_length")
    template = fields.get("tokenizer.chat_template")
    return Header(
        tensor_types=dict(collections.Counter(t.tensor_type.name for t in tensors).most_common()),
        parameters=sum(int(t.n_elements) for t in tensors), tensor_bytes=sum(int(t.n_bytes) for t in tensors),
        row_widths=tuple(int(t.shape[0]) for t in tensors if len(t.shape) >= 2),
        context_length=int(trained.contents()) if trained else None,
        chat_template=template.contents() if template else "",
        end_token=fields["tokenizer.ggml.tokens"].contents()[fields["tokenizer.ggml.eos_token_id"].contents()])


def context_length(path: Path) -> int:
    """The model's trained context, capped at CONTEXT."""
    return min(CONTEXT, header(path).context_length or CONTEXT)


@contextlib.contextmanager
def output_to_log() -> Iterator[Path]:
    """llama.cpp's C code writes to the process's stderr (its quantizer's per-tensor warnings): send it to a log."""
    log = home() / "logs" / "llama.cpp.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(2)
    with open(log, "a") as file:
        os.dup2(file.fileno(), 2)
        try:
            yield log
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def tensor_types(path: Path) -> dict[str, int]:
    """GGML type -> number of tensors stored in it (the real mix behind a level's label)."""
    return header(path).tensor_types


def bits_per_weight(path: Path) -> float:
    """Stored bits per weight over all the file's tensors (what a level's mix of types averages to)."""
    found = header(path)
    return 8 * found.tensor_bytes / found.parameters


CHATML = ('TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}'
          '<|im_start|>assistant\n"""')  # Ollama's Go template for ChatML, the chat format of SmolLM2, Qwen, ...


def modelfile(path: Path) -> str:
    """An Ollama Modelfile for the GGUF file: FROM, the chat template, its default system prompt and stop tokens."""
    template, end = header(path).chat_template, header(path).end_token
    lines = [f"FROM ./{path.name}"]
    if "<|im_start|>" in template:
        lines.append(CHATML)
        system = re.search(r"<\|im_start\|>system\n(.+?)<\|im_end\|>", template)
        if system:
            lines.append(f'SYSTEM """{system.group(1)}"""')
        stops = ["<|im_end|>", "<|im_start|>"]
    else:  # Ollama reads the template from the file's metadata (tokenizer.chat_template) for known families
        lines.append("# The chat template: Ollama takes it from the file's metadata (tokenizer.chat_template).")
        stops = [end]
    lines += [f'PARAMETER stop "{stop}"' for stop in dict.fromkeys(stops)]
    return "\n".join(lines) + "\n"


def take_away(folder: Path, name: str) -> str:
    """Write the Ollama Modelfile beside an exported GGUF file; the model card's section on running it."""
    (folder / "Modelfile").write_text(modelfile(folder / FILE))
    tag = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-")
    return (f"## Run it with Ollama\n\n`{FILE}` is a llama.cpp file; `Modelfile` names it, with the chat template "
            f"and stop tokens.\n\n```sh\nollama create {tag} -f Modelfile\nollama run {tag}\n```\n")


def run(model: GgufModel, features: dict[str, torch.Tensor]) -> np.ndarray:
    return model(**features).numpy()


def prompted(model: GgufModel, labels: int) -> GgufModel:
    """The same file answering a classification task: each label's log-likelihood (see models.llm.as_classifier)."""
    return GgufModel(model.path, model.threads, labels=labels)


def greedy(model: GgufModel, ids: list[int]) -> Iterator[int]:
    return model.greedy(ids)


def save(model: GgufModel, folder: Path) -> None:
    """A hard link where the folders share a disk (instant, no second copy), else a copy."""
    target = folder / FILE
    target.unlink(missing_ok=True)
    try:
        os.link(model.path, target)
    except OSError:
        shutil.copyfile(model.path, target)


def load(folder: Path, model: Any = None) -> GgufModel:
    return GgufModel(folder / FILE)


def parameter_count(model: GgufModel) -> int:
    """Elements of the file's tensors."""
    return header(model.path).parameters


def digest(model: GgufModel, skip: Any = None) -> str:
    found = hashlib.sha256()
    with open(model.path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            found.update(block)
    return found.hexdigest()


def set_threads(model: GgufModel, threads: int) -> None:
    if model.threads != threads:
        model.unload()
        model.threads = threads
