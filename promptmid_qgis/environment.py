"""Where the engine lives and which Python runs it.

The engine runs in its own Python environment, in a worker process: torch and CUDA inside the QGIS
process are the main source of crashes and install pain for ML plugins. Discovery order for the
interpreter: the plugin setting, the environment the set-up dialog creates, the repository's ``.venv``
(development checkout), then the QGIS Python itself (only if it can import the engine's packages).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

PLUGIN_DIR = Path(__file__).resolve().parent
REQUIRED = ("numpy", "torch", "cv2", "phasecongruency", "osgeo.gdal")


def engine_path() -> Path:
    """Folder that holds the ``promptmid`` engine package: bundled ``engine/`` in a packaged plugin, or
    the repository's ``core/`` in a development checkout."""
    for cand in (PLUGIN_DIR / "engine", PLUGIN_DIR.parent / "core"):
        if (cand / "promptmid" / "__init__.py").is_file():
            return cand
    raise FileNotFoundError(f"PromptMID engine not found next to the plugin ({PLUGIN_DIR}).")


def managed_env_dir() -> Path:
    """The environment the set-up dialog creates (per user, outside the plugin folder so upgrades keep it)."""
    try:
        from qgis.core import QgsApplication

        base = Path(QgsApplication.qgisSettingsDirPath())
    except Exception:  # outside QGIS (tests of this module)
        base = Path.home() / ".local" / "share" / "promptmid"
    return base / "promptmid" / "venv"


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def candidate_pythons(configured: str = "") -> list[str]:
    cands = []
    if configured:
        cands.append(configured)
    cands.append(str(_venv_python(managed_env_dir())))
    cands.append(str(_venv_python(PLUGIN_DIR.parent / ".venv")))
    if sys.executable and Path(sys.executable).name.startswith("python"):
        cands.append(sys.executable)
    return [c for c in dict.fromkeys(cands) if Path(c).is_file()]


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(engine_path())] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    return env


def probe(python: str, model_dir: str = "", timeout: float = 120.0) -> dict:
    """Run the engine's ``check`` job with ``python``: package versions, CUDA, shipped and foundation weights.
    Never raises: problems come back under ``"error"``."""
    job = {"action": "check", "model_dir": model_dir or None}
    try:
        proc = subprocess.run([python, "-m", "promptmid.worker"], input=json.dumps(job), capture_output=True, text=True,
                              timeout=timeout, env=worker_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{python} could not run: {exc}"}
    for line in reversed(proc.stdout.splitlines()):
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "result" in msg:
            info = msg["result"]
            missing = [m for m in REQUIRED if str(info["packages"].get(m, "MISSING")).startswith("MISSING")]
            if missing:
                info["error"] = "missing packages: " + ", ".join(missing)
            return info
        if "error" in msg:
            return {"error": msg["error"]}
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"error": f"{python}: engine check failed ({tail[0][:200]})"}


def find_engine(configured: str = "", model_dir: str = "") -> tuple[Optional[str], dict, str]:
    """(interpreter, its probe info, "") for the first candidate that passes the check, else (None, {}, reason).
    Slow (each probe imports torch in a subprocess): never call it on the GUI thread."""
    reasons = []
    for py in candidate_pythons(configured):
        info = probe(py, model_dir)
        if "error" not in info:
            return py, info, ""
        reasons.append(info["error"])
    return None, {}, "; ".join(reasons) or "no Python environment with the engine's packages was found"


def find_engine_python(configured: str = "") -> tuple[Optional[str], str]:
    """(interpreter, "") for the first candidate that passes the check, else (None, reason)."""
    python, _info, why = find_engine(configured)
    return python, why
