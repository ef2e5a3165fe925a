"""Creates the engine's own Python environment (venv + pinned requirements) with progress and a log.

Offered when no working engine environment is found, instead of failing on import. The manual route
(README, "Installing the plugin") runs the same two commands.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qgis.PyQt.QtCore import QProcess
from qgis.PyQt.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QProgressBar, QVBoxLayout

from ..environment import PLUGIN_DIR, managed_env_dir


def base_python() -> str:
    """The interpreter the venv is made from: Debian's /usr/bin/python3 on Linux (so GDAL bindings are
    visible with --system-site-packages), else the Python QGIS runs on."""
    if sys.platform.startswith("linux") and Path("/usr/bin/python3").is_file():
        return "/usr/bin/python3"
    return sys.executable


def requirements_file() -> Path:
    for cand in (PLUGIN_DIR / "requirements-engine.txt", PLUGIN_DIR.parent / "requirements.txt"):
        if cand.is_file():
            return cand
    raise FileNotFoundError("requirements-engine.txt is missing from the plugin")


def setup_steps(venv: Path) -> list[tuple[str, list[str]]]:
    py = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    return [
        ("Creating the environment", [base_python(), "-m", "venv", "--system-site-packages", str(venv)]),
        ("Installing packages (torch, OpenCV, diffusers…; several minutes)",
         [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements_file())]),
    ]


class SetupDialog(QDialog):
    def __init__(self, reason: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PromptMID: set up the engine environment")
        self.setMinimumSize(640, 420)
        self.venv = managed_env_dir()
        self.steps = setup_steps(self.venv)
        self.step = -1
        self.ok = False
        self.label = QLabel(f"No working engine environment was found ({reason}).\n"
                            f"PromptMID can create one in {self.venv}.")
        self.label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, len(self.steps))
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Close)
        self.buttons.button(QDialogButtonBox.Ok).setText("Create environment")
        self.buttons.accepted.connect(self._ok_clicked)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for w in (self.label, self.progress, self.log, self.buttons):
            layout.addWidget(w)
        self.proc = QProcess(self)
        self.proc.setProcessChannelMode(QProcess.MergedChannels)
        self.proc.readyReadStandardOutput.connect(self._read)
        self.proc.finished.connect(self._step_done)

    @property
    def python(self) -> str:
        return self.steps[-1][1][0]

    def _ok_clicked(self) -> None:
        if self.ok:
            self.accept()  # "Continue": the registration goes on with the new environment
        else:
            self.start()

    def start(self) -> None:
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(False)
        self._next()

    def _next(self) -> None:
        self.step += 1
        self.progress.setValue(self.step)
        if self.step >= len(self.steps):
            self.ok = True
            self.label.setText(f"Done: the engine environment is ready ({self.python}). Continue runs the registration; "
                               "Close leaves it for later.")
            ok = self.buttons.button(QDialogButtonBox.Ok)
            ok.setText("Continue")
            ok.setEnabled(True)
            ok.setDefault(True)
            return
        title, cmd = self.steps[self.step]
        self._append(f"== {title}\n$ {' '.join(cmd)}")
        self.proc.start(cmd[0], cmd[1:])

    def _read(self) -> None:
        self._append(bytes(self.proc.readAllStandardOutput()).decode(errors="replace").rstrip())

    def _append(self, text: str) -> None:
        """Append to the log and follow it (pip prints hundreds of lines)."""
        self.log.appendPlainText(text)
        bar = self.log.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _step_done(self, code: int, _status) -> None:
        if code != 0:
            self.label.setText(f"Step failed (exit code {code}); see the log. The manual route is in the README.")
            self.buttons.button(QDialogButtonBox.Ok).setEnabled(True)
            self.step -= 1
            return
        self._next()
