#!/usr/bin/env python3
"""Judge a benchmark run's stored evidence again with another set of verdict thresholds (no re-run).

Each pair in a ``bench/results/<engine>.<protocol>.json`` carries the evidence its verdict was judged on;
this applies the sets of a calibration file (``scripts/calibrate_verdict.py --out``, with or without
``--by-size``) to it, as the engine would, and prints claims, right claims, false accepts and SR. Used to
compare engines each judged by its own calibration (e.g. ``area``, whose engine-wide set is not split by
image size) without storing thresholds for them in the engine.

    .venv/bin/python scripts/rejudge.py bench/results/area.paper.json bench/results/verdict_calibration_area_bysize.json \
        --pairs ../shared/data/optical-sar/test
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Callable


def rejudge(result: dict, calibration: dict, protocol: str, side_of: Callable[[str], float]) -> dict:
    """``side_of(pair_id)``: the image size the verdict's sets key on (``verdict.valid_side``) for that pair."""
    from promptmid.evaluation.protocol import ProtocolConfig
    from promptmid.verdict import Evidence, judge, model_verdict

    sets = model_verdict({k: calibration[k]["thresholds"] for k in ("paper", "georef", "paper_small", "georef_small")
                          if k in calibration})
    pcfg = ProtocolConfig.named(protocol)
    claimed = right = wrong = success = 0
    for r in result["pairs"]:
        stored = r.get("evidence") or {}
        if not stored:
            continue  # no evidence (a failed pair): nothing to claim
        # JSON null is a non-finite value (inf); NaN evidence is not stored by the harness
        ev = Evidence(**{k: (math.inf if v is None else v) for k, v in stored.items() if k in Evidence.__dataclass_fields__})
        if judge(ev, sets.pick(protocol == "georef", side_of(r["pair_id"]))).verdict != "registered":
            continue
        err = math.inf if r.get("fit_err_px") is None else float(r["fit_err_px"])
        claimed += 1
        right += err <= pcfg.correct_px
        wrong += not err <= pcfg.false_accept_px
        success += r["ncm"] >= pcfg.success_ncm
    n = len(result["pairs"])
    return {"pairs": n, "claimed": claimed, "claimed_within_3px": right, "false_accepts": wrong,
            "sr": 100.0 * success / max(n, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("result", help="bench/results/<engine>.<protocol>.json")
    ap.add_argument("calibration", help="a calibrate_verdict.py output (its paper / georef [/ *_small] sets)")
    ap.add_argument("--pairs", required=True, help="the pairs folder the result was measured on (for each SAR's size)")
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from calibrate_verdict import work_side

    result = json.load(open(args.result, encoding="utf-8"))
    out = rejudge(result, json.load(open(args.calibration, encoding="utf-8")), result.get("protocol", "paper"),
                  lambda pid: work_side(os.path.join(args.pairs, pid)))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
