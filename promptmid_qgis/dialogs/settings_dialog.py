"""Settings: model directory, device, default engine/transform, engine Python; "Check models" probes the
engine environment in the background and shows what is present."""

from __future__ import annotations

from qgis.core import QgsApplication, QgsTask
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QPlainTextEdit, QPushButton,
                                 QVBoxLayout)

from ..environment import find_engine
from .widgets import keyed_combo
from ..settings import DEVICES, ENGINE_LABELS, ENGINES, TRANSFORM_LABELS, TRANSFORMS_SHOWN, PluginSettings


def describe_probe(info: dict) -> str:
    if "error" in info and "packages" not in info:
        return f"Engine environment problem: {info['error']}"
    lines = [f"Python: {info.get('python')}"]
    lines += [f"  {k}: {v}" for k, v in info.get("packages", {}).items()]
    lines.append(f"GPU: {info.get('cuda_device') or 'none (CPU will be used)'}" if info.get("cuda") is not None else "GPU: unknown")
    lines.append(f"Default model: {'present' if info.get('default_present') else 'MISSING'} ({info.get('default_weights')})")
    if "models" in info:
        lines.append("Full PromptMID engine (model folder):")
    else:
        lines.append("Full PromptMID engine: no model folder set. It needs Stable Diffusion 1.5, a SAR ControlNet, DINOv2 "
                     "and VGG19 in one folder (see the README, 'Model directory'); the Default and Classical engines "
                     "need none of them.")
    for m in info.get("models", []):
        state = "ok" if m["present"] else ("MISSING" if m["required"] else "absent")
        lines.append(f"  {state:8s} {m['key']}: {m['path']}" + ("" if m["present"] else f" (get it from {m['source']})"))
    if info.get("error"):
        lines.append(f"Problem: {info['error']}")
    return "\n".join(lines)


class SettingsDialog(QDialog):
    def __init__(self, settings: PluginSettings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PromptMID settings")
        self.setMinimumWidth(560)
        self.settings = settings
        self.model_dir = QgsFileWidget()
        self.model_dir.setStorageMode(QgsFileWidget.GetDirectory)
        self.model_dir.setFilePath(settings.model_dir)
        self.python = QgsFileWidget()
        self.python.setFilePath(settings.python)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText(settings.device)
        self.engine = keyed_combo(ENGINES, ENGINE_LABELS, settings.engine)
        self.transform = keyed_combo(TRANSFORMS_SHOWN, TRANSFORM_LABELS, settings.transform)
        form = QFormLayout()
        form.addRow("Model directory (full engine)", self.model_dir)
        form.addRow("Engine Python (empty = auto)", self.python)
        form.addRow("Device", self.device)
        form.addRow("Default engine", self.engine)
        form.addRow("Default transform", self.transform)
        self.check_button = QPushButton("Check models")
        self.check_button.clicked.connect(self.check_models)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.check_button)
        layout.addWidget(self.report)
        layout.addWidget(buttons)
        self._task = None

    def values(self) -> PluginSettings:
        return PluginSettings(model_dir=self.model_dir.filePath().strip(), device=self.device.currentText(),
                              engine=self.engine.currentData(), transform=self.transform.currentData(),
                              python=self.python.filePath().strip(), output_dir=self.settings.output_dir,
                              land_use=self.settings.land_use)

    def check_models(self) -> None:
        """Probe in a background task (importing torch takes seconds; the dialog stays responsive)."""
        self.check_button.setEnabled(False)
        self.report.setPlainText("Checking the engine environment…")
        v = self.values()

        def work(_task):
            py, info, why = find_engine(v.python, v.model_dir)
            return info if py else {"error": why}

        def done(exception, result=None):
            self.check_button.setEnabled(True)
            self.report.setPlainText(describe_probe(result) if result else f"Check failed: {exception}")

        self._task = QgsTask.fromFunction("PromptMID: checking models", work, on_finished=done)
        QgsApplication.taskManager().addTask(self._task)

    def accept(self) -> None:
        self.values().save()
        super().accept()
