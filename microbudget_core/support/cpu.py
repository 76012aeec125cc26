"""What this CPU can do fast: the flags that decide which int8 / half-precision kernels exist."""

import os
import platform
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The kernel-reported CPU flags (empty where /proc/cpuinfo is missing)."""
    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.exists() else ""
    line = next((l for l in text.splitlines() if l.startswith(("flags", "Features"))), "")
    return frozenset(line.partition(":")[2].split())


# The flags that change which kernels run (and so every speed figure): said beside each benchmark table.
DECISIVE_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_int8", "amx_bf16")


def describe() -> str:
    """This CPU in one line: its model name, core count and the kernel-deciding flags it has."""
    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.exists() else ""
    name = next((l.partition(":")[2].strip() for l in text.splitlines() if l.startswith("model name")),
                platform.processor() or platform.machine())
    flags = [flag for flag in DECISIVE_FLAGS if flag in cpu_flags()]
    return f"{name}, {os.cpu_count()} cores, {platform.machine()} ({', '.join(flags) or 'no AVX2'})"


def is_arm() -> bool:
    return platform.machine().lower() in ("arm64", "aarch64")


def has_vnni() -> bool:
    """True where int8 dot products have VNNI instructions (no u8 x s8 saturation on x86)."""
    return is_arm() or bool({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())
