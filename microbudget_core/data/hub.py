"""Hugging Face Hub datasets (`hf:NAME` or `hf:NAME:CONFIG`); needs a network unless cached."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from ..support.errors import MicrobudgetError
from ..support.network import hub_reachable
from .dataset import IMAGE_INPUTS, TEXT_INPUTS
from .bundled import installed_ids
from .files import LABEL_NAMES, TEXT_NAMES, find_named, image_to_array

MAX_ROWS = 20_000  # plenty to train and measure on; bounds memory and decoding time


def read_hub_dataset(name: str, text_column: str | None,
                     label_column: str | None) -> tuple[str, list[Any], list[str]]:
    """(modality, inputs, label strings) from the train split of a hub dataset, at most MAX_ROWS rows."""
    from datasets import ClassLabel, Image

    rows = _load_train(name)
    if len(rows) > MAX_ROWS:
        rows = rows.shuffle(seed=0).select(range(MAX_ROWS))
    features = rows.features
    label_column = _require(label_column or _label_column(features), "label", features, name)
    input_column = _require(text_column or _input_column(features, label_column), "text or image", features, name)
    is_image = isinstance(features[input_column], Image)
    class_label = features[label_column] if isinstance(features[label_column], ClassLabel) else None
    inputs, labels = [], []
    for row in rows.select_columns([input_column, label_column]):
        value, label = row[input_column], row[label_column]
        if class_label is not None:
            label = class_label.int2str(label) if label is not None and label >= 0 else None  # -1: unlabelled
        text = None if is_image or value is None else str(value).strip()
        if label is None or value is None or text == "":
            continue
        inputs.append(image_to_array(value) if is_image else text)
        labels.append(str(label))
    return (IMAGE_INPUTS if is_image else TEXT_INPUTS), inputs, labels


def _require(column: str | None, role: str, features: dict[str, Any], name: str) -> str:
    """The column, if the dataset has it; else an error that lists the columns it does have."""
    if column in features:
        return column
    problem = f"no {role} column '{column}'" if column else f"no column that looks like the {role}"
    raise MicrobudgetError(f"Hugging Face dataset '{name}' has {problem}. Its columns are: {', '.join(features)}.",
                           f"Name one of those as the {role} column.")


def _load_train(name: str) -> Any:
    """The train split; a clear error when the hub cannot be reached or has no such dataset."""
    import datasets
    from datasets.exceptions import DatasetsError

    path, _, config = name.partition(":")
    try:
        with _offline_unless_reachable():
            return datasets.load_dataset(path, config or None, split="train")
    except OSError as error:  # no network, offline mode, unknown or private dataset
        raise MicrobudgetError(
            f"Could not load the Hugging Face dataset '{name}': the Hub is unreachable (offline?) "
            "or the dataset does not exist.",
            f"Connect to the network, check the name, or use an offline dataset: {', '.join(installed_ids())}, "
            "csv:PATH, images:PATH.") from error
    except (ValueError, DatasetsError) as error:  # e.g. a config is needed, no train split
        raise MicrobudgetError(f"Could not load the Hugging Face dataset '{name}': {error}",
                               "Pick a config with hf:NAME:CONFIG, or use a dataset that has a train split.") from error


@contextmanager
def _offline_unless_reachable() -> Iterator[None]:
    """Offline mode while the Hub is unreachable: the local cache still serves, a miss fails at once.

    Both libraries read HF_HUB_OFFLINE once at import; without this, a lookup with no network
    would sit through about 25 s of connection retries before failing.
    """
    import datasets
    from huggingface_hub import constants

    if hub_reachable():
        yield
        return
    saved = datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved


def _label_column(features: dict[str, Any]) -> str | None:
    """A ClassLabel column, else one named like a label."""
    from datasets import ClassLabel

    class_labels = [c for c, feature in features.items() if isinstance(feature, ClassLabel)]
    return class_labels[0] if class_labels else find_named(list(features), LABEL_NAMES)


def _input_column(features: dict[str, Any], label_column: str) -> str | None:
    """An image column, else a text column named like one, else the first string column."""
    from datasets import Image, Value

    others = {c: feature for c, feature in features.items() if c != label_column}
    images = [c for c, feature in others.items() if isinstance(feature, Image)]
    if images:
        return images[0]
    strings = [c for c, feature in others.items()
               if isinstance(feature, Value) and feature.dtype in ("string", "large_string")]
    return find_named(strings, TEXT_NAMES) or (strings[0] if strings else None)
