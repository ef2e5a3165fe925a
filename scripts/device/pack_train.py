"""`make device-kit`: what a GPU session needs to train there, packed into `.device/` (git-ignored).

The GPU machine gets only the working tree (64 MiB at most, no ../shared, no GDAL, no package index), so
this writes, here:

* `.device/train_pack.npz`: the train part of the train split (the scene groups `--val-fraction` leaves for
  training; validation stays here) on the engine's work grid (longer side <= max_side), 8-bit, each image as
  lossless WebP (about 43 MB for 143 pairs), with land use, SAR data type and valid masks;
* `.device/whl/`: wheels of what the GPU image lacks (diffusers and importlib_metadata for the full
  profile's timing, phasecongruency), for Python 3.12 on manylinux x86-64.

`scripts/device/session.py` reads them there (see its docstring for the one `run` command).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "core"))

from promptmid.config import EngineConfig  # noqa: E402
from promptmid.evaluation.protocol import pair_land_use  # noqa: E402
from promptmid.io.rasters import downsample, raster_info, read_pixels  # noqa: E402
from promptmid.training.data import split_pairs  # noqa: E402

WHEELS = ("diffusers==0.42.1", "importlib_metadata==8.7.0", "phasecongruency==1.0.5")
TREE_LIMIT_MB = 62.0  # what travels (tracked files + the kit) must stay under the tool's 64 MiB, with a margin


def encode(img: np.ndarray) -> bytes:
    """(bands, H, W) 0-255 -> lossless WebP (one band: grey; three: RGB)."""
    a = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    a = a[0] if a.shape[0] == 1 else np.ascontiguousarray(a[:3].transpose(1, 2, 0)[..., ::-1])  # OpenCV wants BGR
    ok, buf = cv2.imencode(".webp", a, [cv2.IMWRITE_WEBP_QUALITY, 101])  # > 100: lossless
    if not ok:
        raise RuntimeError("WebP encoding failed")
    return buf.tobytes()


def pack(pairs_dir: str, out: Path, val_fraction: float, max_side: int) -> dict:
    train_ids, val_ids = split_pairs(pairs_dir, val_fraction)
    arrays: dict[str, np.ndarray] = {}
    meta = []
    for pid in train_ids:
        d = os.path.join(pairs_dir, pid)
        opt, ov, _ = read_pixels(os.path.join(d, "optical.tif"))
        sar, sv, _ = read_pixels(os.path.join(d, "sar.tif"))
        dtype = raster_info(os.path.join(d, "sar.tif")).dtype
        if dtype != "Byte" or opt.max() > 255:
            raise SystemExit(f"{pid}: the pack holds 8-bit images only ({dtype})")
        (opt, ov), _ = downsample(opt, ov, max_side)
        (sar, sv), _ = downsample(sar, sv, max_side)
        arrays[f"{pid}/optical"] = np.frombuffer(encode(opt), np.uint8)
        arrays[f"{pid}/sar"] = np.frombuffer(encode(sar), np.uint8)
        arrays[f"{pid}/optical_valid"] = np.packbits(ov)
        arrays[f"{pid}/sar_valid"] = np.packbits(sv)
        meta.append({"id": pid, "land_use": pair_land_use(d), "sar_dtype": dtype, "optical_shape": list(opt.shape),
                     "sar_shape": list(sar.shape)})
    info = {"pairs": meta, "val_fraction": val_fraction, "max_side": max_side, "validation_ids": val_ids}
    arrays["meta.json"] = np.frombuffer(json.dumps(info).encode(), np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs_dir", help="the train split (never test)")
    ap.add_argument("--out", default=str(REPO / ".device"))
    ap.add_argument("--val-fraction", type=float, default=0.2, help="as `make train-default` (its validation stays here)")
    ap.add_argument("--no-wheels", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    info = pack(args.pairs_dir, out / "train_pack.npz", args.val_fraction, EngineConfig().max_side)
    size_mb = (out / "train_pack.npz").stat().st_size / 2**20
    print(f"{len(info['pairs'])} train pairs packed ({len(info['validation_ids'])} held out here): {size_mb:.1f} MiB")
    if not args.no_wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
                        "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "-d", str(out / "whl"),
                        *WHEELS], check=True)
        print("wheels:", ", ".join(sorted(p.name for p in (out / "whl").glob("*.whl"))))
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    tree_mb = sum((REPO / f.decode()).stat().st_size for f in tracked if f and (REPO / f.decode()).is_file()) / 2**20
    kit_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    print(f"travels: {tree_mb:.1f} MiB of tracked files + {kit_mb:.1f} MiB of kit = {tree_mb + kit_mb:.1f} MiB")
    if tree_mb + kit_mb > TREE_LIMIT_MB:
        print(f"over {TREE_LIMIT_MB} MiB: the working tree would not travel", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
