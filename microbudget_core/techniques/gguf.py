"""GGUF levels by llama.cpp's own quantizer (Q8_0, Q4_K_M, Q2_K, ...), run on llama.cpp's kernels: what Ollama runs."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..data import Dataset
from ..support.errors import MicrobudgetError
from ..models import ModelBundle
from ..models.bundle import CAUSAL_LM, TEXT
from ..models.llm import is_language_model, language_model
from ..support.network import hub_reachable
from ..support.paths import home
from ..support.progress import Progress, no_progress
from ..runtimes import LLAMACPP, PYTORCH, llamacpp
from . import applies_to

ID = "gguf"
DESCRIPTION = "GGUF levels (Q8_0, Q4_K_M, Q2_K, ...) by llama.cpp's quantizer, run on llama.cpp's kernels, as in Ollama"
RESULT_RUNTIME = LLAMACPP
# Level -> llama.cpp's file type (llama_cpp.LLAMA_FTYPE_<name>).
LEVELS = {"F32": "ALL_F32", "F16": "MOSTLY_F16", "BF16": "MOSTLY_BF16", "Q8_0": "MOSTLY_Q8_0",
          "Q6_K": "MOSTLY_Q6_K", "Q5_K_M": "MOSTLY_Q5_K_M", "Q5_0": "MOSTLY_Q5_0", "Q4_K_M": "MOSTLY_Q4_K_M",
          "Q4_K_S": "MOSTLY_Q4_K_S", "Q4_0": "MOSTLY_Q4_0", "Q3_K_M": "MOSTLY_Q3_K_M", "Q2_K": "MOSTLY_Q2_K"}
K_BLOCK = 256  # values per K-quant super-block: a row must be a multiple of it


@dataclass(frozen=True)
class Config:
    level: str = field(default="Q4_K_M", metadata={"choices": tuple(LEVELS)})


@applies_to(ID, (CAUSAL_LM, TEXT), (PYTORCH, LLAMACPP),
            instead="Use a causal language model (smollm2-135m, or a hub id of one).")
def apply(bundle: ModelBundle, config: Config, dataset: Dataset | None = None,
          progress: Progress = no_progress) -> ModelBundle:
    """The language model, or a language model answering a classification task from a prompt, as a GGUF level."""
    if not is_language_model(bundle):
        raise MicrobudgetError(f"gguf does not apply to '{bundle.name}', a text classifier: it quantizes language "
                               "models (or one answering a classification task from a prompt).",
                               "Use a causal language model such as smollm2-135m.")
    llamacpp.require()
    source, origin = source_file(bundle, progress)
    progress(0.6, f"Quantizing to {config.level} with llama.cpp")
    target = llamacpp.scratch_file()
    quantize(source, target, config.level)
    model = llamacpp.GgufModel(target, owned=True, labels=len(bundle.labels))  # an LM has none
    types = llamacpp.tensor_types(target)
    progress(1.0, f"Wrote {config.level}")
    note = f"{config.level} by llama.cpp's quantizer from {origin}: tensors stored as " + ", ".join(
        f"{kind} x{count}" for kind, count in types.items()) + "." + fallback_note(target, config.level)
    report = {"tensor_types": types, "bits_per_weight": llamacpp.bits_per_weight(target)}
    return bundle.derived(model, note=note, runtime=LLAMACPP, report=report, **{ID: asdict(config)})


def quantize(source: Path, target: Path, level: str) -> None:
    """llama.cpp's own quantizer (the llama-quantize tool's function), requantizing where the source is quantized."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_{LEVELS[level]}")
    params.allow_requantize = True  # the bundled SmolLM2 is itself Q4_1: no higher-precision source ships offline
    params.nthread = 2
    with llamacpp.output_to_log() as log:
        failed = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if failed:
        raise MicrobudgetError(f"llama.cpp could not quantize {source.name} to {level} (its log: {log}).",
                               "Try another level; the model's file may be damaged.")


def source_file(bundle: ModelBundle, progress: Progress) -> tuple[Path, str]:
    """The GGUF to quantize from, and what it is: the bundle's own file, the bundled GGUF, or a conversion."""
    if bundle.runtime.ID == LLAMACPP:
        return bundle.model.path, f"the {bundle.meta[ID]['level']} file"
    if bundle.meta.get("notes") or bundle.meta.get("structure"):
        raise MicrobudgetError("gguf converts the language model as loaded, not one another technique changed.",
                               "Put gguf first in the chain.")
    if "gguf_file" in bundle.meta:
        return Path(bundle.meta["gguf_file"]), "the bundled Q4_1 file (no higher-precision copy ships offline)"
    return converted(bundle, progress), "its F32 conversion by llama.cpp's convert_hf_to_gguf.py"


def converted(bundle: ModelBundle, progress: Progress) -> Path:
    """The model's folder converted to an F32 GGUF by llama.cpp's converter, once (cached by its weights)."""
    target = home() / "models" / f"gguf-{bundle.runtime.digest(language_model(bundle))[:16]}-f32.gguf"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if not llamacpp.CONVERTER.exists():
        raise MicrobudgetError(f"llama.cpp's converter is missing ({llamacpp.CONVERTER}).", "Run `make setup` again.")
    folder = model_folder(bundle.meta["source"])
    progress(0.1, "Converting to GGUF with llama.cpp's convert_hf_to_gguf.py")

    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")  # an interrupted conversion leaves no entry
    try:
        done = subprocess.run([sys.executable, str(llamacpp.CONVERTER), str(folder), "--outfile", str(partial),
                               "--outtype", "f32"], capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise MicrobudgetError(f"llama.cpp's converter cannot convert '{bundle.name}': {last}",
                                   "Use a causal LM architecture that llama.cpp supports (Llama, Qwen2, ...).")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def model_folder(source: str) -> Path:
    """A local folder of the model's files: the folder given, or the hub snapshot its load already cached."""
    if Path(source).is_dir():
        return Path(source)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(source, local_files_only=not hub_reachable()))


def fallback_note(path: Path, level: str) -> str:
    """Why a K-quant level holds other types: llama.cpp falls back where a row is not whole super-blocks."""
    if "_K" not in level:
        return ""
    widths = llamacpp.header(path).row_widths
    narrow = [width for width in widths if width % K_BLOCK]
    if not narrow:
        return ""
    return (f" {len(narrow)} of {len(widths)} weight matrices have rows of {narrow[0]} values, not a multiple of "
            f"{K_BLOCK} as K-quants need, so llama.cpp stored them in a legacy type instead (Q4_0 / Q5_0 / Q8_0).")
