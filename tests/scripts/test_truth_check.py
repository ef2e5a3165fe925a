"""scripts/truth_check.py: a pair whose stated co-registration is off by a known shift is reported off by
that shift by both engines, which agree with each other."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from osgeo import gdal

REPO = Path(__file__).resolve().parents[2]


def test_a_known_misregistration_of_the_stated_truth_is_found_by_both_engines(small_pair, tmp_path):
    pairs = tmp_path / "pairs"
    pair = pairs / "3mos_shifted"
    shutil.copytree(small_pair, pair)
    ds = gdal.Open(str(pair / "sar.tif"), gdal.GA_Update)
    band = ds.GetRasterBand(1)
    a = band.ReadAsArray()
    shifted = np.concatenate([np.repeat(a[:, :1], 4, axis=1), a[:, :-4]], axis=1)  # SAR content 4 px to the right
    band.WriteArray(shifted)
    ds = None
    out = tmp_path / "truth.json"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "truth_check.py"), str(pairs), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    (row,) = result["rows"]
    assert row["found"]
    for disp in row["displacement_px"]:  # each engine: the fit moves the SAR back by about 4 px in x
        centre = np.array(disp[-1])
        assert abs(centre[0] + 4.0) < 1.0 and abs(centre[1]) < 1.0, disp
    centres = [np.array(d[-1]) for d in row["displacement_px"]]
    assert np.linalg.norm(centres[0] - centres[1]) < 1.0
    assert row["max_between_engines_px"] < 5.0  # corners of a 256 px tile: the fits' rotation / scale differ a little
    group = result["summary"]["by_sensor"]["3mos"]  # an id without a sensor token falls in its dataset's group
    assert group["pairs"] == 1 and group["agree_but_over_3px_from_truth"] == 1
    assert all(abs(d - 4.0) < 1.0 for d in group["centre_from_truth_median_px"])
