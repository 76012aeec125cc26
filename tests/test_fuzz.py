"""Fuzzing the readers of user input: the CSV reader, the image-zip reader and the settings parser.

Whatever the bytes, encodings, delimiters, member names or setting values, each either returns a usable
result or raises one MicrobudgetError; any other exception escaping is a bug in the reader.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import struct
import typing
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from microbudget_core import techniques
from microbudget_core.cli import _assign_settings
from microbudget_core.data.files import MAX_SIDE, preview_csv, read_csv, read_images
from microbudget_core.support.errors import MicrobudgetError

# Expected along the way: zipfile warns as it writes duplicate names, PIL as it reads a damaged TIFF.
pytestmark = [pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning"),
              pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")]

# Reproducible in CI: the same examples every run, nothing remembered between runs.
FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def outcome(call, *args, **kwargs):
    """The call's result, or None when it raised a MicrobudgetError; any other exception fails the test."""
    try:
        return call(*args, **kwargs)
    except MicrobudgetError as error:
        assert error.problem, "a MicrobudgetError must say what was wrong"
        return None


# --- CSV ---------------------------------------------------------------------------------------

HEADER_NAMES = ["text", "label", "Text", "text ", " label ", "label ", "LABEL", "class", "review", "sentiment", "a",
                "a ", "a.1", "", " ", "Unnamed: 0", "ünï", "名前", '"q"']
column_names = st.sampled_from(HEADER_NAMES) | st.text(max_size=6)
cells = (st.sampled_from(["", " ", "pos", "neg", "x", "1", "NA", "nan", "null", '"', "a,b", "a;b",
                          "a\tb", "a|b", "two\nlines", "\r", "é", "\ufeff", "\x00"])
         | st.text(max_size=12)
         | st.integers(60_000, 70_000).map(lambda n: "w" * n))  # longer than the sniffed sample
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "latin-1", "cp1252"]
BOMS = [b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"]


@st.composite
def csv_files(draw):
    """(bytes, header) of a CSV as a user might upload it: random header and rows, delimiter, quoting, line ends
    and encoding."""
    # Often the usual columns among others, so that many of the files are datasets.
    usual = draw(st.sampled_from([[], ["text", "label"], ["review", "sentiment"], ["text"]]))
    header = draw(st.permutations(usual + draw(st.lists(column_names, min_size=0 if usual else 1, max_size=3))))
    if draw(st.booleans()):  # a duplicate name, exactly or but for a space
        header.append(draw(st.sampled_from(header)) + draw(st.sampled_from(["", " "])))
    width = len(header)
    count = draw(st.sampled_from([0, 1, 2, 3, 4, 6, 8]))  # 0: the header alone
    # Now and then a ragged row (a cell short or over), as in hand-edited files.
    row_widths = st.sampled_from([width] * 8 + [width - 1, width + 1])
    rows = [draw(st.lists(cells, min_size=size, max_size=size)) for size in draw(
        st.lists(row_widths, min_size=count, max_size=count))]
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    lines = draw(st.sampled_from(["\n", "\r\n"]))
    out = io.StringIO()
    if draw(st.booleans()):
        quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
        writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator=lines)
        writer.writerows([header, *rows])
    else:  # joined by hand, with no quoting at all
        out.write("".join(delimiter.join(row) + lines for row in [header, *rows]))
    encoding = draw(st.sampled_from(["utf-8"] * 4 + ENCODINGS))  # most uploads are UTF-8
    stray_bom = draw(st.sampled_from([b""] * 12 + BOMS))  # sometimes a BOM of another encoding, or two
    return stray_bom + out.getvalue().encode(encoding, errors="replace"), header


column_choice = st.none() | column_names


def check_dataset(result):
    """A dataset read_csv returned: aligned, non-empty string texts and labels, at least two classes."""
    if result is None:
        return
    texts, labels = result
    assert len(texts) == len(labels) > 0
    assert all(isinstance(value, str) and value.strip() for value in texts + labels)
    assert len(set(labels)) >= 2


def check_preview(result):
    """A preview_csv result: at most five rows, and detected columns that exist and differ."""
    if result is None:
        return
    frame, text_column, label_column = result
    assert len(frame) <= 5
    assert text_column is None or text_column in frame.columns
    assert label_column is None or label_column in frame.columns
    assert text_column is None or text_column != label_column


@settings(FUZZ, max_examples=300)
@given(data=st.binary(max_size=2000), text_column=column_choice, label_column=column_choice)
# Regressions, once AttributeError and ValueError: names equal but for spaces selected two columns.
@example(data=b"text,label,label \nhello there,pos,a\nbye now,neg,b\n", text_column=None, label_column=None)
@example(data=b"text,kind,kind \nhello,a,x\nbye,b,y\n", text_column=None, label_column=None)
# Regression, once pandas' EmptyDataError: a second BOM, all pandas saw.
@example(data=b"\xef\xbb\xbf\xef\xbb\xbf\n", text_column=None, label_column=None)
def test_csv_from_arbitrary_bytes(data, text_column, label_column):
    """Any bytes at all: a dataset or one MicrobudgetError."""
    check_dataset(outcome(read_csv, data, text_column, label_column))
    check_preview(outcome(preview_csv, data))


@settings(FUZZ, max_examples=800)
@given(file=csv_files(), choose=st.data())
def test_csv_from_generated_files(file, choose):
    """CSV-shaped uploads in any encoding and dialect, columns named or not: a dataset or one MicrobudgetError."""
    data, header = file
    text_column, label_column = (choose.draw(column_choice | st.sampled_from(header)) for _ in range(2))
    check_dataset(outcome(read_csv, data, text_column, label_column))
    check_preview(outcome(preview_csv, data))


# --- Image zips --------------------------------------------------------------------------------

FORMATS = {"PNG": ".png", "GIF": ".gif", "BMP": ".bmp", "JPEG": ".jpg", "TIFF": ".tif", "WEBP": ".webp"}


@st.composite
def image_files(draw):
    """(bytes, extension) of a tiny valid image in some format and mode."""
    image_format = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(["RGB", "L"] if image_format == "JPEG" else ["RGB", "RGBA", "L", "P", "1"]))
    size = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    buffer = io.BytesIO()
    Image.new(mode, size, draw(st.integers(0, 255))).save(buffer, image_format)
    return buffer.getvalue(), FORMATS[image_format]


@st.composite
def damaged(draw, files):
    """A file cut short or with bytes overwritten."""
    data = draw(files)
    cut = draw(st.integers(0, len(data)))
    if draw(st.booleans()):
        return data[:cut]
    return data[:cut] + draw(st.binary(min_size=1, max_size=8)) + data[cut + 1:]


members = st.one_of(
    image_files(),
    image_files(),
    st.tuples(damaged(image_files().map(lambda file: file[0])), st.sampled_from(sorted(FORMATS.values()))),
    st.tuples(st.binary(max_size=64), st.sampled_from([".png", ".jpg", ".txt", "", ".PNG"])),
)
# No NUL: zipfile cuts names there (a name cut to nothing is a regression example below).
names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=6)
folders = names | st.sampled_from(["cat", "dog", "Ünï", "a b", "pets", ".hidden", "__MACOSX", "..", ".", "C:", "a\\b"])


@st.composite
def member_names(draw, extension):
    """Where a member sits: often a plain class folder, else nesting, none or a hostile path; with a random stem."""
    path = draw(st.sampled_from([["cat"], ["dog"]]) | st.lists(folders, max_size=3))
    stem = draw(st.sampled_from(["1", "2", "img", "Thumbs.db", "é"]) | names)
    separator = draw(st.sampled_from(["/", "\\"]))
    prefix = draw(st.sampled_from([""] * 20 + ["/", "\\", "../", "./", "C:/"]))  # one hostile name spoils a zip
    return prefix + separator.join([*path, stem + extension])


@st.composite
def zip_files(draw):
    """A zip built in memory: images, junk and empty folders under random names."""
    buffer = io.BytesIO()
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for data, extension in draw(st.lists(members, max_size=6)):
            archive.writestr(draw(member_names(extension)), data)
        for folder in draw(st.lists(folders, max_size=2)):
            archive.writestr(folder + "/", b"")
    return buffer.getvalue()


def check_images(result):
    """What read_images returned: one label string per RGB uint8 image, none larger than MAX_SIDE."""
    if result is None:
        return
    images, labels = result
    assert len(images) == len(labels) > 0
    assert all(isinstance(label, str) and label for label in labels)
    for image in images:
        assert isinstance(image, np.ndarray) and image.dtype == np.uint8
        assert image.ndim == 3 and image.shape[2] == 3 and max(image.shape[:2]) <= MAX_SIDE


@settings(FUZZ, max_examples=500)
@given(data=zip_files())
def test_images_from_generated_zips(data):
    """Zips of any layout and content: images and labels, or one MicrobudgetError."""
    check_images(outcome(read_images, data))


def zip_of(*members):
    """A zip of (name, bytes) members; a name may be a ZipInfo, for a name zipfile would not write."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def claiming_method(data, method):
    """The zip with its first member's compression method, as its central directory gives it, set to `method`."""
    data = bytearray(data)
    struct.pack_into("<H", data, data.index(b"PK\x01\x02") + 10, method)
    return bytes(data)


def tiny_png():
    """A valid 2x2 PNG."""
    image = io.BytesIO()
    Image.new("RGB", (2, 2)).save(image, "PNG")
    return image.getvalue()


PNG = tiny_png()
GOOD_ZIP = zip_of(("cat/1.png", PNG), ("dog/2.png", PNG))
NAMELESS = zipfile.ZipInfo("cat/1.png")
NAMELESS.filename = "\x00.png"  # zipfile reads the name back cut at the NUL: ""
BAD_LZMA = b"\x00\x00\x05\x00" + b"\xff" * 40  # an LZMA header whose properties are out of range


@settings(FUZZ, max_examples=400)
@given(data=st.binary(max_size=1000) | damaged(zip_files())
       | st.builds(claiming_method, zip_files().filter(lambda data: b"PK\x01\x02" in data),
                   st.sampled_from([1, 6, 9, 12, 14, 99])))  # shrunk, bzip2, LZMA, unknown: damaged method bytes
# Regressions, once zipfile's BadZipFile and ValueError escaping from reading a member: a damaged local
# header, and offsets pointing before the start.
@example(data=b"XXXX" + GOOD_ZIP[4:])
@example(data=GOOD_ZIP[30:])
# Regression, once lzma.LZMAError escaping from reading a member whose method byte says LZMA.
@example(data=claiming_method(zip_of(("cat/1.png", BAD_LZMA), ("dog/2.png", PNG)), zipfile.ZIP_LZMA))
# Regression, once IndexError: a member whose name is empty.
@example(data=zip_of((NAMELESS, PNG)))
# Regression, once UnicodeDecodeError from opening the zip: a name flagged UTF-8 that is not.
@example(data=zip_of(("cat/é.png", PNG), ("dog/2.png", PNG)).replace("é".encode(), b"\xff\xff"))
def test_images_from_bytes_that_are_not_a_zip(data):
    """Random bytes, zips cut short or overwritten, wrong compression methods: images and labels, or one error."""
    check_images(outcome(read_images, data))


# --- Settings ----------------------------------------------------------------------------------

TECHNIQUES = sorted(techniques.registry())
FIELDS = {tid: {f.name: f for f in dataclasses.fields(techniques.get(tid).Config)} for tid in TECHNIQUES}
FIELD_NAMES = sorted({name for fields in FIELDS.values() for name in fields})
CHOICES = sorted({str(choice) for fields in FIELDS.values() for f in fields.values()
                  for choice in f.metadata.get("choices", ())})

keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=8)
setting_texts = (st.sampled_from(["0", "1", "-1", "3", "-3", "1.5", "-0.5", "1e3", "1e309", "-1e309", "9" * 5000,
                                  "nan", "NaN", "inf", "-inf", "", " ", " 2 ", "true", "False", "YES", "no",
                                  "0x10", "1_000", "١٢", "²", "½", "None", *CHOICES])
                 | st.integers().map(str) | st.floats().map(str) | st.text(max_size=10))
# The app passes its widgets' values as they are, not as strings.
widget_values = st.integers() | st.floats() | st.booleans()
setting_values = setting_texts | widget_values


@settings(FUZZ, max_examples=1000)
@given(technique_id=st.sampled_from(TECHNIQUES),
       chosen=st.dictionaries(keys, setting_values, max_size=4))
@example(technique_id="distill", chosen={"epochs": float("inf")})  # regression, once OverflowError from int(inf)
def test_make_config_with_random_settings(technique_id, chosen):
    """Any keys and values for any technique: a Config holding values of the declared types, or one error."""
    technique = techniques.get(technique_id)
    config = outcome(techniques.make_config, technique, chosen)
    if config is None:
        return
    assert isinstance(config, technique.Config)
    hints = typing.get_type_hints(technique.Config)
    for key in chosen:
        assert type(getattr(config, key)) is hints[key]


@st.composite
def set_options(draw):
    """One --set argument: KEY=VALUE or TECHNIQUE.KEY=VALUE, sometimes malformed."""
    target = draw(st.just("") | st.sampled_from([tid + "." for tid in TECHNIQUES]) | st.text(max_size=4))
    separator = draw(st.sampled_from(["=", "=", "=", "", "==", " = "]))
    return target + draw(keys) + separator + draw(setting_texts)


@settings(FUZZ, max_examples=600)
@given(technique_ids=st.lists(st.sampled_from(TECHNIQUES) | st.text(max_size=4), max_size=3),
       options=st.lists(set_options(), max_size=4))
def test_cli_set_routing(technique_ids, options):
    """--set routed to the chosen steps and parsed as the CLI does: Configs for the steps, or one error."""
    def resolve():
        steps = _assign_settings(technique_ids, options)
        assert [tid for tid, _ in steps] == technique_ids
        assert sum(len(chosen) for _, chosen in steps) <= len(options)
        return [techniques.make_config(techniques.get(tid), chosen) for tid, chosen in steps]

    configs = outcome(resolve)
    assert configs is None or len(configs) == len(technique_ids)
