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
