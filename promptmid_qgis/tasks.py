"""The QgsTask that runs a registration in the engine's worker process."""

from __future__ import annotations

from typing import Callable, Optional

from qgis.core import Qgis, QgsMessageLog, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from .worker_client import UNCERTAIN_KIND, JobOutcome, run_job

LOG_TAG = "PromptMID"


class RegistrationTask(QgsTask):
    """run() (background thread) drives the worker and never raises; finished() (main thread) hands the
    outcome to ``on_done``, which builds layers. Cancel kills the worker.

    The task manager shows the engine's current stage next to the percentage (the description is set on
    the main thread, through a queued signal). A cancelled run ends as *complete* with a cancelled
    outcome: returning False would make QGIS announce "Task failed" for what the user asked for. So does
    a result the engine refused as uncertain: the tool worked, the evidence was weak (the plugin says why)."""

    stage = pyqtSignal(str)

    def __init__(self, python: str, job: dict, on_done: Callable[["RegistrationTask"], None], description: str = "") -> None:
        self.base_description = description or "PromptMID: registering SAR onto optical"
        super().__init__(self.base_description, QgsTask.CanCancel)
        self.python, self.job, self.on_done = python, job, on_done
        self.outcome: Optional[JobOutcome] = None
        self.last_message = ""
        self.stage.connect(self._show_stage)

    def _progress(self, fraction: float, message: str) -> None:
        self.setProgress(100.0 * fraction)
        if message and message != self.last_message:
            self.last_message = message
            self.stage.emit(message)

    def _show_stage(self, message: str) -> None:
        self.setDescription(f"{self.base_description}: {message}")

    def run(self) -> bool:
        try:
            self.outcome = run_job(self.python, self.job, self._progress, self.isCanceled)
        except Exception as exc:  # defensive: run() must never raise into the task manager
            self.outcome = JobOutcome(error=f"Internal error: {exc}", kind="InternalError")
        return self.outcome.ok or self.outcome.cancelled or self.outcome.kind == UNCERTAIN_KIND

    def finished(self, result: bool) -> None:
        if self.outcome is not None:
            for line in self.outcome.log[-50:]:
                QgsMessageLog.logMessage(line, LOG_TAG, Qgis.Info)
        self.on_done(self)
