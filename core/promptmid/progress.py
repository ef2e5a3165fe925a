"""Progress reporting and cooperative cancellation shared by CLI, QgsTask and Processing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from .errors import CancelledError

ProgressFn = Callable[[float, str], None]
"""Called with (fraction done in [0, 1], short stage message)."""


@dataclass
class Progress:
    """Reports progress over weighted stages and raises CancelledError when ``is_cancelled`` says so.

    Each long loop calls :meth:`check` so a cancel is honoured within one iteration.
    """

    callback: Optional[ProgressFn] = None
    is_cancelled: Callable[[], bool] = field(default=lambda: False)
    start: float = 0.0
    span: float = 1.0

    def check(self) -> None:
        if self.is_cancelled():
            raise CancelledError("Cancelled by user.")

    def report(self, fraction: float, message: str = "") -> None:
        self.check()
        if self.callback is not None:
            self.callback(self.start + self.span * min(max(fraction, 0.0), 1.0), message)

    def sub(self, start: float, end: float) -> "Progress":
        """A child reporter mapping its [0, 1] onto [start, end] of this one."""
        return Progress(self.callback, self.is_cancelled, self.start + self.span * start, self.span * (end - start))
