"""Bookkeeping after an optimiser step, shared by both training stages."""

from __future__ import annotations

from typing import Callable

from ..progress import Progress


def after_step(step: int, steps: int, log_every: int, message: Callable[[], str], log: Callable[[str], None],
               progress: Progress, checkpoint_every: int, checkpoint: Callable[[], None]) -> None:
    """A log line (and progress report) every ``log_every`` steps and at the last one, else a cancel check;
    a resumable checkpoint every ``checkpoint_every`` steps before the last (the finished run saves its own)."""
    if step % log_every == 0 or step == steps:
        msg = message()
        log(msg)
        progress.report(step / steps, msg)
    else:
        progress.check()
    if step % checkpoint_every == 0 and step < steps:
        checkpoint()
