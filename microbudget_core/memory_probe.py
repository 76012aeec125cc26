"""Child process for measure(): load a saved artifact, run one batch, print peak RSS in MB and load seconds.

The figure is the peak while serving one batch of 32 with the model loaded (the Python and
torch runtime included, identically for every row).

Run as `python -m microbudget_core.memory_probe ARTIFACT_FOLDER INPUTS.npz`.
"""

import ctypes
import gc
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .measure import MeasureConfig
from .saved import load_saved


def main(artifact: str, inputs_file: str) -> None:
    torch.set_num_threads(MeasureConfig.threads)
    start = time.perf_counter()
    bundle = load_saved(Path(artifact))
    load_seconds = time.perf_counter() - start
    bundle.runtime.set_threads(bundle.model, MeasureConfig.threads)
    # Loading can pass through temporary copies (a quantized model is rebuilt from its fp32
    # architecture); free them and restart the peak count, so the figure is what serving holds.
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap pages back to the OS (glibc keeps them)
    Path("/proc/self/clear_refs").write_text("5")
    with np.load(inputs_file, allow_pickle=False) as stored:
        batch = [stored[key].item() if stored[key].dtype.kind == "U" else stored[key] for key in stored.files]
    bundle.logits(batch)
    status = Path("/proc/self/status").read_text()
    peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    print(peak_kb / 1024, load_seconds)


if __name__ == "__main__":
    main(*sys.argv[1:3])
