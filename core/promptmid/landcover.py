"""Land-use class of a scene from a land-cover raster: majority class over the work grid, mapped from a
common legend (ESA WorldCover, CORINE, WHU-OPT-SAR) to the seven PromptMID classes.

Legend tables are data (``resources/landcover/<legend>.json``), not code, so a new legend is one file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import InputError
from .io.rasters import Grid, read_on_grid

LEGENDS = ("worldcover", "corine", "whu-opt-sar")


def legend_dir() -> Path:
    here = Path(__file__).resolve().parent
    for root in (here.parents[1], here.parents[0], here):  # repo root, plugin bundle root, package
        cand = root / "resources" / "landcover"
        if cand.is_dir():
            return cand
    raise InputError("Land-cover legend tables (resources/landcover) are missing from this installation.")


def load_legend(name: str) -> tuple[dict[int, str], set[int]]:
    path = name if os.path.isfile(name) else str(legend_dir() / f"{name}.json")
    if not os.path.isfile(path):
        raise InputError(f"Unknown land-cover legend '{name}'. Known: {', '.join(LEGENDS)} (or a JSON file path).")
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return {int(k): v for k, v in data["classes"].items()}, set(int(v) for v in data.get("ignore", []))


def majority_land_use(codes: np.ndarray, valid: np.ndarray, legend: str) -> Optional[str]:
    """The PromptMID class covering most valid pixels (None when no pixel has a known code)."""
    mapping, ignore = load_legend(legend)
    values = codes[valid].astype(np.int64)
    votes: dict[str, int] = {}
    for code, count in zip(*np.unique(values, return_counts=True)):
        cls = mapping.get(int(code))
        if cls is not None and int(code) not in ignore:
            votes[cls] = votes.get(cls, 0) + int(count)
    return max(votes, key=votes.get) if votes else None


def land_use_from_raster(path: str, grid: Grid, legend: str = "worldcover") -> Optional[str]:
    """Majority class of a land-cover raster over ``grid`` (nearest-neighbour: codes must not be averaged)."""
    bands, valid = read_on_grid(path, grid, bands=[1], resampling="near")
    return majority_land_use(bands[0], valid, legend)
