"""Menus, toolbar, and the Register flow: dialog -> QgsTask (worker process) -> layers + message bar."""

from __future__ import annotations

import json
import os
import re
from typing import Optional

from qgis.core import Qgis, QgsApplication, QgsLayerTreeGroup, QgsMessageLog
from qgis.gui import QgsLayerTreeView, QgsLayerTreeViewIndicator
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QPushButton

from .dialogs.register_dialog import RegisterDialog
from .dialogs.settings_dialog import SettingsDialog
from .engine_check import EngineCheck
from .environment import PLUGIN_DIR
from .layers import add_registration_outputs
from .settings import PluginSettings
from .tasks import LOG_TAG, RegistrationTask
from .worker_client import UNCERTAIN_KIND

MENU = "&PromptMID"


def icon_path() -> str:
    for cand in (PLUGIN_DIR / "resources" / "icon.svg", PLUGIN_DIR.parent / "resources" / "icon.svg"):
        if cand.is_file():
            return str(cand)
    return ""


def result_message(result: dict, job: Optional[dict] = None) -> str:
    """The one-paragraph summary of a finished run for the message bar and the log."""
    uncertain = result.get("verdict") == "uncertain"
    head = "Uncertain registration" if uncertain else "Registered"
    conf = result.get("confidence")
    if uncertain:
        head += f" (confidence {conf:.2f})" if isinstance(conf, (int, float)) else ""
        head += f": {result.get('verdict_reason') or 'the engine is not sure the tie points are right'}. Outputs kept as asked; check them"
    parts = [f"{head}. {result.get('tie_points_text') or str(result['n_inliers']) + ' tie points'}, "
             f"{result['n_gcps']} GCPs; tie-point scatter (GCP RMSE) {result['rmse_px']:.2f} px ({result['rmse_map']:.2f} map units)"]
    expected = result.get("expected_error_px")
    if isinstance(expected, (int, float)) and expected == expected and expected != float("inf"):
        parts.append(f"expected error of the warp {expected:.2f} px")  # as the engine summary rounds it
    parts.append(f"{result['seconds']:.1f} s")
    text = "; ".join(parts) + "."
    land_use = _report(result).get("land_use")
    if job and job.get("land_cover") and land_use:
        text += f" Land use from the land-cover layer: {land_use}."
    band = result.get("sar_band")
    if band and band != "1":
        text += f" SAR band: {'mean of all bands' if band == 'mean' else band}."
    warnings = result.get("warnings") or []
    if warnings:
        text += f" Note: {warnings[0]}" + (f" (+{len(warnings) - 1} more in the log)" if len(warnings) > 1 else "")
    return text + f" GCPs: {result['outputs']['points']}"


# The engine's messages are written for the command line; in QGIS the same advice names the dialog's controls
# (and advice for which the dialog has no control is left out).
CLI_TO_DIALOG = ((re.compile(r"(re)?run with --accept-uncertain"), 'tick "Keep uncertain results"'),
                 (re.compile(r",? a wider search \(--max-rotation, --scale-range\)"), ""),
                 (re.compile(r"--accept-uncertain"), '"Keep uncertain results"'),
                 (re.compile(r"--sar-band(?: \S+)?"), 'the "SAR band" choice'),
                 (re.compile(r"--transform(?: \S+)?"), 'the "Transform" choice'))


def in_dialog_words(message: str, where: str = " in the Register dialog") -> str:
    for i, (pattern, words) in enumerate(CLI_TO_DIALOG):
        message = pattern.sub(words + (where if i == 0 else ""), message)
    return message


def _report(result: dict) -> dict:
    try:
        with open(result["outputs"]["report"], encoding="utf-8") as fh:
            return json.load(fh)
    except (KeyError, OSError, ValueError):
        return {}


class PromptMIDPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface
        self.actions: list[QAction] = []
        self.provider = None
        self.task: Optional[RegistrationTask] = None
        self.pending: Optional[dict] = None  # a job waiting for the engine check
        self.add_warped = self.add_overlay = True
        self.engine = EngineCheck()
        self.indicators: list[QgsLayerTreeViewIndicator] = []  # the layer tree does not own them

    # -- QGIS plugin API ------------------------------------------------------------------------
    def initGui(self) -> None:  # noqa: N802
        icon = QIcon(icon_path())
        register = QAction(icon, "Register SAR onto optical…", self.iface.mainWindow())
        register.triggered.connect(self.show_register_dialog)
        settings = QAction("PromptMID settings…", self.iface.mainWindow())
        settings.triggered.connect(self.show_settings)
        self.iface.addToolBarIcon(register)
        for action in (register, settings):
            self.iface.addPluginToRasterMenu(MENU, action)
        self.actions = [register, settings]
        self._init_processing()

    def _init_processing(self) -> None:
        from .processing.provider import PromptMIDProvider

        self.provider = PromptMIDProvider(self.engine)
        QgsApplication.processingRegistry().addProvider(self.provider)

    def unload(self) -> None:
        for action in self.actions:
            self.iface.removePluginRasterMenu(MENU, action)
            self.iface.removeToolBarIcon(action)
        self.actions = []
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    # -- Register flow --------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.task is not None or self.pending is not None

    def show_register_dialog(self) -> None:
        if self.busy:
            self.iface.messageBar().pushMessage("PromptMID", "A registration is already running; wait for it or cancel it in the task manager.",
                                                Qgis.Warning, 6)
            return
        self.engine.ensure()  # background; the dialog shows its state
        settings = PluginSettings.load()
        dialog = RegisterDialog(settings, self.iface.mainWindow(), self.engine)
        if dialog.exec_():
            dialog.remember()
            self.add_warped, self.add_overlay = dialog.add_warped.isChecked(), dialog.add_overlay.isChecked()
            self.start(dialog.job())

    def show_settings(self) -> None:
        if SettingsDialog(PluginSettings.load(), self.iface.mainWindow()).exec_():
            self.engine.ensure()  # re-checks only if the engine Python or the model folder changed

    def _set_up_engine(self) -> Optional[str]:
        """No working environment: offer to create one (the set-up runs in a QProcess; the dialog stays live)."""
        from .dialogs.setup_dialog import SetupDialog

        QgsMessageLog.logMessage(f"No engine environment: {self.engine.reason}", LOG_TAG, Qgis.Warning)
        dialog = SetupDialog(self.engine.reason or "none found", self.iface.mainWindow())
        if dialog.exec_() and dialog.ok:
            settings = PluginSettings.load()
            settings.python = dialog.python
            settings.save()
            self.engine.use(dialog.python)
            return dialog.python
        return None

    def start(self, job: dict, python: Optional[str] = None) -> Optional[RegistrationTask]:
        """Start a registration task and return it; None when refused (one is running) or deferred (the
        engine check is still running: the job starts when it is done) or when there is no engine."""
        if self.busy:
            return None
        if python is None:
            self.engine.ensure()
            if self.engine.busy:
                self.pending = job
                self.engine.changed.connect(self._engine_checked)
                self.iface.messageBar().pushMessage("PromptMID", "Checking the engine environment; the registration starts "
                                                    "when it is done.", Qgis.Info, 5)
                return None
            python = self.engine.python if self.engine.ready else self._set_up_engine()
        if python is None:
            self.iface.messageBar().pushMessage("PromptMID", "No engine environment, so nothing was started: open PromptMID "
                                                "settings or see the README.", Qgis.Critical, 0)
            return None
        name = os.path.basename(job["sar"])
        self.task = RegistrationTask(python, job, self._finished, f"PromptMID: registering {name}")
        QgsMessageLog.logMessage(f"Started: {job['sar']} onto {job['optical']} ({job.get('engine')}, {job.get('transform')}) "
                                 f"into {job.get('output_dir')}", LOG_TAG, Qgis.Info)
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def _engine_checked(self) -> None:
        if self.engine.busy or self.pending is None:
            return
        self.engine.changed.disconnect(self._engine_checked)
        job, self.pending = self.pending, None
        self.start(job)

    def _push(self, text: str, level: Qgis.MessageLevel, duration: int = 0, widget=None) -> None:
        """Push to the message bar once the task manager is done with the task: QGIS announces a task that
        ran 5 s or more ("Task complete: ...") right after finished(), and that banner would otherwise sit
        on top of ours and push it under "1 more"."""
        bar = self.iface.messageBar()
        if widget is not None:
            QTimer.singleShot(0, lambda: bar.pushWidget(widget, level, duration))
        else:
            QTimer.singleShot(0, lambda: bar.pushMessage("PromptMID", text, level, duration))

    def _finished(self, task: RegistrationTask) -> None:
        self.task = None
        outcome = task.outcome
        if outcome is None or outcome.cancelled:
            QgsMessageLog.logMessage("Registration cancelled; no outputs were kept.", LOG_TAG, Qgis.Info)
            self._push("Registration cancelled; no outputs were kept.", Qgis.Info, 8)
            return
        if not outcome.ok:
            self._show_error(outcome.kind, outcome.error)
            return
        result = outcome.result
        group = add_registration_outputs(result, add_warped=self.add_warped, add_overlay=self.add_overlay)
        msg = result_message(result, task.job)
        for warning in result.get("warnings") or []:
            QgsMessageLog.logMessage(warning, LOG_TAG, Qgis.Warning)
        if result.get("verdict") == "uncertain":
            self._mark_uncertain(group, result.get("verdict_reason") or "")
            QgsMessageLog.logMessage(msg, LOG_TAG, Qgis.Warning)
            self._push(msg, Qgis.Warning)
        else:
            QgsMessageLog.logMessage(msg, LOG_TAG, Qgis.Success)
            self._push(msg, Qgis.Success)  # stays: it holds the .points path

    def _mark_uncertain(self, group: Optional[QgsLayerTreeGroup], reason: str) -> None:
        """A warning icon next to the group (its name already ends in "(uncertain)"), the reason as tooltip."""
        view = self.iface.layerTreeView() if hasattr(self.iface, "layerTreeView") else None
        if group is None or not isinstance(view, QgsLayerTreeView):
            return
        indicator = QgsLayerTreeViewIndicator(view)
        indicator.setIcon(QgsApplication.getThemeIcon("/mIconWarning.svg"))
        indicator.setToolTip(f"Uncertain registration: {reason}")
        view.addIndicator(group, indicator)
        self.indicators.append(indicator)

    def _show_error(self, kind: str, error: str) -> None:
        # An uncertain result refused by the engine is a judgement on the data, not a failure of the tool.
        if kind == UNCERTAIN_KIND:
            text = in_dialog_words(error)
            QgsMessageLog.logMessage(text, LOG_TAG, Qgis.Warning)
            self._push(text, Qgis.Warning)
            return
        QgsMessageLog.logMessage(f"{kind}: {error}", LOG_TAG, Qgis.Critical)
        if kind == "ModelMissingError":
            # The engine's text is written for the command line; say it in the plugin's words, with the button.
            first = error.strip().splitlines()[0] if error.strip() else "a required model file is missing"
            text = f"The full PromptMID engine is missing model files ({first}). Set the model folder in PromptMID settings, or use the Default engine."
            item = self.iface.messageBar().createMessage("PromptMID", text)
            button = QPushButton("Settings…")
            button.clicked.connect(self.show_settings)
            item.layout().addWidget(button)
            self._push(text, Qgis.Critical, 0, widget=item)
            return
        self._push(in_dialog_words(error), Qgis.Critical)
