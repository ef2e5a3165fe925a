import os

import cv2
import numpy as np
import pytest
import torch

from promptmid.config import EngineConfig
from promptmid.errors import CancelledError
from promptmid.models.checkpoint import load_checkpoint
from promptmid.models.network import ModelConfig, PromptMIDNet
from promptmid.progress import Progress
from promptmid.training.data import AugmentConfig, is_validation, load_pairs, make_sample, split_group
from promptmid.training.losses import info_nce
from promptmid.training.stage2 import Stage2Config, checkpoint_dir, sample_loss, seed_everything, train_stage2

PAIRS = ["3mos_SEN_rural_00", "3mos_SEN_plain_01", "s1s2_003"]


@pytest.fixture(scope="module")
def pairs(data_root):
    return load_pairs(str(data_root / "train"), PAIRS, EngineConfig(max_side=256))


def test_info_nce_prefers_matching_rows():
    a = torch.eye(4)
    assert info_nce(a, a) < info_nce(a, a.roll(1, 0))
    assert torch.isclose(info_nce(torch.ones(3, 2), torch.ones(3, 2)), torch.log(torch.tensor(3.0)))


def test_samples_map_points_through_the_augmentation(pairs):
    rng = np.random.default_rng(0)
    cfg = AugmentConfig(crop=128, points=64)
    s = make_sample(pairs[0], rng, cfg)
    assert s is not None and s.sar.shape == (128, 128) and s.optical.shape == (128, 128)
    assert len(s.sar_points) == len(s.optical_points) >= 32
    # Same structure at corresponding points: phase congruency agrees far better than at shuffled points.
    ms = s.sar.pc.max_moment[s.sar_points[:, 1].astype(int), s.sar_points[:, 0].astype(int)]
    mo = s.optical.pc.max_moment[s.optical_points[:, 1].round().astype(int), s.optical_points[:, 0].round().astype(int)]
    assert s.land_use is not None and np.isfinite(ms).all() and np.isfinite(mo).all()
    # The geometry itself: the sample's optical crop is the pair's optical image warped so that each SAR
    # point lands on its optical point. Sampling the optical *crop* at the optical points must give the
    # values of the original optical image at the SAR points' positions (same grid as the SAR).
    opt_full = pairs[0].optical.gray
    crop_vals = cv2.remap(s.optical.gray, s.optical_points[:, 0].reshape(1, -1), s.optical_points[:, 1].reshape(1, -1),
                          cv2.INTER_LINEAR)[0]
    x0y0 = _crop_origin(s, pairs[0])
    src = s.sar_points + x0y0
    full_vals = cv2.remap(opt_full, src[:, 0].astype(np.float32).reshape(1, -1), src[:, 1].astype(np.float32).reshape(1, -1),
                          cv2.INTER_LINEAR)[0]
    assert np.median(np.abs(crop_vals - full_vals)) < 0.03
    shuffled = np.roll(full_vals, 7)
    assert np.median(np.abs(crop_vals - shuffled)) > 3 * np.median(np.abs(crop_vals - full_vals))


def _crop_origin(s, pair) -> np.ndarray:
    """Where the sample's SAR crop sits in the pair's SAR image (found by exact template search)."""
    res = cv2.matchTemplate(pair.sar.gray.astype(np.float32), s.sar.gray.astype(np.float32), cv2.TM_SQDIFF)
    y, x = np.unravel_index(np.argmin(res), res.shape)
    return np.array([x, y], np.float32)


def test_overlapping_tiles_stay_on_one_side_of_the_split():
    assert split_group("3mos_GF3_rural_01") == split_group("3mos_GF3_rural_04") == "3mos_GF3_rural"
    assert split_group("s1s2_003") == "s1s2_003"
    for a, b in (("3mos_GF3_rural_01", "3mos_GF3_rural_04"), ("3mos_GF3_water_00", "3mos_GF3_water_01"),
                 ("3mos_SEN_frozen_05", "3mos_SEN_frozen_06")):
        for f in (0.1, 0.3, 0.5):
            assert is_validation(a, f) == is_validation(b, f)


def test_two_runs_with_one_seed_give_identical_weights(pairs, data_root, tmp_path):
    aug = AugmentConfig(crop=96, points=48)

    def run(name: str) -> dict:
        seed_everything(5)  # before construction, as the CLI and the worker do
        net = PromptMIDNet(ModelConfig(out_stride=4, lite_layers=[8, "M", 16], desc_dim=16))
        cfg = Stage2Config(pairs_dir=str(data_root / "train"), out_path=str(tmp_path / name), steps=6, batch=1, lr=3e-3,
                           val_limit=0, seed=5, augment=aug)
        train_stage2(net, cfg, pairs=pairs)
        return load_checkpoint(str(tmp_path / name))[1]

    a, b = run("a.safetensors"), run("b.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_validation_split_is_deterministic():
    ids = [f"pair_{i}" for i in range(400)]
    val = [p for p in ids if is_validation(p, 0.1)]
    assert 20 < len(val) < 60 and val == [p for p in ids if is_validation(p, 0.1)]


def test_a_few_steps_lower_the_loss_and_resume_continues(pairs, data_root, tmp_path):
    torch.manual_seed(0)
    net = PromptMIDNet(ModelConfig(out_stride=4, lite_layers=[8, "M", 16, "M", 32], desc_dim=32))
    aug = AugmentConfig(crop=96, points=64)
    fixed = [make_sample(pairs[i % 3], np.random.default_rng(100 + i), aug) for i in range(6)]

    def held_out_loss() -> float:
        with torch.no_grad():
            return float(np.mean([sample_loss(net, s, 0.07, torch.device("cpu")) for s in fixed if s is not None]))

    before = held_out_loss()
    out = str(tmp_path / "lite.safetensors")
    cfg = Stage2Config(pairs_dir=str(data_root / "train"), out_path=out, steps=60, batch=2, lr=3e-3,
                       checkpoint_every=30, val_limit=0, augment=aug)
    # Cancel right after the first checkpoint, then resume: the run must continue at step 30, not restart.
    calls = {"n": 0}

    def cancel_after_checkpoint() -> bool:
        calls["n"] += 1
        return calls["n"] > 31

    with pytest.raises(CancelledError):
        train_stage2(net, cfg, progress=Progress(is_cancelled=cancel_after_checkpoint), pairs=pairs)
    assert not os.path.exists(out)  # an interrupted run never writes (or replaces) the output model
    _, _, meta = load_checkpoint(os.path.join(checkpoint_dir(out), "model.safetensors"))
    assert meta["step"] == 30
    logs = []
    state = train_stage2(net, cfg, pairs=pairs, log=logs.append)
    assert logs[0] == "resumed at step 30" and state.step == 60
    after = held_out_loss()
    assert after < before - 0.05, (before, after)
    cfg_loaded, tensors, meta = load_checkpoint(out)
    assert meta["step"] == 60 and cfg_loaded.desc_dim == 32 and not os.path.exists(checkpoint_dir(out))
