"""The dense training objective: sample geometry on real pairs, the correlation loss, and a tiny model
trained through the same code path (both losses) that recovers a known warp of a real pair."""

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_models import tiny_dense_net

from promptmid.config import EngineConfig
from promptmid.training.data import load_pairs
from promptmid.training.dense_data import DenseAugmentConfig, make_dense_sample
from promptmid.training.losses import correlation_loss, hard_negative_nce

PAIRS = ["3mos_SEN_rural_00", "s1s2_003"]


@pytest.fixture(scope="module")
def pairs(data_root):
    return load_pairs(str(data_root / "train"), PAIRS, EngineConfig(max_side=256))


def test_fft_correlation_equals_the_direct_normalised_correlation():
    g = torch.Generator().manual_seed(0)
    t, s = torch.randn(3, 4, 9, 9, generator=g), torch.randn(3, 4, 15, 15, generator=g)
    m = (torch.rand(3, 9, 9, generator=g) > 0.2).float()
    ncc = torch.zeros(3, 7, 7)
    for n in range(3):
        a = (t[n] * m[n]).flatten()
        for dy in range(7):
            for dx in range(7):
                b = (s[n, :, dy:dy + 9, dx:dx + 9] * m[n]).flatten()
                ncc[n, dy, dx] = (a @ b) / (a.norm() * b.norm())
    expected = F.cross_entropy(ncc.reshape(3, -1) / 0.5, torch.full((3,), 24))
    assert torch.isclose(correlation_loss(t, m, s, 0.5), expected, atol=1e-4)


def test_correlation_loss_is_low_only_at_the_true_shift():
    g = torch.Generator().manual_seed(1)
    search = F.normalize(torch.randn(1, 8, 41, 41, generator=g), dim=1)
    mask = torch.ones(1, 25, 25)
    right = correlation_loss(search[:, :, 8:33, 8:33], mask, search, 0.05)
    wrong = correlation_loss(search[:, :, 5:30, 10:35], mask, search, 0.05)
    assert right < 0.1 < 2.0 < wrong
    anchor = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    assert hard_negative_nce(anchor, anchor, anchor[:, None].roll(1, 0)) < hard_negative_nce(anchor, anchor.roll(1, 0), anchor[:, None])


def test_dense_samples_map_the_sar_crop_onto_the_optical_crop(pairs):
    """Warping the *optical* image of the pair (same grid as the SAR) through the sample's map must give
    the sample's optical crop: the map is the exact geometry of the augmentation."""
    cfg = DenseAugmentConfig(crop=96, points=64)
    cfg.photometric.looks, cfg.photometric.renderings = (0.0,), ("as-is",)
    cfg.photometric.gamma_range = cfg.photometric.contrast_range = (1.0, 1.0)
    cfg.photometric.blur_prob = cfg.photometric.upsample_prob = 0.0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        s = make_dense_sample(pairs[0], rng, cfg)
        assert s is not None and s.sar.shape == s.optical.shape == (96, 96) and len(s.sar_points) >= 32
        q = s.sar_points @ s.sar_to_optical[:2, :2].T + s.sar_to_optical[:2, 2]
        assert np.allclose(q, s.optical_points, atol=1e-4)
        # the SAR crop sits in the (possibly flipped) pair; find which view by exact search, then check
        # that the optical pair image at the SAR points equals the optical crop at the optical points
        hits = []
        for k in range(8):
            from promptmid.training.augment import dihedral

            sar_v, opt_v = dihedral(pairs[0].sar.gray, k), dihedral(pairs[0].optical.color, k).mean(0)
            res = cv2.matchTemplate(sar_v.astype(np.float32), s.sar.gray.astype(np.float32), cv2.TM_SQDIFF)
            if res.min() < 1e-6:
                y, x = np.unravel_index(np.argmin(res), res.shape)
                hits.append((opt_v, np.array([x, y], np.float32)))
        assert hits
        opt_v, origin = hits[0]
        src = (s.sar_points + origin).astype(np.float32)
        full = cv2.remap(opt_v.astype(np.float32), src[:, 0][None], src[:, 1][None], cv2.INTER_LINEAR)[0]
        crop = cv2.remap(s.optical.gray, s.optical_points[:, 0][None], s.optical_points[:, 1][None], cv2.INTER_LINEAR)[0]
        inner = (s.optical_points > 6).all(1) & (s.optical_points < 89).all(1)
        assert np.median(np.abs(full - crop)[inner]) < 0.02


def test_the_warp_training_uses_follows_the_matrix():
    from promptmid.dense.base import DenseMap
    from promptmid.guided import warp_dense

    f = torch.arange(20.0 * 20).reshape(1, 1, 20, 20)
    shift = np.array([[1.0, 0, 3], [0, 1, -2], [0, 0, 1]])  # target = source + (3, -2)
    out, inside = warp_dense(DenseMap(f[0], torch.ones(20, 20, dtype=torch.bool)), shift, (20, 20))
    assert torch.allclose(out[0, 5, 7], f[0, 0, 7, 4]) and not inside[0, 0] and inside[5, 7]


def test_both_dense_losses_carry_gradients_to_the_network(pairs):
    """Fitting one sample: the correlation losses and the point losses each go down when optimised alone."""
    from promptmid.training.stage2 import Stage2Config, dense_sample_loss

    sample = make_dense_sample(pairs[0], np.random.default_rng(3), DenseAugmentConfig(crop=96, points=48))
    for corr_w, point_w in ((1.0, 0.0), (0.0, 1.0)):
        torch.manual_seed(0)
        net = tiny_dense_net()
        cfg = Stage2Config(objective="dense", corr_weight=corr_w, point_weight=point_w)
        opt = torch.optim.Adam(net.parameters(), 1e-2)
        losses = []
        for _ in range(25):
            loss = dense_sample_loss(net, sample, cfg, torch.device("cpu"), np.random.default_rng(0))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert losses[-1] < 0.9 * losses[0], (corr_w, point_w, losses[0], losses[-1])


def test_a_tiny_dense_model_trains_and_recovers_a_known_warp_of_a_real_pair(pairs, data_root, tmp_path):
    from promptmid.descriptors.learned import LearnedDescriber
    from promptmid.evaluation.protocol import ProtocolConfig, evaluate_pair
    from promptmid.models.checkpoint import load_checkpoint
    from promptmid.models.network import PromptMIDNet
    from promptmid.training.stage2 import Stage2Config, seed_everything, train_stage2

    seed_everything(0)
    net = tiny_dense_net()
    train = Stage2Config(pairs_dir=str(data_root / "train"), out_path=str(tmp_path / "dense.safetensors"), steps=20,
                         batch=1, lr=1e-2, val_limit=0, objective="dense", point_weight=0.1,
                         dense_augment=DenseAugmentConfig(crop=96, points=48))
    state = train_stage2(net, train, pairs=pairs)
    assert state.step == 20 and np.isfinite(state.losses).all()
    model_cfg, weights, _ = load_checkpoint(train.out_path)
    assert model_cfg.dense_maps and model_cfg.cfog_residual
    trained = PromptMIDNet(model_cfg)
    trained.load_trainable(weights)
    assert trained.sar.residual.scale.abs() > 1e-3 and trained.optical.residual.scale.abs() > 1e-3  # a correction was learned
    # A known warp (rotation, scale, shift of the paper's protocol) of a real pair, found through the
    # learned maps (search + templates) and the learned descriptors.
    res = evaluate_pair(str(data_root / "test" / "s1s2_163"), LearnedDescriber(trained, "tiny"), EngineConfig(),
                        ProtocolConfig(), np.random.default_rng(0))
    assert res.fit_err_px < 5.0, res
