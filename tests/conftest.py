"""Shared fixtures: the real data set and GDAL raster builders.

The real-data tests are the accuracy tests: when the data set is missing they *fail* (CI must not go green
on skips). Set PROMPTMID_ALLOW_MISSING_DATA=1 to skip them instead on a machine without the data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
from rasters import epsg_wkt, textured, write_raster  # noqa: F401 (re-exported for fixtures)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PROMPTMID_DATA", REPO.parent / "shared" / "data" / "optical-sar"))



@pytest.fixture(scope="session")
def data_root() -> Path:
    if not (DATA / "test").is_dir():
        message = f"real optical-SAR data not found at {DATA} (set PROMPTMID_DATA)"
        if os.environ.get("PROMPTMID_ALLOW_MISSING_DATA"):
            pytest.skip(message)
        pytest.fail(message + "; set PROMPTMID_ALLOW_MISSING_DATA=1 to skip the real-data tests instead")
    return DATA


@pytest.fixture(scope="session")
def s1s2_pair(data_root: Path) -> Path:
    return data_root / "test" / "s1s2_163"


@pytest.fixture(scope="session")
def small_pair(data_root: Path) -> Path:
    return data_root / "test" / "3mos_SEN_rural_05"


@pytest.fixture
def make_raster(tmp_path: Path) -> Callable[..., str]:
    counter = iter(range(10_000))

    def make(array: np.ndarray, name: Optional[str] = None, **kwargs) -> str:
        return write_raster(tmp_path / (name or f"r{next(counter)}.tif"), array, **kwargs)

    return make
