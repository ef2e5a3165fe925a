"""The verdict calibration's choice: tighten until no wrong fit passes; Sentinel-1 fits a few px from a
terrain-offset truth can be left out of it."""

import importlib.util
import math
from dataclasses import asdict
from pathlib import Path

from promptmid.verdict import VerdictConfig

_spec = importlib.util.spec_from_file_location("calibrate_verdict", Path(__file__).resolve().parents[2] / "scripts" / "calibrate_verdict.py")
calibrate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(calibrate)


def _row(pair_id: str, err: float, inliers: int, agreement: float) -> dict:
    return {"protocol": "georef", "pair_id": pair_id, "fit_err_px": err, "n_inliers": inliers, "inlier_ratio": 0.9,
            "spread": 0.6, "agreement_px": agreement, "expected_error_px": 0.2, "peak_ratio": 1.5, "search_score": 0.4}


def test_no_wrong_fit_passes_and_ambiguous_sentinel1_rows_can_be_left_out():
    rows = [_row("3mos_a", 1.0, 120, 1.0), _row("3mos_b", 2.0, 90, 2.0), _row("3mos_c", 12.0, 40, 9.0),
            _row("s1s2_001", 6.0, 150, 1.5)]  # right-looking evidence, 6 px from a truth with terrain offsets
    th, counts = calibrate.choose(rows, asdict(VerdictConfig()))
    assert counts["wrong_claimed"] == 0 and counts["right_claimed"] < 2  # the s1s2 row forces a cut through the right ones
    kept = [r for r in rows if not calibrate.ambiguous(r)]
    assert [r["pair_id"] for r in rows if calibrate.ambiguous(r)] == ["s1s2_001"]
    th, counts = calibrate.choose(kept, asdict(VerdictConfig()))
    assert counts == {"pairs": 3, "right_le_3px": 2, "wrong_gt_5px": 1, "right_claimed": 2, "wrong_claimed": 0, "claimed": 2}
    assert not calibrate.ambiguous(_row("s1s2_002", 9.0, 150, 1.5)) and not calibrate.ambiguous(_row("3mos_d", 6.0, 150, 1.5))
    assert math.isfinite(th["max_agreement_px"]) or math.isfinite(th["min_inliers_registered"])


def test_a_sheared_wrong_fit_is_cut_by_its_departure_from_a_similarity_after_a_full_search_only():
    def row(pid, err, nonsim):
        return {**_row(pid, err, 120, 1.0), "protocol": "paper", "non_similarity_px": nonsim}

    rows = [row("3mos_a", 1.0, 0.8), row("3mos_b", 2.0, 1.2), row("3mos_c", 9.0, 4.5)]  # alike but for the shear
    th, counts = calibrate.choose(rows, asdict(VerdictConfig()))
    assert counts["right_claimed"] == 2 and counts["wrong_claimed"] == 0 and 1.2 <= th["max_non_similarity_px"] < 4.5
    near = [c for c in calibrate.CHECKS if c[0] not in calibrate.NOT_NEAR_GEOREF]
    th, counts = calibrate.choose(rows, asdict(VerdictConfig()), near)
    assert "max_non_similarity_px" not in th and counts["wrong_claimed"] == 0 and counts["right_claimed"] < 2


def test_by_size_each_size_class_gets_its_own_cut():
    def row(pid, err, inliers, side):
        return {**_row(pid, err, inliers, 1.0), "work_side": side}

    # The large images' wrong fit has many tie points; alone it would force a cut through the small right ones.
    rows = [row("3mos_a", 1.0, 60, 256), row("3mos_b", 2.0, 70, 256), row("3mos_c", 12.0, 30, 256),
            row("s1s2_a", 1.0, 200, 512), row("s1s2_b", 9.0, 150, 512)]
    one = calibrate.calibrate(rows)
    assert set(one) == {"paper", "georef"} and one["georef"]["counts"]["right_claimed"] == 1  # only the 200-point one
    split = calibrate.calibrate(rows, by_size=True)
    assert set(split) == {"paper", "georef", "paper_small", "georef_small"}
    small, large = split["georef_small"]["counts"], split["georef"]["counts"]
    assert (small["pairs"], small["right_claimed"], small["wrong_claimed"]) == (3, 2, 0)
    assert (large["pairs"], large["right_claimed"], large["wrong_claimed"]) == (2, 1, 0)
    assert split["paper"]["counts"]["pairs"] == 0  # no paper rows: nothing to cut, nothing claimed wrongly
