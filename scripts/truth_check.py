#!/usr/bin/env python3
"""How well do two independent estimators agree with a dataset's stated co-registration?

Each pair is registered *as published* (no synthetic warp: the stated truth is the identity), searched as a
georeferenced pair, by two engines that share no features: the default engine (learned maps + descriptors)
and ``area`` (handcrafted CFOG maps alone). Where both agree with each other to about a pixel but not with
the identity, the stated truth is the likelier culprit (e.g. Sentinel-1 GRD geocoded without terrain
correction: relief shifts the SAR along range, mostly x in a north-up grid). Prints a table and writes JSON.

    .venv/bin/python scripts/truth_check.py ../shared/data/optical-sar/train --prefix s1s2
    .venv/bin/python scripts/truth_check.py ../shared/data/optical-sar/train --prefix 3mos \
        --out bench/results/truth_check_3mos.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from promptmid.descriptors.base import Describer
    from promptmid.descriptors.registry import AreaOnly


def displacement(pair_dir: str, engine: str, describer: "Describer | AreaOnly") -> np.ndarray | None:
    """Native px that the engine's fit moves the SAR image's corners and centre ((5, 2), x/y), None if it
    found no registered-or-uncertain transform."""
    from promptmid.config import EngineConfig
    from promptmid.evaluation.protocol import downsample, pair_land_use
    from promptmid.geometry.fit import apply_h
    from promptmid.io.rasters import raster_info, read_pixels
    from promptmid.registration import prepare_and_match
    from promptmid.search import georef_search

    opt, ov, _ = read_pixels(os.path.join(pair_dir, "optical.tif"))
    sar_path = os.path.join(pair_dir, "sar.tif")
    sar, sv, _ = read_pixels(sar_path)
    cfg = EngineConfig(engine=engine)
    cfg = replace(cfg, search=georef_search(cfg.search), land_use=pair_land_use(pair_dir) or cfg.land_use)
    (od, odv), fo = downsample(opt, ov, cfg.max_side)
    (sd, sdv), fs = downsample(sar, sv, cfg.max_side)
    pm = prepare_and_match(od, odv, sd, sdv, raster_info(sar_path).dtype, describer, cfg)
    if pm.fit is None or pm.verdict is None or pm.verdict.verdict == "failed":
        return None
    fit = pm.rescaled(fo, fs).fit.matrix
    h, w = sar.shape[1:]
    at = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1], [(w - 1) / 2, (h - 1) / 2]], float)
    return apply_h(fit, at) - at


def by_sensor(found: list[dict]) -> dict:
    """Per sensor, at the image centre (where a fit is best determined): median distance of each engine's
    placement from the stated truth, median distance between the engines, and the pairs where the engines
    agree (<= 1.5 px) but both sit more than 3 px from the stated truth."""
    from promptmid.evaluation.protocol import sensor_of

    out = {}
    for sensor in sorted({sensor_of(r["pair_id"]) for r in found}):
        centre = np.array([[x[4] for x in r["displacement_px"]] for r in found if sensor_of(r["pair_id"]) == sensor])
        from_truth = np.linalg.norm(centre, axis=2)  # (pairs, engines)
        between = np.linalg.norm(centre[:, 0] - centre[:, 1], axis=1)
        out[sensor] = {"pairs": len(centre),
                       "centre_from_truth_median_px": np.median(from_truth, 0).round(2).tolist(),
                       "centre_between_engines_median_px": round(float(np.median(between)), 2),
                       "agree_but_over_3px_from_truth": int(np.sum((between <= 1.5) & (from_truth.min(1) > 3.0)))}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs_dir")
    ap.add_argument("--prefix", default="", help="only pairs whose id starts with this")
    ap.add_argument("--engines", nargs=2, default=["default", "area"])
    ap.add_argument("--out", default="bench/results/truth_check.json")
    args = ap.parse_args()
    from promptmid.descriptors.registry import get_describer
    from promptmid.evaluation.protocol import list_pairs
    from promptmid.runtime import configure_process

    configure_process()
    describers = {e: get_describer(e) for e in args.engines}  # loaded once, not per pair
    rows = []
    for pid in [p for p in list_pairs(args.pairs_dir) if p.startswith(args.prefix)]:
        d = [displacement(os.path.join(args.pairs_dir, pid), e, describers[e]) for e in args.engines]
        if any(x is None for x in d):
            rows.append({"pair_id": pid, "found": False})
            continue
        a, b = d
        row = {"pair_id": pid, "found": True,
               "max_from_truth_px": [float(np.max(np.linalg.norm(x, axis=1))) for x in d],  # per engine
               "mean_from_truth_px": [float(np.mean(np.linalg.norm(x, axis=1))) for x in d],
               "max_between_engines_px": float(np.max(np.linalg.norm(a - b, axis=1))),
               "displacement_px": [x.round(2).tolist() for x in d]}
        rows.append(row)
        print(f"{pid:28s} from truth (max over corners/centre): {row['max_from_truth_px'][0]:5.1f} / "
              f"{row['max_from_truth_px'][1]:5.1f} px; between the engines {row['max_between_engines_px']:4.1f} px", flush=True)
    found = [r for r in rows if r["found"]]
    if found:
        both = np.array([r["max_from_truth_px"] for r in found])
        between = np.array([r["max_between_engines_px"] for r in found])
        disp = np.concatenate([np.array(r["displacement_px"][0]) for r in found])
        summary = {
            "pairs": len(rows), "found_by_both": len(found),
            "median_max_from_truth_px": np.median(both, 0).round(2).tolist(),
            "median_max_between_engines_px": round(float(np.median(between)), 2),
            "agree_within_2px_but_both_over_3px_from_truth": int(np.sum((between <= 2.0) & (both.min(1) > 3.0))),
            "rms_x_y_px": np.sqrt(np.mean(disp ** 2, 0)).round(2).tolist(),  # first engine, all points
            "by_sensor": by_sensor(found),
        }
        print(json.dumps(summary, indent=1))
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump({"pairs_dir": args.pairs_dir, "prefix": args.prefix, "engines": args.engines, "summary": summary,
                       "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
