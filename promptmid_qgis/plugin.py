"""Menus, toolbar, and the Register flow: dialog -> QgsTask (worker process) -> layers + message bar."""

from __future__ import annotations

import os
from typing import Optional

from qgis.core import Qgis, QgsApplication, QgsMessageLog
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .dialogs.register_dialog import RegisterDialog
from .dialogs.settings_dialog import SettingsDialog
from .environment import PLUGIN_DIR, find_engine_python
from .layers import add_registration_outputs
from .settings import PluginSettings
from .tasks import LOG_TAG, RegistrationTask

MENU = "&PromptMID"


def icon_path() -> str:
    for cand in (PLUGIN_DIR / "resources" / "icon.svg", PLUGIN_DIR.parent / "resources" / "icon.svg"):
        if cand.is_file():
            return str(cand)
    return ""


class PromptMIDPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface
        self.actions: list[QAction] = []
        self.provider = None
        self.task: Optional[RegistrationTask] = None
        self.add_outputs = True

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

        self.provider = PromptMIDProvider()
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
        return self.task is not None

    def show_register_dialog(self) -> None:
        if self.busy:
            self.iface.messageBar().pushMessage("PromptMID", "A registration is already running; wait for it or cancel it in the task manager.",
                                                Qgis.Warning, 6)
            return
        settings = PluginSettings.load()
        dialog = RegisterDialog(settings, self.iface.mainWindow())
        if dialog.exec_():
            settings.output_dir = dialog.output.filePath().strip()
            settings.save()
            self.add_outputs = dialog.add_warped.isChecked() or dialog.add_overlay.isChecked()
            self.start(dialog.job())

    def show_settings(self) -> None:
        SettingsDialog(PluginSettings.load(), self.iface.mainWindow()).exec_()

    def engine_python(self) -> Optional[str]:
        settings = PluginSettings.load()
        python, why = find_engine_python(settings.python)
        if python is None:
            from .dialogs.setup_dialog import SetupDialog

            QgsMessageLog.logMessage(f"No engine environment: {why}", LOG_TAG, Qgis.Warning)
            dialog = SetupDialog(why, self.iface.mainWindow())
            dialog.exec_()
            if dialog.ok:
                settings.python = dialog.python
                settings.save()
                return dialog.python
        return python

    def start(self, job: dict, python: Optional[str] = None) -> Optional[RegistrationTask]:
        """Start a registration task; refuses while one is running. Returns the task (None if refused)."""
        if self.busy:
            return None
        python = python or self.engine_python()
        if python is None:
            self.iface.messageBar().pushMessage("PromptMID", "No engine environment: open PromptMID settings or see the README.", Qgis.Critical, 8)
            return None
        name = os.path.basename(job["sar"])
        self.task = RegistrationTask(python, job, self._finished, f"PromptMID: registering {name}")
        QgsMessageLog.logMessage(f"Started: {job['sar']} onto {job['optical']} ({job.get('engine')}, {job.get('transform')})", LOG_TAG, Qgis.Info)
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def _finished(self, task: RegistrationTask) -> None:
        self.task = None
        outcome = task.outcome
        bar = self.iface.messageBar()
        if outcome is None or outcome.cancelled:
            bar.pushMessage("PromptMID", "Registration cancelled; no outputs were kept.", Qgis.Info, 5)
            return
        if not outcome.ok:
            QgsMessageLog.logMessage(f"{outcome.kind}: {outcome.error}", LOG_TAG, Qgis.Critical)
            bar.pushMessage("PromptMID", outcome.error, Qgis.Critical, 0)
            return
        result = outcome.result
        if self.add_outputs:
            add_registration_outputs(result)
        msg = (f"{result['n_inliers']} tie points of {result['n_matches']} matches, {result['n_gcps']} GCPs; RMSE "
               f"{result['rmse_px']:.2f} px ({result['rmse_map']:.2f} map units); {result['seconds']:.1f} s. "
               f"GCPs: {result['outputs']['points']}")
        QgsMessageLog.logMessage(msg, LOG_TAG, Qgis.Success)
        bar.pushMessage("PromptMID", msg, Qgis.Success, 10)
