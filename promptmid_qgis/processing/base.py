"""Shared base for the algorithms: run one engine job in the worker process with Processing feedback."""

from __future__ import annotations

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingFeedback

from ..environment import find_engine_python
from ..settings import PluginSettings
from ..worker_client import run_job


class EngineAlgorithm(QgsProcessingAlgorithm):
    """Subclasses build a job dict; the worker runs it; errors become QgsProcessingException (one line)."""

    def group(self) -> str:
        return self.tr_group

    def groupId(self) -> str:  # noqa: N802
        return self.tr_group.lower().replace(" ", "_")

    def createInstance(self):  # noqa: N802
        return type(self)()

    def run_engine(self, job: dict, feedback: QgsProcessingFeedback) -> dict:
        settings = PluginSettings.load()
        python, why = find_engine_python(settings.python)
        if python is None:
            raise QgsProcessingException(f"No PromptMID engine environment: {why}. Open PromptMID settings (Raster menu).")
        job.setdefault("model_dir", settings.model_dir or None)
        job.setdefault("device", settings.device)
        feedback.pushInfo(f"Engine: {python}")

        def progress(fraction: float, message: str) -> None:
            feedback.setProgress(100.0 * fraction)
            if message:
                feedback.setProgressText(message)

        outcome = run_job(python, job, progress, feedback.isCanceled)
        for line in outcome.log[-20:]:
            feedback.pushDebugInfo(line)
        if outcome.cancelled:
            raise QgsProcessingException("Cancelled by user.")
        if not outcome.ok:
            raise QgsProcessingException(outcome.error)
        return outcome.result
