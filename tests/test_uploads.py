"""Uploads kept under the app's data folder, and the dataset preview shown before training."""

from __future__ import annotations

import pytest

from microbudget_core.data import DatasetSpec, load_dataset
from microbudget_core.data.preview import preview
from microbudget_core.data.uploads import save_upload
from microbudget_core.support.errors import MicrobudgetError
from microbudget_core.support.paths import home
from test_data import PETS, make_zip, png


def test_a_csv_upload_keeps_the_chosen_columns_under_the_data_folder():
    content = b"id;review;stars\n" + b"".join(f"{i};text number {i};{'hi' if i % 2 else 'lo'}\n".encode()
                                              for i in range(20))
    dataset_id = save_upload("../../etc/reviews.csv", content, text_column="review", label_column="stars")
    kind, _, path = dataset_id.partition(":")
    assert kind == "csv" and path.startswith(str(home() / "uploads")) and ".." not in path
    dataset = load_dataset(DatasetSpec(dataset_id))
    assert sorted(dataset.label_names) == ["hi", "lo"] and dataset.train.inputs[0].startswith("text number")
    assert save_upload("again.csv", content, "review", "stars") == dataset_id  # same content, same file


def test_a_zip_upload_is_validated_before_it_is_kept(tmp_path):
    good = make_zip(tmp_path / "pets.zip", PETS).read_bytes()
    assert save_upload("pets.zip", good).startswith("images:")
    bad = make_zip(tmp_path / "bad.zip", {**PETS, "../evil.png": png()}).read_bytes()
    with pytest.raises(MicrobudgetError, match=r"rejected for safety: member '\.\./evil\.png'"):
        save_upload("bad.zip", bad)
    assert len(list((home() / "uploads").iterdir())) == 1  # the bad zip was not kept


@pytest.mark.parametrize("name, content, message", [
    ("notes.pdf", b"%PDF", "neither a CSV nor a zip"),
    ("one.csv", b"text,label\na,x\nb,x\nc,x\n", "same label"),
])
def test_bad_uploads_say_what_was_wrong(name, content, message):
    with pytest.raises(MicrobudgetError, match=message):
        save_upload(name, content)


def test_an_oversized_upload_is_refused(monkeypatch):
    monkeypatch.setattr("microbudget_core.data.uploads.MAX_UPLOAD_BYTES", 10)
    with pytest.raises(MicrobudgetError, match="over the 0 MB upload limit"):
        save_upload("big.csv", b"text,label\n" + b"x,y\n" * 10)


def test_preview_shows_examples_of_every_class(sentiment_csv):
    shown = preview(f"csv:{sentiment_csv}", per_class=3)
    assert shown.modality == "text" and set(shown.examples) == {"neg", "pos"}
    assert all(len(examples) == 3 for examples in shown.examples.values())
    assert sum(shown.counts.values()) == 240
