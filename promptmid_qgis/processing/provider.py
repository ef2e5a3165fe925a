"""The PromptMID Processing provider."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .evaluate_algorithm import EvaluateMatching
from .register_algorithm import RegisterRasterPair
from .training_algorithms import FinetuneControlNet, TrainDescriptor


class PromptMIDProvider(QgsProcessingProvider):
    def __init__(self, engine=None) -> None:
        super().__init__()
        self.engine = engine  # the plugin's EngineCheck (cached engine Python); None outside the plugin

    def id(self) -> str:
        return "promptmid"

    def name(self) -> str:
        return "PromptMID"

    def icon(self):
        from ..plugin import icon_path

        return QIcon(icon_path())

    def loadAlgorithms(self) -> None:  # noqa: N802
        for alg in (RegisterRasterPair(), TrainDescriptor(), FinetuneControlNet(), EvaluateMatching()):
            self.addAlgorithm(alg)
