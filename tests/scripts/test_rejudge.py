"""scripts/rejudge.py: stored evidence judged again by another calibration, per image size class."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("rejudge", Path(__file__).resolve().parents[2] / "scripts" / "rejudge.py")
rejudge = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rejudge)


def _pair(pid: str, err: float, inliers: int, ncm: int = 40) -> dict:
    ev = {"n_tie_points": inliers, "n_inliers": inliers, "inlier_ratio": 0.9, "spread": 0.6, "agreement_px": 1.0,
          "expected_error_px": 0.1, "non_similarity_px": 0.5, "peak_ratio": None, "search_score": 0.5}  # null = inf
    return {"pair_id": pid, "fit_err_px": err, "ncm": ncm, "evidence": ev}


def test_each_size_class_is_judged_by_its_own_set():
    result = {"protocol": "paper", "pairs": [_pair("3mos_a", 1.0, 60), _pair("3mos_b", 9.0, 60, ncm=3),
                                             _pair("s1s2_a", 2.0, 150), _pair("s1s2_b", 7.0, 90),
                                             {"pair_id": "3mos_c", "fit_err_px": None, "ncm": 0, "evidence": {}}]}
    one = {"paper": {"thresholds": {"min_inliers_registered": 100.00005}}}
    side = lambda pid: 256.0 if pid.startswith("3mos") else 512.0  # noqa: E731 (tiles and scenes)
    assert rejudge.rejudge(result, one, "paper", side) == {"pairs": 5, "claimed": 1, "claimed_within_3px": 1, "false_accepts": 0,
                                                     "sr": 20.0}
    split = {**one, "paper_small": {"thresholds": {"min_inliers_registered": 50.00005}}}
    out = rejudge.rejudge(result, split, "paper", side)  # tiles now judged by the small set: both claimed, one wrong
    assert (out["claimed"], out["claimed_within_3px"], out["false_accepts"]) == (3, 2, 1)
    assert out["sr"] == 40.0  # the wrong tile has too few correct matches to count as a success
