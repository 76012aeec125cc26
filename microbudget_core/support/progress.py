"""Progress reporting: one callback type shared by the CLI's bar and the app's st.progress.

progress(fraction_done in [0, 1], message, **metrics): training also passes its per-epoch
figures as keywords (epoch=, loss=, val_accuracy=) so a page can draw live curves; callbacks
that only show a bar ignore them.
"""

from typing import Any, Protocol


class Progress(Protocol):
    def __call__(self, fraction: float, message: str, **metrics: Any) -> None: ...


def no_progress(fraction: float, message: str, **metrics: Any) -> None:
    """The default: report nothing."""


def scaled(progress: Progress, start: float, end: float) -> Progress:
    """A sub-task's progress mapped onto [start, end] of the parent's."""
    return lambda fraction, message, **metrics: progress(start + (end - start) * fraction, message, **metrics)
