"""Where a run's outputs go and what its layers are called, so that runs are told apart.

The engine names its outputs after the SAR file (``<sar>_registered.tif``, ``.points``,
``<sar>_tiepoints.gpkg``, ``<sar>_report.json``; promptmid.pipeline.output_paths) in the folder it is
given. A second run into a folder that already holds them would overwrite files that layers of the
first run still show (and OGR's cached connections would keep showing the old tie points), so the
plugin sends such a run to a fresh sub-folder ``<folder>/<sar>_run<N>`` and labels its layers "(run N)".
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SUFFIXES = ("_registered.tif", "_registered.points", "_tiepoints.gpkg", "_report.json")  # = promptmid.pipeline.output_paths


def sar_stem(sar_path: str) -> str:
    return Path(sar_path).stem


def has_outputs(folder: str, sar_path: str) -> bool:
    stem = sar_stem(sar_path)
    return any(os.path.exists(os.path.join(folder, stem + s)) for s in SUFFIXES)


def fresh_output_dir(folder: str, sar_path: str) -> tuple[str, int]:
    """(folder for this run, run number): ``folder`` itself when it holds no outputs of this SAR yet,
    else the first ``<folder>/<sar>_run<N>`` (N >= 2) without them. Nothing is created here."""
    if not has_outputs(folder, sar_path):
        return folder, 1
    n = 2
    while True:
        cand = os.path.join(folder, f"{sar_stem(sar_path)}_run{n}")
        if not has_outputs(cand, sar_path):
            return cand, n
        n += 1


def run_number(output_dir: str, sar_path: str) -> int:
    """The run number a folder made by :func:`fresh_output_dir` stands for (1 for any other folder)."""
    m = re.fullmatch(re.escape(sar_stem(sar_path)) + r"_run(\d+)", os.path.basename(os.path.normpath(output_dir)))
    return int(m.group(1)) if m else 1


def run_label(output_dir: str, sar_path: str) -> str:
    n = run_number(output_dir, sar_path)
    return f" (run {n})" if n > 1 else ""
