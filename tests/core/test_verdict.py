import math

import numpy as np
import pytest

from promptmid.geometry.fit import FitResult, expected_error
from promptmid.guided import TiePoints
from promptmid.verdict import Evidence, VerdictConfig, gather_evidence, judge

GOOD = Evidence(n_tie_points=120, n_inliers=100, inlier_ratio=0.83, spread=0.5, agreement_px=0.8,
                expected_error_px=0.3, non_similarity_px=0.5, peak_ratio=1.4, search_score=0.3)


def test_strong_evidence_is_registered_with_confidence():
    v = judge(GOOD, VerdictConfig())
    assert v.verdict == "registered" and v.registered and v.reason == "" and 0.5 <= v.confidence <= 1.0


@pytest.mark.parametrize("field,value,words", [
    ("agreement_px", 25.0, "disagrees with the global search"),
    ("spread", 0.02, "cover only 2 %"),
    ("peak_ratio", 1.0, "the best pose barely stands out from other poses (peak ratio 1.00"),
    ("expected_error_px", 9.0, "expected error"),
    ("search_score", 0.01, "weak structural similarity"),
    ("non_similarity_px", 6.0, "shears or stretches the image by 6.0 px"),
])
def test_each_weak_piece_of_evidence_makes_it_uncertain_and_says_why(field, value, words):
    ev = Evidence(**{**GOOD.__dict__, field: value})
    v = judge(ev, VerdictConfig())
    assert v.verdict == "uncertain" and words in v.reason and v.confidence < 0.5


def test_too_few_inliers_is_failed():
    v = judge(Evidence(**{**GOOD.__dict__, "n_inliers": 4}), VerdictConfig())
    assert v.verdict == "failed" and "only 4 consistent tie points" in v.reason and v.confidence == 0.0


def test_missing_evidence_is_not_judged():
    """A sparse peer has no global search: NaN evidence is skipped, not failed."""
    ev = Evidence(**{**GOOD.__dict__, "peak_ratio": math.nan, "search_score": math.nan, "agreement_px": math.nan})
    assert judge(ev, VerdictConfig()).verdict == "registered"


def test_expected_error_shrinks_with_more_tie_points_and_grows_outside_them():
    rng = np.random.default_rng(0)
    m = np.array([[1.0, 0.02, 3.0], [-0.02, 1.0, -2.0], [0, 0, 1]])

    def exp_err(n, at):
        src = rng.uniform(50, 150, (n, 2))
        dst = src @ m[:2, :2].T + m[:2, 2] + rng.normal(0, 1.0, (n, 2))
        return expected_error(src, dst, m, at)

    centre, far = np.array([[100.0, 100.0]]), np.array([[400.0, 400.0]])
    assert exp_err(400, centre)[0] < exp_err(20, centre)[0]
    assert exp_err(100, far)[0] > 3 * exp_err(100, centre)[0]
    assert exp_err(100, centre)[0] == pytest.approx(1.0 * np.sqrt(2 / 100), rel=0.5)  # sigma * sqrt(2 / n) at the centroid
    assert np.isinf(expected_error(np.zeros((3, 2)), np.zeros((3, 2)), m, centre)).all()


def test_gather_evidence_measures_spread_and_agreement():
    src = np.array([[x, y] for x in range(10, 100, 10) for y in range(10, 100, 10)], float)
    shift = np.array([[1, 0, 2.0], [0, 1, 0.0], [0, 0, 1]])
    dst = src + [2.0, 0.0]
    fit = FitResult(shift, np.ones(len(src), bool), np.zeros(len(src), np.float32))
    valid = np.ones((100, 100), bool)
    ties = TiePoints(src, dst, np.ones(len(src), np.float32))
    ev = gather_evidence(ties, fit, ties, fit, valid, np.eye(3), 1.3, 0.25)
    assert ev.n_inliers == 81 and ev.inlier_ratio == 1.0
    assert ev.spread == pytest.approx(0.8 * 0.8 / 1.0, abs=0.02)  # hull of 10..90 in a 100 x 100 image
    assert ev.agreement_px == pytest.approx(2.0)  # the fit moves everything 2 px more than the prior


def test_a_model_calibrated_verdict_replaces_only_what_its_calibration_chose():
    from promptmid.config import EngineConfig
    from promptmid.registration import verdict_config
    from promptmid.search import georef_search
    from promptmid.verdict import VerdictConfig, georef_verdict, model_verdict

    sets = model_verdict({"paper": {"min_inliers_registered": 30.00005, "min_spread": None, "max_agreement_px": 2.5},
                          "georef": {"min_spread": 0.4, "min_inliers_registered": 30.0}})
    full, near = sets.full, sets.georef
    # a count threshold just past 30 excludes 30 (the calibration put it there to), so at least 31
    assert full.min_inliers_registered == 31 and near.min_inliers_registered == 30 and full.max_agreement_px == 2.5
    assert full.min_spread == VerdictConfig().min_spread  # left open by the calibration: the default, never looser
    assert near.min_spread == 0.4 and near.max_agreement_px == georef_verdict().max_agreement_px

    class Calibrated:
        verdict = sets

    cfg = EngineConfig()
    near_cfg = EngineConfig(search=georef_search(cfg.search))
    for side in (256, 512):  # not split by size: one set per search mode whatever the image
        valid = np.ones((side, side), bool)
        assert verdict_config(Calibrated(), cfg, valid) is full
        assert verdict_config(Calibrated(), near_cfg, valid) is near
    assert verdict_config(None, cfg, np.ones((256, 256), bool)) is cfg.verdict


def test_a_calibration_split_by_image_size_judges_small_work_grids_by_their_own_set():
    from promptmid.config import EngineConfig
    from promptmid.registration import verdict_config
    from promptmid.search import georef_search
    from promptmid.verdict import SMALL_IMAGE_SIDE_PX, georef_verdict, model_verdict

    sets = model_verdict({"paper": {"max_agreement_px": 2.0}, "georef": {"max_agreement_px": 1.0},
                          "paper_small": {"max_agreement_px": 5.0}, "georef_small": {"max_agreement_px": 4.0, "min_spread": None}})
    assert sets.georef_small.min_spread == georef_verdict().min_spread  # open: its mode's default

    class Calibrated:
        verdict = sets

    full, near = EngineConfig(), EngineConfig(search=georef_search(EngineConfig().search))
    large = np.ones((SMALL_IMAGE_SIDE_PX + 2, SMALL_IMAGE_SIDE_PX + 2), bool)
    small = large.copy()
    small[:, large.shape[1] // 2:] = False  # as large a raster, but half of it nodata: judged as a small image
    assert verdict_config(Calibrated(), full, small).max_agreement_px == 5.0
    assert verdict_config(Calibrated(), full, large).max_agreement_px == 2.0
    assert verdict_config(Calibrated(), near, small).max_agreement_px == 4.0
    assert verdict_config(Calibrated(), near, large).max_agreement_px == 1.0


def test_non_similarity_is_zero_for_a_similarity_and_the_corner_displacement_of_a_shear():
    from promptmid.verdict import corners_and_centre, non_similarity_px

    at = corners_and_centre((101, 201))  # x 0..200, y 0..100: corners 111.8 px from the centre
    a = math.radians(7.0)
    sim = np.array([[0.9 * math.cos(a), -0.9 * math.sin(a), 12.0], [0.9 * math.sin(a), 0.9 * math.cos(a), -3.0], [0, 0, 1]])
    assert non_similarity_px(sim, at) == pytest.approx(0.0, abs=1e-9)
    shear = np.array([[1.0, 0.02, 0.0], [0.0, 1.0, 0.0], [0, 0, 1]]) @ sim
    # measured directly: the farthest corner's distance from where the nearest similarity puts it
    lin = shear[:2, :2]
    p, q = 0.5 * (lin[0, 0] + lin[1, 1]), 0.5 * (lin[1, 0] - lin[0, 1])
    near = np.array([[p, -q], [q, p]])
    d = (at[:-1] - at[-1]) @ (lin - near).T
    assert non_similarity_px(shear, at) == pytest.approx(np.max(np.linalg.norm(d, axis=1)))
    assert 0.5 * 0.02 * 0.9 * 111.8 == pytest.approx(non_similarity_px(shear, at), rel=1e-3)


def test_the_departure_from_a_similarity_is_read_from_pass_one_s_robust_affine():
    from promptmid.geometry.fit import as_similarity

    src = np.array([[x, y] for x in range(10, 100, 10) for y in range(10, 100, 10)], float)
    sheared = np.array([[1.0, 0.04, 0.0], [0.0, 1.0, 0.0], [0, 0, 1]])
    dst = src @ sheared[:2, :2].T
    affine = FitResult(sheared, np.ones(len(src), bool), np.zeros(len(src), np.float32))
    sim = as_similarity(affine, src, dst)
    ties = TiePoints(src, dst, np.ones(len(src), np.float32))
    valid = np.ones((100, 100), bool)
    from promptmid.verdict import corners_and_centre, non_similarity_px

    at = corners_and_centre(valid.shape, valid)
    assert non_similarity_px(sim.matrix, at) == pytest.approx(0.0, abs=1e-9)
    # Pass 2 (tight, around the similarity) shows no shear; pass 1's affine does, and it is what counts.
    final = FitResult(sim.matrix, sim.inliers, sim.residuals, robust=sim.matrix)
    ev = gather_evidence(ties, sim, ties, final, valid, np.eye(3), 1.3, 0.25)
    assert ev.non_similarity_px == pytest.approx(non_similarity_px(sheared, at)) and ev.non_similarity_px > 1.0
    assert gather_evidence(ties, final, ties, sim, valid, np.eye(3), 1.3, 0.25).non_similarity_px == pytest.approx(0.0, abs=1e-9)
