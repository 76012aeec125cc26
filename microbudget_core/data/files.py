"""The user's own data: a CSV of text + label, or images in one folder per class (zip or folder)."""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import io
import lzma
import re
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, NamedTuple

import numpy as np
import pandas as pd
from PIL import Image

from ..support.errors import MicrobudgetError

LABEL_NAMES = ("label", "labels", "class", "category", "sentiment", "target", "y")
TEXT_NAMES = ("text", "sentence", "review", "content", "document", "comment", "message", "body")
MAX_LABEL_VALUES = 50  # a column with more distinct values is not taken for a label column
SNIFF_BYTES = 64 * 1024

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_FILES = 50_000
MAX_UNPACKED_BYTES = 2 * 1024**3
MAX_SIDE = 512
# Files that operating systems drop into folders and zips; never the user's data.
CLUTTER = {"__MACOSX", "Thumbs.db", "desktop.ini"}

UPLOAD = "uploaded CSV file"
COLUMNS_FIX = "Name the text and label columns explicitly, or rename them to 'text' and 'label'."


# --- CSV ---------------------------------------------------------------------------------------


def read_csv(source: str | Path | bytes, text_column: str | None = None,
             label_column: str | None = None) -> tuple[list[str], list[str]]:
    """Texts and label strings from a CSV path or uploaded bytes; columns auto-detected when None."""
    frame, name = _read_frame(source)
    text_column, label_column = _resolve_columns(frame, name, text_column, label_column)
    texts = frame[text_column].str.strip()
    labels = frame[label_column].str.strip()
    # Rows without a text or a label cannot be trained on or scored.
    keep = (texts != "") & (labels != "")
    if not keep.any():
        raise MicrobudgetError(
            f"The {name} has no row with both a text (column '{text_column}') and a label (column '{label_column}').",
            "Fill in those columns, or name the right ones.")
    texts, labels = texts[keep], labels[keep]
    if labels.nunique() < 2:
        raise MicrobudgetError(
            f"Every row of the {name} has the same label ({labels.iloc[0]!r} in column '{label_column}').",
            "A classifier needs at least two classes: add rows of another class, or name the right label column.")
    return texts.tolist(), labels.tolist()


def preview_csv(source: str | Path | bytes, rows: int = 5) -> tuple[pd.DataFrame, str | None, str | None]:
    """The first rows and the auto-detected (text column, label column); either may be None."""
    frame, _ = _read_frame(source)
    text_column, label_column = _detect_columns(frame)
    return frame.head(rows), text_column, label_column


def _read_frame(source: str | Path | bytes) -> tuple[pd.DataFrame, str]:
    """The CSV as a frame of strings, and the name to use for it in messages."""
    if isinstance(source, bytes):
        data, name = source, UPLOAD
    else:
        path = Path(source)
        name = f"CSV file {path}"
        if not path.is_file():
            raise MicrobudgetError(f"CSV file not found: {path}.", "Check the path (it must be a file, not a folder).")
        data = path.read_bytes()
    text = _decode(data, name)
    if not text.strip():
        raise MicrobudgetError(f"The {name} is empty.", "Use a CSV with a header row and one row per example.")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=_sniff_delimiter(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as error:  # e.g. nothing but a second BOM, which pandas drops
        raise MicrobudgetError(f"The {name} is empty.",
                               "Use a CSV with a header row and one row per example.") from error
    except pd.errors.ParserError as error:
        raise MicrobudgetError(
            f"The {name} could not be parsed as CSV ({error}).",
            "Make every row have the same number of fields, and quote texts that contain the delimiter.") from error
    frame.columns = [str(column).strip() for column in frame.columns]
    # pandas renames repeated names ("a", "a.1") but not ones that differ only in spaces ("label", "label "),
    # which are the same once stripped; a repeated name would select two columns instead of one.
    repeated = frame.columns[frame.columns.duplicated()]
    if len(repeated):
        raise MicrobudgetError(f"The {name} has two columns named '{repeated[0]}' (spaces around names are ignored).",
                               "Rename one of them.")
    if frame.empty:
        raise MicrobudgetError(f"The {name} has a header but no rows.", "Add one row per example below the header.")
    return frame, name


def _decode(data: bytes, name: str) -> str:
    """UTF-8 (with or without a BOM), or UTF-16 when a BOM says so."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    raise MicrobudgetError(f"The {name} is not UTF-8 text.",
                           "Save it as UTF-8 (in Excel: Save As > 'CSV UTF-8') and try again.")


def _sniff_delimiter(text: str) -> str:
    """Comma, semicolon or tab, guessed from the first complete lines; comma when unsure."""
    sample = text[:SNIFF_BYTES]
    if len(text) > SNIFF_BYTES and "\n" in sample:
        sample = sample[:sample.rindex("\n")]  # a cut-off last line would mislead the sniffer
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _resolve_columns(frame: pd.DataFrame, name: str, text_column: str | None,
                     label_column: str | None) -> tuple[str, str]:
    """Check the named columns exist, detect the others; a clear error when that fails."""
    columns = ", ".join(frame.columns)
    for role, column in (("text", text_column), ("label", label_column)):
        if column is not None and column not in frame.columns:
            raise MicrobudgetError(f"The {name} has no {role} column '{column}'. Its columns are: {columns}.",
                                   f"Name one of those as the {role} column.")
    if text_column is not None and text_column == label_column:
        raise MicrobudgetError(f"Column '{text_column}' was named as both the text and the label column.",
                               "Name two different columns.")
    text_column, label_column = _detect_columns(frame, text_column, label_column)
    if text_column is None or label_column is None:
        missing = " and ".join(role for role, column in (("text", text_column), ("label", label_column))
                               if column is None)
        raise MicrobudgetError(f"Could not tell which column of the {name} holds the {missing}. "
                               f"Its columns are: {columns}.", COLUMNS_FIX)
    return text_column, label_column


def _detect_columns(frame: pd.DataFrame, text_column: str | None = None,
                    label_column: str | None = None) -> tuple[str | None, str | None]:
    """Fill in whichever column is None: by name first, then by content."""
    columns = list(frame.columns)
    if text_column is None:
        text_column = find_named([c for c in columns if c != label_column], TEXT_NAMES)
    if label_column is None:
        others = [c for c in columns if c != text_column]
        label_column = find_named(others, LABEL_NAMES) or _fewest_values(frame, others)
    if text_column is None:
        others = [c for c in columns if c != label_column]
        text_column = max(others, key=lambda c: frame[c].str.len().mean(), default=None)
    return text_column, label_column


def find_named(columns: list[str], names: tuple[str, ...]) -> str | None:
    """The first column whose name is one of `names`, ignoring case."""
    return next((column for column in columns if column.strip().lower() in names), None)


def _fewest_values(frame: pd.DataFrame, columns: list[str]) -> str | None:
    """The column that looks most like a label: few distinct values compared with the rows."""
    counts = {column: frame[column].nunique() for column in columns}
    candidates = [c for c in columns if 2 <= counts[c] <= MAX_LABEL_VALUES and counts[c] < len(frame) / 2]
    return min(candidates, key=counts.get, default=None)


# --- Images ------------------------------------------------------------------------------------


class Entry(NamedTuple):
    name: str  # the path as the user sees it, for messages
    parts: tuple[str, ...]  # path components below the zip root or folder
    read: Callable[[], bytes]
    size: int


def read_images(source: str | Path | bytes) -> tuple[list[np.ndarray], list[str]]:
    """RGB uint8 images and their class-folder names, from a zip (path or upload bytes) or a folder."""
    with archive_entries(source, "Image", "Upload a .zip with one folder per class, e.g. cat/1.png, dog/2.jpg.") as (
            entries, name):
        return _load_entries(entries, name)


@contextlib.contextmanager
def archive_entries(source: str | Path | bytes, what: str, layout: str) -> Iterator[tuple[list[Entry], str]]:
    """The files of a zip (a path or upload bytes) or a folder, and a name for messages; readable inside the block.

    Every zip member name is checked first and nothing is extracted to disk, so a hostile member name can never
    write anywhere. `what` ("Image", "Audio") and `layout` (the expected layout) word the messages.
    """
    if isinstance(source, bytes):
        file, name = io.BytesIO(source), "uploaded zip"
    else:
        path = Path(source)
        if path.is_dir():
            yield _folder_entries(path), f"folder {path}"
            return
        if not path.is_file():
            raise MicrobudgetError(f"{what} zip or folder not found: {path}.", "Check the path.")
        file, name = path, f"zip {path}"
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, ValueError, NotImplementedError) as error:  # damaged bytes, see DAMAGED_ZIP
        raise MicrobudgetError(f"The {name} is not a valid zip file.", layout) from error
    with archive:
        infos = archive.infolist()
        for info in infos:
            _check_member_name(info.filename, name)
        # Reading a member never yields more than its declared size, so the size limit checked on the
        # declared sizes also holds for what is actually decompressed.
        yield [Entry(info.filename, PurePosixPath(info.filename).parts,
                     functools.partial(_read_member, archive, info, name), info.file_size)
               for info in infos if not info.is_dir()], name


# What zipfile raises, besides BadZipFile, for damaged bytes: offsets before the start or a name that is not
# the UTF-8 it claims (ValueError), cut-off or corrupt compressed data (EOFError; zlib.error, OSError and
# LZMAError from deflate, bzip2 and LZMA), an unknown compression method or zip version (NotImplementedError)
# or a password (RuntimeError).
DAMAGED_ZIP = (zipfile.BadZipFile, ValueError, EOFError, zlib.error, OSError, lzma.LZMAError, NotImplementedError,
               RuntimeError)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    """One member's bytes; a clear error naming it when the zip's data for it is damaged."""
    try:
        return archive.read(info)
    except DAMAGED_ZIP as error:
        raise MicrobudgetError(f"Could not unpack {info.filename} from the {name}: the zip is damaged, "
                               f"password-protected or uses an unsupported compression ({error}).",
                               "Zip the folders again without a password and upload the new zip.") from error


def _check_member_name(member: str, name: str) -> None:
    """Reject names that would land outside the target folder if anyone ever extracted the zip, or name no file."""
    # A file named "", "." or "./." has no path components: only a damaged or hand-made zip has one,
    # and "" even breaks zipfile's own is_dir().
    if not member.endswith("/") and not PurePosixPath(member).parts:
        raise MicrobudgetError(f"The {name} has a member with no file name ({member!r}): the zip is damaged.",
                               "Zip the class folders again (e.g. cat/1.png, dog/2.jpg) and upload the new zip.")
    parts = re.split(r"[\\/]", member)
    if member.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", member) or ".." in parts:
        raise MicrobudgetError(
            f"The {name} was rejected for safety: member {member!r} has an absolute path, a drive letter "
            "or a '..' component, which could write outside the folder it is unpacked into.",
            "Zip the class folders themselves (e.g. cat/1.png, dog/2.jpg) with no absolute or '..' paths.")


def _folder_entries(root: Path) -> list[Entry]:
    """Every file under root, skipping symlinks that lead outside it."""
    inside = root.resolve()
    entries = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.resolve().is_relative_to(inside):
            relative = path.relative_to(root)
            entries.append(Entry(str(relative), relative.parts, path.read_bytes, path.stat().st_size))
    return entries


def within_limits(entries: list[Entry], name: str, what: str) -> list[Entry]:
    """The entries without system clutter, refused when there are too many or they unpack too large."""
    entries = [e for e in entries if not any(p.startswith(".") or p in CLUTTER for p in e.parts)]
    if len(entries) > MAX_FILES:
        raise MicrobudgetError(f"The {name} has {len(entries):,} files; the limit is {MAX_FILES:,}.",
                               f"Use a smaller sample of {what}.")
    total = sum(e.size for e in entries)
    if total > MAX_UNPACKED_BYTES:
        raise MicrobudgetError(
            f"The {name} unpacks to {total / 1024**3:.1f} GB; the limit is {MAX_UNPACKED_BYTES / 1024**3:.0f} GB.",
            f"Use fewer or smaller {what}.")
    return entries


def _load_entries(entries: list[Entry], name: str) -> tuple[list[np.ndarray], list[str]]:
    """The shared rules for zips and folders: limits, layout, extensions, then decoding."""
    entries = within_limits(entries, name, "images")
    if not entries:
        raise MicrobudgetError(f"The {name} contains no images.",
                               "Put images in one folder per class, e.g. cat/1.png, dog/2.jpg.")
    # One folder wrapping all the class folders (pets/cat/1.png) is not a class itself.
    if len({e.parts[0] for e in entries}) == 1 and all(len(e.parts) >= 3 for e in entries):
        entries = [e._replace(parts=e.parts[1:]) for e in entries]
    for entry in entries:
        if PurePosixPath(entry.parts[-1]).suffix.lower() not in IMAGE_EXTENSIONS:
            raise MicrobudgetError(
                f"The {name} contains a file that is not an image: {entry.name}.",
                f"Remove non-image files; images must end in {', '.join(sorted(IMAGE_EXTENSIONS))}.")
    loose = [e.name for e in entries if len(e.parts) == 1]
    if loose:
        raise MicrobudgetError(f"The {name} has images outside any class folder, e.g. {loose[0]}.",
                               "Put images in one folder per class, e.g. cat/1.png, dog/2.jpg; "
                               "the folder name is the label.")
    return [decode_image(e.read(), e.name, name) for e in entries], [e.parts[0] for e in entries]


def decode_image(data: bytes, member: str, name: str) -> np.ndarray:
    """One image file (`member` of `name`) as an array; a clear error naming the file when it does not decode."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEGs decode straight at reduced size
            return image_to_array(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise MicrobudgetError(f"Could not read the image {member} in the {name}: it is damaged or not an image.",
                               "Remove or replace that file.") from error


def image_to_array(image: Image.Image) -> np.ndarray:
    """An HxWx3 uint8 RGB array, with the longer side at most MAX_SIDE pixels."""
    image = image.convert("RGB")
    # Photos straight from a camera take ~36 MB each once decoded; the models here look at
    # 224 px or less, so 512 px keeps memory bounded for thousands of images without losing detail.
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    return np.array(image, dtype=np.uint8)
