"""Per-process set-up of the engine: thread counts and where library warnings go.

Thread counts are set deliberately: on a 2-core machine whose other core is busy (QGIS, a second job),
OpenMP / FFT / OpenCV pools sized to every core spin against each other and a 0.4 s stage took 13 s.
Library warnings (GDAL's "Warning 1: TIFFFetchNormalTag ...", Python warnings from torch) go to the log
file, never to the user's terminal: the engine's own one-line message says what matters.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Optional

LOG = logging.getLogger("promptmid")


def default_threads() -> int:
    """Half the cores (at least one): leaves a core to the desktop / the other job."""
    return max(1, (os.cpu_count() or 2) // 2)


def set_threads(n: int = 0) -> int:
    """Set torch, OpenCV and GDAL thread counts for this process (0 = :func:`default_threads`)."""
    import cv2
    import torch
    from osgeo import gdal

    n = n if n and n > 0 else default_threads()
    torch.set_num_threads(n)
    cv2.setNumThreads(n)
    gdal.SetConfigOption("GDAL_NUM_THREADS", str(n))
    return n


def default_log_path() -> str:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "promptmid", "promptmid.log")


def route_library_messages(log_path: Optional[str] = None) -> str:
    """Send GDAL messages and Python warnings to a log file (``log_path`` or :func:`default_log_path`).

    GDAL: its default handler writes to CPL_LOG instead of stderr (a Python error handler would disable the
    bindings' exceptions, and failures must still raise); GDAL appends to that file itself."""
    from osgeo import gdal

    path = log_path or default_log_path()
    handler: logging.Handler = next((h for h in LOG.handlers if isinstance(h, logging.FileHandler)), logging.NullHandler())
    if not isinstance(handler, logging.FileHandler):
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            handler = logging.FileHandler(path, encoding="utf-8")
        except OSError:  # no writable home: keep the terminal clean all the same
            handler = logging.NullHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
        for name in ("promptmid", "py.warnings"):
            lg = logging.getLogger(name)
            lg.addHandler(handler)
            lg.setLevel(logging.INFO)
            lg.propagate = False
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    if isinstance(handler, logging.FileHandler):
        gdal.SetConfigOption("CPL_LOG", path)
        gdal.SetConfigOption("CPL_LOG_ERRORS", "ON")
    return path


def configure_process(threads: int = 0, log_path: Optional[str] = None) -> None:
    """What the CLI and the worker call once at start (before torch / transformers / diffusers load)."""
    # Model-loading progress bars and library chatter are not the user's business on the terminal.
    for var, value in (("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TRANSFORMERS_VERBOSITY", "error"),
                       ("DIFFUSERS_VERBOSITY", "error"), ("TQDM_DISABLE", "1")):
        os.environ.setdefault(var, value)
    import sys

    for lib in ("transformers", "diffusers"):  # already imported (e.g. by a host process): tell them directly
        if lib in sys.modules:
            logging_mod = __import__(f"{lib}.utils.logging", fromlist=["disable_progress_bar"])
            logging_mod.disable_progress_bar()
    route_library_messages(log_path)
    set_threads(threads)
