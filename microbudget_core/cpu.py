"""What this CPU can do fast: the flags that decide which int8 / half-precision kernels exist."""

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


def is_arm() -> bool:
    return platform.machine().lower() in ("arm64", "aarch64")


def has_vnni() -> bool:
    """True where int8 dot products have VNNI instructions (no u8 x s8 saturation on x86)."""
    return is_arm() or bool({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())
