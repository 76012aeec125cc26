"""Progress reporting: one callback type shared by the CLI's bar and the app's st.progress."""

from typing import Callable

# progress(fraction_done in [0, 1], message)
Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """The default: report nothing."""


def scaled(progress: Progress, start: float, end: float) -> Progress:
    """A sub-task's progress mapped onto [start, end] of the parent's."""
    return lambda fraction, message: progress(start + (end - start) * fraction, message)
