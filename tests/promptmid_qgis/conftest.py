"""Plugin test fixtures: a misregistered real SAR image, project layers, the engine's Python."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from promptmid.demo import misregister


@pytest.fixture
def engine_python() -> str:
    return sys.executable  # the test venv has the engine's packages; the worker adds core/ to PYTHONPATH


@pytest.fixture
def pair_files(s1s2_pair: Path, tmp_path: Path) -> tuple[str, str]:
    """(optical, misregistered SAR copy): the SAR's georeference is shifted 20 px and rotated 1 degree."""
    bad = tmp_path / "inputs" / "sar_shifted.tif"
    bad.parent.mkdir()
    misregister(str(s1s2_pair / "sar.tif"), str(bad), (20.0, -12.0), 1.0)
    return str(s1s2_pair / "optical.tif"), str(bad)


@pytest.fixture
def project_layers(qgis_new_project, pair_files):
    from qgis.core import QgsProject, QgsRasterLayer

    optical = QgsRasterLayer(pair_files[0], "optical")
    sar = QgsRasterLayer(pair_files[1], "sar")
    assert optical.isValid() and sar.isValid()
    QgsProject.instance().addMapLayers([optical, sar])
    return optical, sar


@pytest.fixture
def fake_run(tmp_path: Path):
    """Writes a run's four outputs (real files, through the engine's own writers) into a folder and
    returns the worker's result dict, without matching anything: for tests of what the plugin shows."""
    import json

    import numpy as np
    from rasters import epsg_wkt, write_raster

    from promptmid.geometry.gcps import GCPSet, write_points_file, write_tiepoints_gpkg

    def make(folder: Path, stem: str = "sar", residual_scale: float = 1.0, **extra) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(int(residual_scale * 10))
        n = 60
        px, ln = rng.uniform(0, 64, n), rng.uniform(0, 64, n)
        gcps = GCPSet(px, ln, 500000 + 10 * px, 4500000 - 10 * ln, np.ones(n), epsg_wkt(32633))
        res = rng.uniform(0.1, 3.0, n) * residual_scale
        outputs = {"warped": str(folder / f"{stem}_registered.tif"), "points": str(folder / f"{stem}_registered.points"),
                   "tiepoints": str(folder / f"{stem}_tiepoints.gpkg"), "report": str(folder / f"{stem}_report.json")}
        write_raster(outputs["warped"], (np.arange(64 * 64) % 200 + 1).astype(np.uint8).reshape(64, 64), epsg=32633)
        write_points_file(outputs["points"], gcps, res, 0 * res, "pixel")
        write_tiepoints_gpkg(outputs["tiepoints"], gcps, res, 10 * res, gcps.map_x + 20, gcps.map_y - 20)
        result = {"engine": "classical", "transform": "affine", "n_keypoints_optical": 500, "n_keypoints_sar": 500,
                  "n_matches": 120, "n_inliers": n, "n_gcps": n, "rmse_px": float(np.sqrt(np.mean(res ** 2))),
                  "rmse_map": float(10 * np.sqrt(np.mean(res ** 2))), "seconds": 1.5, "crs_wkt": epsg_wkt(32633),
                  "outputs": outputs, "summary": "summary line", **extra}
        with open(outputs["report"], "w", encoding="utf-8") as fh:
            json.dump({**result, "land_use": "forest"}, fh)
        return result

    return make


class FakeTask:
    """What PromptMIDPlugin._finished reads of a RegistrationTask."""

    def __init__(self, result=None, error="", kind="", cancelled=False, job=None):
        from promptmid_qgis.worker_client import JobOutcome

        self.outcome = JobOutcome(result=result, error=error, kind=kind, cancelled=cancelled)
        self.job = job or {}


@pytest.fixture
def finished_task():
    return FakeTask
