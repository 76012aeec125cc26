"""Libraries' chatter (Python warnings, transformers' notices, C++ runtimes' prints) goes to a log file, not the
terminal: the CLI's stderr keeps its progress bar and, on bad input, exactly one `error:` line."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Iterator, TextIO

from .paths import home


def log_file() -> Path:
    """Today's log of library output: MICROBUDGET_HOME/logs/cli-YYYY-MM-DD.log."""
    return home() / "logs" / f"cli-{time.strftime('%Y-%m-%d')}.log"


@contextlib.contextmanager
def library_output_to(log: Path) -> Iterator[TextIO]:
    """Send everything written to stderr, by Python or by C code (file descriptor 2), into `log`; yield a stream
    to the real stderr for the CLI's own lines."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    with open(log, "a", buffering=1) as file, _real_stderr() as real:
        file.write(f"--- {time.strftime('%H:%M:%S')} {' '.join(sys.argv)}\n")
        saved = os.dup(2)
        os.dup2(file.fileno(), 2)  # C and C++ libraries (ONNX Runtime, llama.cpp) write to the descriptor itself
        try:
            with contextlib.redirect_stderr(file), shown_here():  # each warning once, into the log
                logging.captureWarnings(True)
                handler = logging.StreamHandler(file)
                logging.getLogger().addHandler(handler)
                try:
                    yield real
                finally:
                    logging.getLogger().removeHandler(handler)
                    logging.captureWarnings(False)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def _real_stderr() -> Iterator[TextIO]:
    """A stream to where stderr goes now, which survives file descriptor 2 being pointed elsewhere."""
    try:
        descriptor = sys.stderr.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):  # an in-memory stream (a test's capture)
        yield sys.stderr
        return
    with os.fdopen(os.dup(descriptor), "w", buffering=1) as real:
        yield real


@contextlib.contextmanager
def shown_here() -> Iterator[TextIO]:
    """The --verbose way: libraries' output on stderr as it comes, each warning once (deprecations included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        yield sys.stderr
