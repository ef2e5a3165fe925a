"""Per-process set-up of the engine: thread counts and where library warnings go.

Thread counts are set deliberately: on a 2-core machine whose other core is busy (QGIS, a second job),
OpenMP / FFT / OpenCV pools sized to every core spin against each other and a 0.4 s stage took 13 s.
That includes the OpenBLAS copies numpy, SciPy and OpenCV each load: numpy's pool thread spun in
sched_yield after every small matrix product (a third of the process's CPU time went to the kernel).
glibc's allocator is told to keep freed large blocks: the search allocates and frees arrays of a few MB
per pose, and returning each to the kernel cost a page fault per 4 kB on the next (24 train tiles, both
changes: 0.52 s per pair instead of 0.70-0.87, peak memory within 1 %; README, "Speed").
Library warnings (GDAL's "Warning 1: TIFFFetchNormalTag ...", Python warnings from torch) go to the log
file, never to the user's terminal: the engine's own one-line message says what matters.
"""

from __future__ import annotations

import ctypes
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
    os.environ["OPENBLAS_NUM_THREADS"] = str(n)  # copies loaded later read it at load
    for lib in _loaded_openblas():
        setter = _openblas_symbol(lib, "set")
        if setter is not None:
            setter(ctypes.c_int(n))
    return n


_OPENBLAS_PREFIXES = ("openblas_", "scipy_openblas_")
_OPENBLAS_SUFFIXES = ("", "64_")  # numpy's own build exports ILP64 names with a 64_ suffix


def _loaded_openblas() -> list[ctypes.CDLL]:
    """The OpenBLAS libraries this process has loaded (Linux: from /proc/self/maps; elsewhere none)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1]})
    except OSError:
        return []
    libs = []
    for path in paths:
        try:
            libs.append(ctypes.CDLL(path))  # already mapped: this only looks it up
        except OSError:
            continue
    return libs


def _openblas_symbol(lib: ctypes.CDLL, kind: str):
    """``openblas_{kind}_num_threads`` under whichever name this build exports, or None."""
    for prefix in _OPENBLAS_PREFIXES:
        for suffix in _OPENBLAS_SUFFIXES:
            fn = getattr(lib, f"{prefix}{kind}_num_threads{suffix}", None)
            if fn is not None:
                return fn
    return None


def openblas_threads() -> list[int]:
    """Pool sizes of the loaded OpenBLAS libraries (for tests and diagnostics)."""
    getters = [_openblas_symbol(lib, "get") for lib in _loaded_openblas()]
    return [int(get()) for get in getters if get is not None]


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MB = 1 << 20


def keep_freed_memory() -> bool:
    """Let glibc reuse freed large blocks instead of unmapping them (False where libc is not glibc).

    Blocks up to 256 MB come from the heap rather than fresh mappings, and up to 512 MB of free heap
    stays with the process; both are returned at exit, and the peak stays that of the largest stage."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 256 * _MB) and mallopt(_M_TRIM_THRESHOLD, 512 * _MB)
    return bool(ok and mallopt(_M_TOP_PAD, 64 * _MB))


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
    keep_freed_memory()
    set_threads(threads)
