import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "device"))

import pack_train  # noqa: E402
import session  # noqa: E402

from promptmid.io.rasters import downsample, read_pixels  # noqa: E402

PAIRS = ["3mos_GF3_city_00", "s1s2_003"]


def test_packed_pairs_come_back_as_the_work_grid_images(data_root, tmp_path):
    src = tmp_path / "pairs"
    src.mkdir()
    for pid in PAIRS:
        os.symlink(data_root / "train" / pid, src / pid)
    info = pack_train.pack(str(src), tmp_path / "pack.npz", val_fraction=0.0, max_side=512)
    assert [p["id"] for p in info["pairs"]] == PAIRS and info["validation_ids"] == []
    items, _ = session.unpack(tmp_path / "pack.npz")
    for item in items:
        for kind in ("optical", "sar"):
            bands, valid, _ = read_pixels(str(src / item["id"] / f"{kind}.tif"))
            (bands, valid), _ = downsample(bands, valid, 512)
            assert item[kind].shape == bands.shape and max(bands.shape[1:]) <= 512
            np.testing.assert_array_equal(item[kind], np.clip(np.rint(bands), 0, 255))  # lossless, band order kept
            np.testing.assert_array_equal(item[f"{kind}_valid"], valid)
    assert items[1]["optical"].shape == (3, 512, 512) and items[1]["sar_dtype"] == "Byte"


def test_the_training_path_imports_without_gdal():
    code = ("import sys; sys.modules['osgeo'] = None\n"  # `import osgeo` now raises ImportError, as on the GPU image
            f"sys.path[:0] = [{str(REPO / 'scripts' / 'device')!r}, {str(REPO / 'core')!r}]\n"
            "import session; session.stand_in_for_gdal()\n"
            "from promptmid.training.stage2 import train_stage2\n"
            "from promptmid.io import rasters; print('ok', hasattr(rasters.gdal, '__file__'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "ok False", proc.stderr  # the stand-in, not GDAL
