import numpy as np

from promptmid.training.augment import PhotometricConfig, augment_optical, augment_sar, dihedral


def test_sar_renderings_stay_in_range_and_differ():
    rng = np.random.default_rng(0)
    img = np.random.default_rng(1).uniform(0.2, 0.8, (64, 64)).astype(np.float32)
    valid = np.ones_like(img, bool)
    outs = [augment_sar(img, valid, rng, PhotometricConfig()) for _ in range(8)]
    for o in outs:
        assert o.shape == img.shape and o.dtype == np.float32 and 0 <= o.min() and o.max() <= 1
    assert min(np.abs(a - b).mean() for a, b in zip(outs, outs[1:])) > 0.005  # each draw is a new rendering
    assert img.min() >= 0.2  # the input is never modified


def test_speckle_is_multiplicative_with_unit_mean():
    cfg = PhotometricConfig(looks=(1.0,), renderings=("as-is",), gamma_range=(1, 1), contrast_range=(1, 1),
                            blur_prob=0, upsample_prob=0)
    flat = np.full((256, 256), 0.5, np.float32)
    out = augment_sar(flat, np.ones_like(flat, bool), np.random.default_rng(0), cfg)
    # single-look intensity is exponential: amplitude mean 0.5 * E[sqrt(Exp(1))] = 0.5 * 0.886
    assert abs(out.mean() - 0.443) < 0.01 and out.std() > 0.2


def test_optical_bands_get_one_tone_curve():
    rng = np.random.default_rng(3)
    band = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    out = augment_optical(np.stack([band] * 3), np.ones((32, 32), bool), rng, PhotometricConfig())
    assert out.shape == (3, 32, 32) and np.allclose(out[0], out[1]) and np.allclose(out[1], out[2])


def test_dihedral_gives_eight_distinct_views_of_both_images():
    x = np.arange(12.0).reshape(3, 4)
    views = {dihedral(x, k).tobytes() + bytes(dihedral(x, k).shape) for k in range(8)}
    assert len(views) == 8
    stack = np.stack([x, 2 * x])
    for k in range(8):
        assert np.array_equal(dihedral(stack, k)[1], dihedral(2 * x, k))  # bands move together
