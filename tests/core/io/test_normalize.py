import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from rasters import textured

from promptmid.errors import InputError
from promptmid.io.normalize import OpticalNormConfig, SarNormConfig, normalize_sar, optical_to_gray, sar_scale_of


def test_scale_detection():
    assert sar_scale_of(np.array([1.0, 2.0]), "Byte") == "display"
    assert sar_scale_of(np.array([-20.0, -5.0]), "Float32") == "db"
    assert sar_scale_of(np.array([0.01, 0.3]), "Float32") == "linear"


def test_linear_and_db_inputs_normalise_to_the_same_image():
    rng = np.random.default_rng(1)
    linear = (textured() * 0.5 + 0.01) * rng.gamma(4.0, 0.25, (256, 256)).astype(np.float32)
    db = 10 * np.log10(linear)
    valid = np.ones(linear.shape, bool)
    a = normalize_sar(linear, valid, "Float32", SarNormConfig())
    b = normalize_sar(db, valid, "Float32", SarNormConfig())
    assert np.abs(a - b).max() < 1e-3  # percentiles differ only by the 0.1% floor clamp


def test_uint16_amplitude_is_log_compressed():
    speckle = np.random.default_rng(2).gamma(1.0, 1.0, (256, 256))
    amp = np.minimum(np.exp(textured() * 6) * 10 * speckle, 65000).astype(np.uint16)
    out = normalize_sar(amp.astype(np.float32), np.ones(amp.shape, bool), "UInt16", SarNormConfig())
    assert out.min() == 0.0 and out.max() == 1.0
    assert 0.2 < np.median(out) < 0.8  # a linear stretch of a heavy-tailed image would sit near 0


def test_constant_and_empty_images_are_refused():
    with pytest.raises(InputError, match="constant"):
        normalize_sar(np.full((64, 64), 3.0, np.float32), np.ones((64, 64), bool), "Float32", SarNormConfig())
    with pytest.raises(InputError, match="all nodata"):
        optical_to_gray(np.zeros((3, 64, 64), np.float32), np.zeros((64, 64), bool), OpticalNormConfig())


@settings(max_examples=40, deadline=None)
@given(h=st.integers(8, 40), w=st.integers(8, 40), bands=st.sampled_from([1, 3, 4]),
       dtype=st.sampled_from(["Byte", "UInt16", "Float32"]), nodata_frac=st.floats(0.0, 0.9), seed=st.integers(0, 10_000))
def test_normalisation_is_bounded_and_zero_on_nodata(h, w, bands, dtype, nodata_frac, seed):
    rng = np.random.default_rng(seed)
    data = rng.gamma(2.0, 50.0, (bands, h, w)).astype(np.float32)
    valid = rng.random((h, w)) >= nodata_frac
    valid[0, 0] = valid[0, 1] = True
    data[0, 0, 0], data[0, 0, 1] = 1.0, 500.0  # at least two distinct valid values
    for out in (optical_to_gray(data, valid, OpticalNormConfig()), normalize_sar(data[0], valid, dtype, SarNormConfig())):
        assert out.dtype == np.float32 and out.shape == (h, w)
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
        assert (out[~valid] == 0).all()


@settings(max_examples=40, deadline=None)
@given(h=st.integers(8, 40), w=st.integers(8, 40), lo=st.floats(-40, -5), span=st.floats(1, 40), nodata_frac=st.floats(0.0, 0.9),
       seed=st.integers(0, 10_000))
def test_db_sar_of_any_range_normalises_into_unit_interval(h, w, lo, span, nodata_frac, seed):
    """Calibrated SAR in dB (negative floats) is recognised as dB, whatever its range, and stays bounded."""
    rng = np.random.default_rng(seed)
    db = (lo + span * rng.random((h, w))).astype(np.float32)
    valid = rng.random((h, w)) >= nodata_frac
    valid[0, :2] = True
    db[0, 0], db[0, 1] = lo, lo + span
    out = normalize_sar(db, valid, "Float32", SarNormConfig())
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0 and (out[~valid] == 0).all()
