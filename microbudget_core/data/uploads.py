"""Files the user uploads in the app, kept under the user's own data folder with content-hash names.

No part of an uploaded file's name becomes a path: only its extension picks the kind. A CSV is
validated, reduced to its chosen text and label columns and stored as `text,label`; a zip is
validated (members, sizes, decodable images) before it is kept.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pandas as pd

from ..support.atomic import write_atomically
from ..support.errors import MicrobudgetError
from ..support.paths import workspace
from .files import read_csv, read_images

MAX_UPLOAD_BYTES = 200 * 1024**2  # the same as the app's server.maxUploadSize


def save_upload(filename: str, content: bytes, text_column: str | None = None,
                label_column: str | None = None) -> str:
    """Validate an uploaded CSV or zip, store it, and return its dataset id (`csv:...` or `images:...`)."""
    if len(content) > MAX_UPLOAD_BYTES:
        raise MicrobudgetError(f"'{filename}' is {len(content) / 1024**2:,.0f} MB, over the "
                               f"{MAX_UPLOAD_BYTES // 1024**2} MB upload limit.", "Upload a smaller sample.")
    suffix = Path(filename).suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        texts, labels = read_csv(content, text_column, label_column)  # raises with the reason if unusable
        buffer = io.StringIO()
        pd.DataFrame({"text": texts, "label": labels}).to_csv(buffer, index=False)
        data, kind, extension = buffer.getvalue().encode(), "csv", ".csv"
    elif suffix == ".zip":
        read_images(content)  # raises for ../ paths, no images, undecodable files, one class
        data, kind, extension = content, "images", ".zip"
    else:
        raise MicrobudgetError(f"'{filename}' is neither a CSV nor a zip.",
                               "Upload a CSV (text and label columns) or a zip with one folder per class.")
    folder = workspace() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{hashlib.sha256(data).hexdigest()[:20]}{extension}"
    if not target.exists():
        write_atomically(target, data)  # a reader never sees half a file
    return f"{kind}:{target}"
