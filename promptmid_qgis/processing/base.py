"""Shared base for the algorithms: run one engine job in the worker process with Processing feedback."""

from __future__ import annotations

from typing import Optional

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingFeedback

from ..environment import find_engine_python
from ..settings import PluginSettings
from ..worker_client import run_job


class EngineAlgorithm(QgsProcessingAlgorithm):
    """Subclasses build a job dict; the worker runs it; errors become QgsProcessingException (one line)."""

    last_message = ""  # the engine's last progress line of this run (its final summary)

    def group(self) -> str:
        return self.tr_group

    def groupId(self) -> str:  # noqa: N802
        return self.tr_group.lower().replace(" ", "_")

    def createInstance(self):  # noqa: N802
        return type(self)()

    def engine_python(self, settings: PluginSettings) -> Optional[str]:
        """The plugin's cached engine check when it is done for these settings, else a check here (this
        runs in Processing's worker thread, not on the GUI thread)."""
        engine = getattr(self.provider(), "engine", None) if self.provider() is not None else None
        cached = engine.cached_python(settings) if engine is not None else None
        if cached:
            return cached
        python, why = find_engine_python(settings.python)
        if python is None:
            raise QgsProcessingException(f"No PromptMID engine environment: {why}. Open PromptMID settings (Raster menu).")
        return python

    def run_engine(self, job: dict, feedback: QgsProcessingFeedback) -> dict:
        settings = PluginSettings.load()
        python = self.engine_python(settings)
        job.setdefault("model_dir", settings.model_dir or None)
        job.setdefault("device", settings.device)
        feedback.pushInfo(f"Engine: {python}")

        def progress(fraction: float, message: str) -> None:
            feedback.setProgress(100.0 * fraction)
            if message and message != self.last_message:
                self.last_message = message
                feedback.setProgressText(message)

        outcome = run_job(python, job, progress, feedback.isCanceled)
        for line in outcome.log[-20:]:
            feedback.pushDebugInfo(line)
        if outcome.cancelled:
            raise QgsProcessingException("Cancelled by user.")
        if not outcome.ok:
            from ..plugin import in_dialog_words

            raise QgsProcessingException(in_dialog_words(outcome.error, where=""))
        return outcome.result
