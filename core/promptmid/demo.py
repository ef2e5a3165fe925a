"""``promptmid demo``: misregister a real, georeferenced SAR image by a known error, register it back,
and measure how well the known error was undone.

The input pair comes from the shared data set (co-registered Sentinel-1/2 with real georeference). The
demo writes a copy of the SAR whose georeference is shifted and rotated (the original file is only
read), registers that copy onto the optical image, and compares the written warp with the truth.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import numpy as np
from osgeo import gdal

from .config import EngineConfig, OutputConfig
from .errors import InputError
from .io.atomic import atomic_path, ensure_writable_dir
from .io.rasters import raster_info
from .pipeline import RegistrationResult, register, written_warp
from .progress import Progress

DEFAULT_PAIR = "test/s1s2_163"  # flat terrain: the S1 GRD / S2 pair agrees best there (README, data note)


@dataclass
class DemoResult:
    registration: RegistrationResult
    misregistered_sar: str
    error_before_px: float  # RMS over a check grid, SAR pixels
    error_after_px: float


def misregister(sar_path: str, out_path: str, shift_px: tuple[float, float], rotation_deg: float) -> None:
    """Copy ``sar_path`` to ``out_path`` with its geotransform shifted by ``shift_px`` (pixels) and rotated
    about the image centre: a typical orbit/geocoding error, with the pixel values untouched."""
    info = raster_info(sar_path)
    gt = np.array(info.geotransform, float)
    a = math.radians(rotation_deg)
    lin = np.array([[gt[1], gt[2]], [gt[4], gt[5]]]) @ np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = np.array([info.width / 2.0, info.height / 2.0])
    map_centre = gt[[0, 3]] + np.array([[gt[1], gt[2]], [gt[4], gt[5]]]) @ (centre + np.asarray(shift_px))
    origin = map_centre - lin @ centre
    with atomic_path(out_path) as tmp:
        ds = gdal.Translate(tmp, sar_path, format="GTiff", creationOptions=["COMPRESS=DEFLATE"])
        ds.SetGeoTransform((origin[0], lin[0, 0], lin[0, 1], origin[1], lin[1, 0], lin[1, 1]))
        ds = None


def grid_error_px(true_gt: tuple, estimate, width: int, height: int) -> float:
    """RMS distance (in pixels of the true grid) between true and estimated map positions of a 10x10 grid.
    ``estimate``: a geotransform, or a function (pixel, line) -> (N, 2) map positions (e.g. the written
    warp, :func:`..pipeline.written_warp`)."""
    px, ln = np.meshgrid(np.linspace(0.1, 0.9, 10) * width, np.linspace(0.1, 0.9, 10) * height)
    px, ln = px.ravel(), ln.ravel()
    true = np.column_stack([true_gt[0] + px * true_gt[1] + ln * true_gt[2], true_gt[3] + px * true_gt[4] + ln * true_gt[5]])
    if callable(estimate):
        est = estimate(px, ln)
    else:
        g = estimate
        est = np.column_stack([g[0] + px * g[1] + ln * g[2], g[3] + px * g[4] + ln * g[5]])
    return float(np.sqrt(np.mean(np.sum((est - true) ** 2, axis=1))) / abs(true_gt[1]))


def run_demo(data_root: str, out_dir: str, cfg: EngineConfig | None = None, progress: Progress | None = None,
             pair: str = DEFAULT_PAIR, shift_px: tuple[float, float] = (23.4, -15.7), rotation_deg: float = 1.5) -> DemoResult:
    pair_dir = os.path.join(data_root, pair)
    optical, sar = os.path.join(pair_dir, "optical.tif"), os.path.join(pair_dir, "sar.tif")
    if not os.path.isfile(optical) or not os.path.isfile(sar):
        raise InputError(f"Demo pair not found in {pair_dir}: point --data at the shared optical-sar folder.")
    ensure_writable_dir(out_dir)
    bad_sar = os.path.join(out_dir, "sar_misregistered.tif")
    misregister(sar, bad_sar, shift_px, rotation_deg)
    truth = raster_info(sar).geotransform
    before = grid_error_px(truth, raster_info(bad_sar).geotransform, *_size(sar))
    # The demo measures the result against the truth, so it keeps it whatever the verdict (which it reports).
    result = register(optical, bad_sar, out_dir, replace(cfg or EngineConfig(), accept_uncertain=True), OutputConfig(), progress)
    after = grid_error_px(truth, written_warp(result, optical, bad_sar), *_size(sar))
    return DemoResult(result, bad_sar, before, after)


def _size(path: str) -> tuple[int, int]:
    info = raster_info(path)
    return info.width, info.height
