import json
import math
import shutil

import numpy as np
import pytest
from rasters import write_raster

from promptmid.config import EngineConfig
from promptmid.descriptors.classical import ClassicalDescriber
from promptmid.evaluation.protocol import (PairResult, ProtocolConfig, evaluate_folder, random_similarity,
                                           summarize, summary_json, warp_optical)
from promptmid.geometry.fit import apply_h
from promptmid.io.rasters import read_pixels


def test_random_similarity_ranges_and_seeding():
    cfg = ProtocolConfig()
    draws = [random_similarity(np.random.default_rng([0, i]), 256, 256, cfg) for i in range(200)]
    angles, scales = np.array([d[1] for d in draws]), np.array([d[2] for d in draws])
    assert angles.min() >= -10 and angles.max() <= 10 and angles.std() > 4
    assert scales.min() >= 0.8 and scales.max() <= 1.0
    again = random_similarity(np.random.default_rng([0, 5]), 256, 256, cfg)
    np.testing.assert_array_equal(again[0], draws[5][0])
    centre = apply_h(draws[0][0], [[127.5, 127.5]])  # rotation about the image centre
    np.testing.assert_allclose(centre, [[127.5, 127.5]], atol=1e-9)


def test_warp_optical_moves_pixels_where_the_homography_says():
    img = np.zeros((1, 100, 100), np.float32)
    img[0, 30, 60] = 1.0
    h, _, _ = random_similarity(np.random.default_rng(3), 100, 100, ProtocolConfig())
    warped, valid = warp_optical(img, np.ones((100, 100), bool), h)
    y, x = np.unravel_index(np.argmax(warped[0]), (100, 100))
    assert np.hypot(*(apply_h(h, [[60, 30]])[0] - [x, y])) <= 1.0
    assert not valid.all() and valid[50, 50]


def test_georef_protocol_draws_small_warps_with_shifts_reproducibly():
    cfg = ProtocolConfig.named("georef", seed=3)
    draws = [random_similarity(np.random.default_rng([cfg.seed, i]), 256, 256, cfg) for i in range(100)]
    angles, scales = np.array([d[1] for d in draws]), np.array([d[2] for d in draws])
    shifts = np.array([apply_h(d[0], [[127.5, 127.5]])[0] - 127.5 for d in draws])
    assert np.abs(angles).max() <= 2 and scales.min() >= 0.97 and scales.max() <= 1.03
    assert np.abs(shifts).max() <= 30 and np.abs(shifts).max() > 20 and shifts.std() > 8
    again = random_similarity(np.random.default_rng([cfg.seed, 7]), 256, 256, ProtocolConfig.named("georef", seed=3))
    np.testing.assert_array_equal(again[0], draws[7][0])
    with pytest.raises(Exception, match="Unknown protocol"):
        ProtocolConfig.named("nope")


def test_summary_counts_failures_and_unclaimed_pairs_as_infinite_and_json_is_strict():
    ok = PairResult("a_1", "a", 1, 0.9, 50, 40, 30, True, 1.2, 0.8, 0.5, verdict="registered", fit_err_px=0.8)
    bad = PairResult("a_2", "a", 1, 0.9, 5, 0, 0, False, 20.0, math.inf, 0.5)
    wrong = PairResult("a_3", "a", 1, 0.9, 50, 40, 0, False, 20.0, 12.0, 0.5, verdict="registered", fit_err_px=12.0)
    s = summarize("classical", "a", [ok, bad, wrong])
    assert s.sr == pytest.approx(100 / 3) and s.ncm == 30 and s.rmse == 1.2
    assert s.n_claimed == 2 and s.n_false_accept == 1
    assert s.reg_err_p90_px == math.inf
    js = summary_json({"a": s, "all": s})
    text = json.dumps(js, allow_nan=False)
    assert json.loads(text)["reg_err_p90_px"] is None


def test_self_pair_is_registered_exactly(tmp_path, small_pair):
    # The optical image as its own "SAR": whatever the random warp, every metric must be near perfect.
    pair = tmp_path / "pairs" / "self_000"
    pair.mkdir(parents=True)
    bands, _, _ = read_pixels(str(small_pair / "optical.tif"))
    gray = bands.mean(axis=0).astype(np.uint8)
    shutil.copy(small_pair / "optical.tif", pair / "optical.tif")
    write_raster(pair / "sar.tif", gray)
    s = evaluate_folder(str(tmp_path / "pairs"), ClassicalDescriber(), EngineConfig())
    assert s["all"].sr == 100.0 and s["all"].reg_err_median_px < 0.5 and s["self"].ncm > 100
    assert s["all"].pairs[0].verdict == "registered" and s["all"].n_claimed == 1


def test_classical_on_real_pairs_is_measured(data_root, tmp_path):
    # A handful of real test pairs: the harness must run and produce sane, finite numbers; the accuracy
    # targets themselves live in `make bench`.
    sub = tmp_path / "pairs"
    sub.mkdir()
    for pid in ("3mos_SEN_rural_05", "3mos_SEN_plain_05", "s1s2_163"):
        (sub / pid).symlink_to(data_root / "test" / pid)
    s = evaluate_folder(str(sub), ClassicalDescriber(), EngineConfig())
    assert set(s) == {"3mos", "s1s2", "all"} and s["all"].n_pairs == 3
    # These three are easy: every fit must be right (a broken stage makes one fail), the 1024 px pair must be
    # claimed, and nothing wrong may be claimed. A cautious verdict on a right fit is allowed.
    details = [(p.pair_id, p.verdict, p.reason, p.fit_err_px) for p in s["all"].pairs]
    assert all(p.fit_err_px < 3.0 for p in s["all"].pairs), details
    assert s["s1s2"].sr == 100.0 and s["all"].n_false_accept == 0, details
    assert all(p.seconds > 0 and p.evidence for p in s["all"].pairs)
