"""Datasets: the user's CSVs and image zips/folders, hub datasets, bundled sets and the shared split."""

from __future__ import annotations

import dataclasses
import gzip
import io
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from microbudget_core.cli import catalog
from microbudget_core.data import IMAGE_INPUTS, TEXT_INPUTS, DatasetSpec, bundled, files, load_dataset, split
from microbudget_core.data.files import preview_csv, read_csv, read_images
from microbudget_core.support.errors import MicrobudgetError

REVIEWS = [("A warm, funny film", "pos"), ("Dull and far too long", "neg"), ("Loved every minute", "pos"),
           ("A waste of an evening", "neg"), ("Sharp writing, great cast", "pos"), ("Nothing works here", "neg")]


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def write_tree(root: Path, members: dict[str, bytes]) -> Path:
    for name, data in members.items():
        write(root / name, data)
    return root


def csv_text(rows=REVIEWS, header="text,label", sep=",") -> str:
    return header + "\n" + "".join(f'"{text}"{sep}{label}\n' for text, label in rows)


def error_of(call, *args, **kwargs) -> MicrobudgetError:
    with pytest.raises(MicrobudgetError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- CSV: good input ---------------------------------------------------------------------------


def test_csv_named_columns_and_whitespace_stripped(tmp_path):
    path = write(tmp_path / "r.csv", 'id,body,verdict\n1,"  Great fun  ", pos \n2,Boring,neg\n3,Superb,pos\n')
    texts, labels = read_csv(path, text_column="body", label_column="verdict")
    assert texts == ["Great fun", "Boring", "Superb"]
    assert labels == ["pos", "neg", "pos"]


def test_csv_columns_detected_by_name_ignoring_case(tmp_path):
    path = write(tmp_path / "r.csv", csv_text(header="Review,Sentiment"))
    texts, labels = read_csv(path)
    assert texts == [text for text, _ in REVIEWS]
    assert labels == [label for _, label in REVIEWS]


def test_csv_columns_detected_by_content(tmp_path):
    # No recognisable names: the label is the column with few values, the text the longest one.
    rows = [f"{i},{text.replace(',', '')},{label}" for i, (text, label) in enumerate(REVIEWS * 2)]
    path = write(tmp_path / "r.csv", "a,b,c\n" + "\n".join(rows) + "\n")
    texts, labels = read_csv(path)
    assert texts[0] == "A warm funny film"
    assert set(labels) == {"pos", "neg"}
    frame, text_column, label_column = preview_csv(path, rows=3)
    assert (text_column, label_column) == ("b", "c")
    assert list(frame.columns) == ["a", "b", "c"] and len(frame) == 3


@pytest.mark.parametrize("sep", [";", "\t"])
def test_csv_semicolon_and_tab_delimiters(tmp_path, sep):
    path = write(tmp_path / "r.csv", csv_text(header=f"text{sep}label", sep=sep))
    texts, labels = read_csv(path)
    assert texts[0] == "A warm, funny film"  # the comma inside the text is not a delimiter
    assert labels == [label for _, label in REVIEWS]


def test_csv_upload_bytes_and_utf16_with_bom(tmp_path):
    content = csv_text().replace("funny", "drôle")
    assert read_csv(content.encode("utf-8"))[0][0] == "A warm, drôle film"
    assert read_csv(content.encode("utf-16"))[0][0] == "A warm, drôle film"  # encode("utf-16") writes a BOM
    assert read_csv(b"\xef\xbb\xbf" + content.encode())[0][0] == "A warm, drôle film"


def test_csv_rows_without_text_or_label_are_dropped(tmp_path):
    path = write(tmp_path / "r.csv", csv_text() + '"",pos\n"orphan text",\n')
    texts, labels = read_csv(path)
    assert len(texts) == len(labels) == len(REVIEWS)
    assert "orphan text" not in texts


# --- CSV: bad input ----------------------------------------------------------------------------


def test_csv_not_found(tmp_path):
    error = error_of(read_csv, tmp_path / "missing.csv")
    assert "not found" in error.problem and "missing.csv" in error.problem


def test_csv_missing_named_column_lists_the_columns(tmp_path):
    path = write(tmp_path / "r.csv", csv_text())
    error = error_of(read_csv, path, label_column="stars")
    assert "no label column 'stars'" in error.problem
    assert "text, label" in error.problem


@pytest.mark.parametrize("data", [
    b"text,label\ncaf\xe9 \xff\xfa nice,pos\nbad \xc3\x28,neg\n",  # Latin-1 and broken UTF-8, no BOM
    b"\xff\xfe" + b"t\x00,\x00\x00\xd8l\x00",  # a UTF-16 BOM, then a lone surrogate
])
def test_csv_undecodable_bytes(data):
    for encoding in ("utf-8-sig", "utf-16"):
        with pytest.raises(UnicodeDecodeError, match="codec can't decode"):
            data.decode(encoding)
    error = error_of(read_csv, data)
    assert "not UTF-8 text" in error.problem
    assert "Save it as UTF-8" in error.fix


@pytest.mark.parametrize("content", ["", "  \n\n"])
def test_csv_empty_file(tmp_path, content):
    error = error_of(read_csv, write(tmp_path / "e.csv", content))
    assert "is empty" in error.problem


def test_csv_header_only(tmp_path):
    error = error_of(read_csv, write(tmp_path / "h.csv", "text,label\n"))
    assert "header but no rows" in error.problem


def test_csv_ragged_rows(tmp_path):
    error = error_of(read_csv, write(tmp_path / "r.csv", "text,label\na,b\nc,d,e,f\n"))
    assert "could not be parsed as CSV" in error.problem
    assert "same number of fields" in error.fix


def test_csv_single_class_names_it(tmp_path):
    path = write(tmp_path / "r.csv", csv_text([(text, "pos") for text, _ in REVIEWS]))
    error = error_of(read_csv, path)
    assert "same label ('pos'" in error.problem
    assert "at least two classes" in error.fix


def test_csv_undetectable_columns_names_what_exists(tmp_path):
    path = write(tmp_path / "r.csv", "words\n" + "\n".join(text for text, _ in REVIEWS) + "\n")
    error = error_of(read_csv, path)
    assert "label" in error.problem and "Its columns are: words." in error.problem
    assert "Name the text and label columns" in error.fix


def test_csv_nothing_left_after_dropping_empty_rows(tmp_path):
    error = error_of(read_csv, write(tmp_path / "r.csv", 'text,label\n"",pos\n"x",\n'))
    assert "no row with both a text" in error.problem


def test_csv_class_with_one_example_is_caught_by_split(tmp_path):
    path = write(tmp_path / "r.csv", csv_text(REVIEWS + [("A strange one", "meh")]))
    error = error_of(load_dataset, DatasetSpec("csv:" + str(path)))
    assert "class 'meh' has fewer than 2 examples" in error.problem


def test_csv_through_load_dataset(tmp_path):
    path = write(tmp_path / "r.csv", csv_text(REVIEWS * 5))
    dataset = load_dataset(DatasetSpec("csv:" + str(path)))
    assert dataset.modality == TEXT_INPUTS and dataset.label_names == ["neg", "pos"]
    assert len(dataset.train) + len(dataset.eval) == 30


# --- Images ------------------------------------------------------------------------------------


def png(color: str = "red", size: tuple[int, int] = (8, 6), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


PETS = {f"{label}/{i}.png": png(color) for label, color in [("cat", "red"), ("dog", "blue")] for i in range(3)}


def test_zip_two_classes(tmp_path):
    images, labels = read_images(make_zip(tmp_path / "pets.zip", PETS))
    assert sorted(labels) == ["cat"] * 3 + ["dog"] * 3
    assert all(image.shape == (6, 8, 3) and image.dtype == np.uint8 for image in images)
    red = images[labels.index("cat")]
    assert tuple(red[0, 0]) == (255, 0, 0)


def test_zip_upload_bytes_wrapper_folder_and_clutter(tmp_path):
    members = {f"pets/{name}": data for name, data in PETS.items()}
    members |= {"__MACOSX/pets/cat/._1.png": b"junk", "pets/.DS_Store": b"junk", "pets/cat/.hidden.txt": b"x"}
    data = make_zip(tmp_path / "pets.zip", members).read_bytes()
    images, labels = read_images(data)
    assert sorted(set(labels)) == ["cat", "dog"] and len(images) == 6


def test_zip_images_become_rgb_and_huge_ones_shrink(tmp_path):
    members = {"gray/1.png": png(128, (1200, 600), "L"), "gray/2.png": png(0, (4, 4), "L"),
               "alpha/1.png": png((0, 255, 0, 128), (5, 5), "RGBA"), "alpha/2.png": png((0, 0, 0, 0), (5, 5), "RGBA")}
    images, _ = read_images(make_zip(tmp_path / "mixed.zip", members))
    assert {image.shape for image in images} == {(256, 512, 3), (4, 4, 3), (5, 5, 3)}


@pytest.mark.parametrize("bad_member", ["../evil.png", "/tmp/evil.png", "cat/../../evil.png", "C:/evil.png"])
def test_zip_unsafe_member_rejected_and_nothing_written(tmp_path, bad_member):
    path = make_zip(tmp_path / "bad.zip", {**PETS, bad_member: png()})
    assert bad_member in zipfile.ZipFile(path).namelist()  # zipfile stored the name as given
    error = error_of(read_images, path)
    assert repr(bad_member) in error.problem and "rejected for safety" in error.problem
    assert not list(tmp_path.parent.rglob("evil.png"))
    assert not Path("/tmp/evil.png").exists()


def test_zip_with_non_image_file(tmp_path):
    error = error_of(read_images, make_zip(tmp_path / "p.zip", {**PETS, "cat/notes.txt": b"hello"}))
    assert "cat/notes.txt" in error.problem and "Remove non-image files" in error.fix


def test_zip_with_corrupt_image(tmp_path):
    error = error_of(read_images, make_zip(tmp_path / "p.zip", {**PETS, "dog/broken.png": png()[:30]}))
    assert "dog/broken.png" in error.problem


def test_zip_images_at_top_level(tmp_path):
    error = error_of(read_images, make_zip(tmp_path / "p.zip", {"1.png": png(), "2.png": png("blue")}))
    assert "outside any class folder" in error.problem and "one folder per class" in error.fix


@pytest.mark.parametrize("members", [{}, {"__MACOSX/._x.png": b"junk", "cat/": b""}])
def test_zip_without_images(tmp_path, members):
    error = error_of(read_images, make_zip(tmp_path / "empty.zip", members))
    assert "contains no images" in error.problem


def test_zip_too_many_files(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_FILES", 5)
    error = error_of(read_images, make_zip(tmp_path / "p.zip", PETS))
    assert "has 6 files; the limit is 5" in error.problem


def test_zip_too_large_unpacked(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_UNPACKED_BYTES", 100)
    error = error_of(read_images, make_zip(tmp_path / "p.zip", PETS))
    assert "unpacks to" in error.problem


def test_not_a_zip_and_not_found(tmp_path):
    assert "not a valid zip" in error_of(read_images, b"plain text").problem
    assert "not found" in error_of(read_images, tmp_path / "nowhere").problem


def test_folder_of_class_folders_ignores_symlinks_out(tmp_path):
    root = write_tree(tmp_path / "pets", PETS)
    outside = write(tmp_path / "secret.png", png("green"))
    (root / "cat" / "link.png").symlink_to(outside)
    dataset = load_dataset(DatasetSpec("images:" + str(root)))
    assert dataset.modality == IMAGE_INPUTS and dataset.label_names == ["cat", "dog"]
    assert len(dataset.train) + len(dataset.eval) == 6


def test_folder_with_non_image_file(tmp_path):
    root = write_tree(tmp_path / "pets", {**PETS, "cat/readme.md": b"hi"})
    error = error_of(read_images, root)
    assert "readme.md" in error.problem and "Remove non-image files" in error.fix


# --- Hub ---------------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    import datasets  # imported before the variables are set, as in a long-running app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def test_hub_offline_fails_fast_with_clear_message(offline):
    start = time.monotonic()
    error = error_of(load_dataset, DatasetSpec("hf:some/dataset"))
    assert time.monotonic() - start < 10
    assert "'some/dataset'" in error.problem and "offline" in error.problem
    assert "rotten-tomatoes, mnist-5k" in error.fix and "csv:PATH, images:PATH" in error.fix


def test_hub_local_image_folder_uses_class_label_names(offline, tmp_path):
    # A local folder in the Hub's imagefolder layout: loads offline, with ClassLabel and Image features.
    root = write_tree(tmp_path / "hubpets", {f"train/{name}": data for name, data in PETS.items()})
    dataset = load_dataset(DatasetSpec("hf:" + str(root)))
    assert dataset.modality == IMAGE_INPUTS and dataset.label_names == ["cat", "dog"]
    assert dataset.train.inputs[0].shape == (6, 8, 3)


def test_hub_local_csv_detects_text_and_label(offline, tmp_path):
    # Plain string labels (no ClassLabel), and a 'sentence' column next to a numeric one.
    rows = "".join(f'{i},"{text}",{label}\n' for i, (text, label) in enumerate(REVIEWS * 2))
    path = write(tmp_path / "hubtext" / "train.csv", "idx,sentence,label\n" + rows)
    dataset = load_dataset(DatasetSpec("hf:" + str(path.parent)))
    assert dataset.modality == TEXT_INPUTS and dataset.label_names == ["neg", "pos"]
    assert set(dataset.train.inputs) <= {text for text, _ in REVIEWS}


# --- split() and ids ---------------------------------------------------------------------------


def items(n_per_class: dict[str, int]) -> tuple[list[str], list[str]]:
    labels = [label for label, n in n_per_class.items() for _ in range(n)]
    return [f"item-{i}" for i in range(len(labels))], labels


def test_split_is_deterministic_disjoint_and_stratified():
    inputs, labels = items({"a": 300, "b": 100, "c": 50})
    first = split("toy", TEXT_INPUTS, inputs, labels, seed=3)
    again = split("toy", TEXT_INPUTS, inputs, labels, seed=3)
    other = split("toy", TEXT_INPUTS, inputs, labels, seed=4)
    assert first.train.inputs == again.train.inputs and first.eval.inputs == again.eval.inputs
    assert first.eval.inputs != other.eval.inputs
    assert not set(first.train.inputs) & set(first.eval.inputs)
    assert len(first.train) + len(first.eval) == len(inputs) and len(first.eval) == 90
    assert Counter(first.eval.labels.tolist()) == {0: 60, 1: 20, 2: 10}
    assert first.label_names == ["a", "b", "c"]
    index = {name: i for i, name in enumerate(first.label_names)}
    assert all(index[labels[int(x.split("-")[1])]] == y for x, y in zip(first.train.inputs, first.train.labels))


def test_split_calibration_is_a_slice_of_train():
    inputs, labels = items({"a": 400, "b": 400})
    dataset = split("toy", TEXT_INPUTS, inputs, labels, calibration_size=256)
    assert dataset.calibration.inputs == dataset.train.inputs[:256]
    assert (dataset.calibration.labels == dataset.train.labels[:256]).all()


def test_split_orders_numeric_labels_naturally():
    inputs, labels = items({"10": 5, "2": 5, "1": 5})
    assert split("toy", TEXT_INPUTS, inputs, labels).label_names == ["1", "2", "10"]


def test_unknown_dataset_id():
    error = error_of(load_dataset, DatasetSpec("nope"))
    assert "Unknown dataset 'nope'" in error.problem and "csv:PATH" in error.fix


# --- Bundled datasets (read real assets) -------------------------------------------------------


@pytest.mark.slow
def test_rotten_tomatoes():
    dataset = load_dataset(DatasetSpec("rotten-tomatoes"))
    assert dataset.modality == TEXT_INPUTS and dataset.label_names == ["fresh", "rotten"]
    texts = dataset.train.inputs + dataset.eval.inputs
    assert len(texts) == len(set(texts)) > 10_000
    assert not set(dataset.train.inputs) & set(dataset.eval.inputs)


def _idx_file(path, array: np.ndarray) -> None:
    """Write `array` (uint8) as a gzipped IDX file: 0, 0, type 0x08, dimensions, then the sizes big-endian."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def test_fashion_mnist_reads_the_debian_idx_files_and_keeps_500_per_class(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10, dtype=np.uint8), 510)[rng.permutation(5100)]
    images = rng.integers(0, 256, (5100, 28, 28), dtype=np.uint8)
    _idx_file(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _idx_file(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    monkeypatch.setattr(bundled, "FASHION_MNIST", tmp_path)
    inputs, names = bundled.fashion_mnist_5k()
    assert len(inputs) == 5000 and Counter(names) == {name: 500 for name in bundled.FASHION_CLASSES}
    first_bag = int(np.flatnonzero(labels == bundled.FASHION_CLASSES.index("bag"))[0])
    assert np.array_equal(inputs[names.index("bag")], images[first_bag])  # images stay with their labels


def test_fashion_mnist_not_installed_is_unlisted_and_explained(tmp_path, monkeypatch):
    monkeypatch.setattr(bundled, "FASHION_MNIST", tmp_path / "missing")
    monkeypatch.setitem(bundled.BUNDLED, "fashion-mnist-5k", dataclasses.replace(
        bundled.BUNDLED["fashion-mnist-5k"], installed=(tmp_path / "missing").is_dir))
    assert "fashion-mnist-5k" not in bundled.installed_ids()
    assert "fashion-mnist-5k" not in [d["id"] for d in catalog()["datasets"]]
    error = error_of(load_dataset, DatasetSpec("fashion-mnist-5k"))
    assert "not installed" in error.problem and "apt install dataset-fashion-mnist" in error.fix


def test_a_file_that_is_not_idx_is_explained(tmp_path):
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"PK\x03\x04 not idx"))
    assert "not an IDX file" in error_of(bundled.read_idx, tmp_path / "x.gz").problem


@pytest.mark.slow
@pytest.mark.skipif(not bundled.FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_5k():
    dataset = load_dataset(DatasetSpec("fashion-mnist-5k"))
    assert dataset.modality == IMAGE_INPUTS and sorted(dataset.label_names) == sorted(bundled.FASHION_CLASSES)
    assert len(dataset.train) + len(dataset.eval) == 5000 and dataset.train.inputs[0].shape == (28, 28)


@pytest.mark.slow
def test_mnist_5k():
    dataset = load_dataset(DatasetSpec("mnist-5k"))
    assert dataset.modality == IMAGE_INPUTS and dataset.label_names == [str(d) for d in range(10)]
    assert len(dataset.train) + len(dataset.eval) == 5000
    image = dataset.train.inputs[0]
    assert image.shape == (28, 28) and image.dtype == np.uint8


def test_photos_are_composited_on_white_and_padded_to_a_square(tmp_path, monkeypatch):
    folder = tmp_path / "stamps" / "animals" / "birds"
    folder.mkdir(parents=True)
    cut_out = np.zeros((40, 80, 4), dtype=np.uint8)  # a wide red bird on a transparent background
    cut_out[10:30, 20:60] = (255, 0, 0, 255)
    Image.fromarray(cut_out, "RGBA").save(folder / "robin.png")
    Image.fromarray(cut_out, "RGBA").save(folder / "robin_mirror.png")  # a mirrored copy: left out
    (folder / "cartoon").mkdir()
    Image.fromarray(cut_out, "RGBA").save(folder / "cartoon" / "tweety.png")  # a drawing: left out
    monkeypatch.setattr(bundled, "TUXPAINT_STAMPS", tmp_path / "stamps")
    monkeypatch.setattr(bundled, "PHOTO_CLASSES", ["animals/birds"])
    bundled.photos_12.cache_clear()
    try:
        images, labels = bundled.photos_12()
    finally:
        bundled.photos_12.cache_clear()
    assert labels == ["birds"] and images[0].shape == (224, 224, 3) and images[0].dtype == np.uint8
    picture = images[0].astype(int)
    assert (picture[:40] >= 250).all() and (picture[-40:] >= 250).all()  # padding above and below: white
    assert picture[112, 112, 0] > 200 and picture[112, 112, 1] < 60  # the bird, in the middle


def test_photos_not_installed_are_unlisted_and_explained(tmp_path, monkeypatch):
    monkeypatch.setitem(bundled.BUNDLED, "photos-12", dataclasses.replace(
        bundled.BUNDLED["photos-12"], installed=(tmp_path / "missing").is_dir))
    monkeypatch.setattr(bundled, "TUXPAINT_STAMPS", tmp_path / "missing")
    bundled.photos_12.cache_clear()
    assert "photos-12" not in [d["id"] for d in catalog()["datasets"]]
    error = error_of(load_dataset, DatasetSpec("photos-12"))
    assert "not installed" in error.problem and "apt install tuxpaint-stamps-default" in error.fix


@pytest.mark.skipif(not bundled.TUXPAINT_STAMPS.is_dir(), reason="Debian's tuxpaint-stamps-default is not installed")
def test_photos_12_has_its_257_photos_in_12_classes_split_by_class():
    dataset = load_dataset(DatasetSpec("photos-12"))
    counts = np.bincount(np.concatenate([dataset.train.labels, dataset.eval.labels]))
    assert len(dataset.label_names) == 12 and counts.sum() == 257
    assert dict(zip(dataset.label_names, counts))["mammals"] == 65 and counts.min() == 9
    assert np.all(np.bincount(dataset.eval.labels, minlength=12) >= 1)  # every class is evaluated
    assert dataset.image_size is None  # each network runs at its own resolution
