"""The engine-environment check: once per session, in a background thread, cached.

Probing an interpreter imports torch in a subprocess (seconds). Done on the GUI thread it froze QGIS
after every click on Register, so the plugin owns one ``EngineCheck``: the first Register (or a
Processing run) starts it, dialogs show its state and follow ``changed``, and a registration asked for
while it runs starts when it is done. A new check runs only when the engine Python or the model folder
setting changes, or after the set-up dialog made a new environment.

A plain thread rather than a QgsTask: QGIS 3.22 announces every task that ran 5 s or more ("Task
complete") and has no flag to keep an internal check quiet; the dialog shows this state instead.
"""

from __future__ import annotations

import threading
from typing import Optional

from qgis.PyQt.QtCore import QObject, pyqtSignal

from .environment import find_engine
from .settings import PluginSettings

UNKNOWN, CHECKING, READY, MISSING = "unknown", "checking", "ready", "missing"


class EngineCheck(QObject):
    changed = pyqtSignal()
    _checked = pyqtSignal(object, object)  # (settings key, find_engine result or exception): queued to this object's thread

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.state = UNKNOWN
        self.python: Optional[str] = None
        self.info: dict = {}
        self.reason = ""
        self._key: Optional[tuple[str, str]] = None  # (Python setting, model folder) the state is for
        self._checked.connect(self._done)

    # -- starting -------------------------------------------------------------------------------
    def ensure(self, settings: Optional[PluginSettings] = None) -> None:
        """Start a check unless one for the current settings is running or done. Returns at once."""
        settings = settings or PluginSettings.load()
        key = (settings.python, settings.model_dir)
        if key == self._key and self.state != UNKNOWN:
            return
        self._start(key)

    def recheck(self, settings: Optional[PluginSettings] = None) -> None:
        self._key = None
        self.ensure(settings)

    def use(self, python: str) -> None:
        """An environment made by the set-up dialog: ready without probing again."""
        self.python, self.state, self.reason = python, READY, ""
        self._key = (PluginSettings.load().python, PluginSettings.load().model_dir)
        self.changed.emit()

    def _start(self, key: tuple[str, str]) -> None:
        self._key, self.state, self.python, self.info, self.reason = key, CHECKING, None, {}, ""
        configured, model_dir = key

        def work() -> None:
            try:
                result = find_engine(configured, model_dir)
            except Exception as exc:  # reported, never raised in a thread nobody joins
                result = exc
            self._checked.emit(key, result)

        threading.Thread(target=work, name="PromptMID engine check", daemon=True).start()
        self.changed.emit()

    def _done(self, key: tuple[str, str], result) -> None:
        if key != self._key:  # settings changed meanwhile: a newer check owns the state
            return
        if isinstance(result, Exception):
            self.state, self.reason = MISSING, f"the engine check failed ({result})"
        else:
            self.python, self.info, self.reason = result
            self.state = READY if self.python else MISSING
        self.changed.emit()

    # -- reading --------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def busy(self) -> bool:
        return self.state == CHECKING

    def cached_python(self, settings: PluginSettings) -> Optional[str]:
        """The checked interpreter when a finished check is for these settings, else None."""
        return self.python if self.ready and self._key == (settings.python, settings.model_dir) else None

    def missing_models(self) -> list[dict]:
        """Required pieces of the full engine's model folder that the check did not find."""
        return [m for m in self.info.get("models", []) if m.get("required") and not m.get("present")]

    def summary(self) -> str:
        """One line for the Register dialog."""
        if self.state == CHECKING:
            return "Engine: checking the engine environment in the background…"
        if self.state == READY:
            torch = self.info.get("packages", {}).get("torch")
            gpu = self.info.get("cuda_device") or "CPU"
            details = f" (torch {torch}, {gpu})" if torch else ""
            return f"Engine: ready, {self.python}{details}"
        if self.state == MISSING:
            return "Engine: no working engine environment yet; Register will offer to create one."
        return "Engine: not checked yet."
